"""Market-by-price books in one int64 array, updated from Numba.

``levels[slot, side, i, f]``: slot = instrument, side 0 bid / 1 offer / 2 implied bid /
3 implied offer, i = price level - 1 (0 is the top), f = PX (price mantissa, the
schema's exponent, e.g. 1e-9 for MDP 3.0 PRICE9), QTY, NORD (orders at the level).
An empty level has QTY == 0 and PX == EMPTY_PX.

The book is *positional*, exactly as MDP 3.0 manages it ("MDP 3.0 - Market by Price",
notes/mdp3.md §4): MDPriceLevel N addresses row N-1 whatever its price, New inserts
and pushes lower rows down (the row falling off the configured depth is dropped),
Delete removes and pulls lower rows up (the venue then refills the last row with a
New), DeleteThru clears the side, DeleteFrom removes rows 1..N and pulls the rest up,
Change/Overlay rewrite the row in place.

Readers take views, never copies: ``levels[slot, 0, 0]`` is the best bid row.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

PX, QTY, NORD = 0, 1, 2
NFIELD = 3
BID, OFFER, IMPLIED_BID, IMPLIED_OFFER = 0, 1, 2, 3
NSIDE = 4
EMPTY_PX = np.iinfo(np.int64).max   # PRICENULL9 null: an empty level has no price

(ACT_NEW, ACT_CHANGE, ACT_DELETE, ACT_DELETE_THRU, ACT_DELETE_FROM, ACT_OVERLAY) = range(6)


@intrinsic
def _move_elems(typingctx, arr, dst, src, n):
    """memmove within ``arr``'s buffer: ``n`` elements from flat index ``src`` to ``dst``.
    One llvm.memmove instead of a row loop whose every 4-d access pays four
    negative-index wraparound checks (notes/numba-hot-path.md §4)."""
    if not isinstance(arr, types.Array):
        return None

    def codegen(context, builder, sig, args):
        a, d, s, k = args
        ary = context.make_array(arr)(context, builder, a)
        base = builder.bitcast(ary.data, ir.IntType(8).as_pointer())
        size = context.get_abi_sizeof(context.get_data_type(arr.dtype))
        dp = builder.gep(base, [builder.mul(d, d.type(size))])
        sp = builder.gep(base, [builder.mul(s, s.type(size))])
        cgutils.raw_memmove(builder, dp, sp, builder.mul(k, k.type(size)), 1)
        return context.get_dummy_value()

    return types.void(arr, types.intp, types.intp, types.intp), codegen


@intrinsic
def _put_row(typingctx, arr, at, px, qty, nord):
    """Store (px, qty, nord) at flat element index ``at`` of ``arr``: three plain stores,
    none of the per-index negative-wraparound code of ``lv[s, side, i, f]`` (notes §4).
    ``at`` comes from apply_level's checked row arithmetic."""
    if not isinstance(arr, types.Array):
        return None

    def codegen(context, builder, sig, args):
        a, k, p, q, o = args
        ary = context.make_array(arr)(context, builder, a)
        ptr = builder.gep(ary.data, [k])
        for j, v in enumerate((p, q, o)):
            builder.store(v, builder.gep(ptr, [ir.Constant(k.type, j)]))
        return context.get_dummy_value()

    return types.void(arr, types.int64, types.int64, types.int64, types.int64), codegen


def new_levels(max_instruments: int, max_depth: int) -> np.ndarray:
    lv = np.zeros((max_instruments, NSIDE, max_depth, NFIELD), np.int64)
    lv[:, :, :, PX] = EMPTY_PX
    return lv


@njit(cache=True, inline="always")
def _clear_row(lv, s, side, i):
    lv[s, side, i, PX] = EMPTY_PX
    lv[s, side, i, QTY] = 0
    lv[s, side, i, NORD] = 0


@njit(cache=True, _nrt=False)
def clear_side(lv, s, side):
    for i in range(lv.shape[2]):
        _clear_row(lv, s, side, i)


@njit(cache=True, _nrt=False)
def clear_book(lv, s):
    for side in range(NSIDE):
        clear_side(lv, s, side)


@njit(cache=True, inline="always", _nrt=False)
def apply_level(lv, s, side, level, depth, action, px, qty, nord):
    """Apply one MBP entry. ``level`` is 1-based, ``depth`` the instrument's depth
    (<= lv.shape[2]). Returns 0, or 1 for a level outside 1..depth, 2 for an unknown
    action (the caller counts both; the book is left unchanged)."""
    if action == ACT_DELETE_THRU:       # whole side; MDPriceLevel is not used
        clear_side(lv, s, side)
        return 0
    if level < 1 or level > depth:
        return 1
    i = level - 1
    # flat element index of row 0 of this side (C order: slot, side, row, field)
    base = ((s * lv.shape[1] + side) * lv.shape[2]) * NFIELD
    if action == ACT_NEW:             # rows i..depth-2 move down one; the last falls off
        if depth - 1 > i:
            _move_elems(lv, base + (i + 1) * NFIELD, base + i * NFIELD, (depth - 1 - i) * NFIELD)
    elif action == ACT_DELETE or action == ACT_DELETE_FROM:
        n = 1 if action == ACT_DELETE else level   # DeleteFrom: levels 1..N
        if action == ACT_DELETE_FROM:
            i = 0
        if depth - i - n > 0:
            _move_elems(lv, base + i * NFIELD, base + (i + n) * NFIELD, (depth - i - n) * NFIELD)
        j = max(i, depth - n)
        while j < depth:
            _put_row(lv, base + j * NFIELD, EMPTY_PX, 0, 0)
            j += 1
        return 0
    elif action != ACT_CHANGE and action != ACT_OVERLAY:
        return 2
    _put_row(lv, base + i * NFIELD, px, qty, nord)
    return 0

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


# The inline move below serves up to SMALL_ELEMS int64s: a side of up to 11 rows (CME books
# are 10 deep) moves at most 10 rows = 30 elements. Deeper books use _move_elems (libc memmove).
SMALL_ELEMS = 32
SMALL_MAX_DEPTH = SMALL_ELEMS // NFIELD + 1   # rows per side the inline move serves


@intrinsic
def _move_elems_small(typingctx, arr, dst, src, n):
    """memmove within ``arr`` (int64) of ``n`` elements (0 <= n <= SMALL_ELEMS) from flat
    index ``src`` to ``dst``, inline: the first w and the last w elements of the range are
    loaded as two vectors (w = 16, 8, 4, 2 or 1, the smallest with 2w >= n; they overlap
    when n < 2w), then both are stored. Every load comes before every store, so
    overlapping ranges are safe, and nothing outside ``[src, src+n)`` / ``[dst, dst+n)``
    is read or written. Why: the libc memmove call cost ~18 % of the handler's time in a
    ``perf`` profile of ``bench feed`` (the call, caller-saved registers spilled around it,
    memmove's own size dispatch). An AVX-512 masked-move version (branch-free, also for
    n = 0) was slower in the A/B: the mask set-up and masked loads on every Change cost
    more than the branch they save."""
    if not (isinstance(arr, types.Array) and arr.dtype == types.int64):
        return None

    def codegen(context, builder, sig, args):
        a, d, s, k = args
        ary = context.make_array(arr)(context, builder, a)
        i64 = ir.IntType(64)
        base = ary.data

        def pair(w):
            vp = ir.VectorType(i64, w).as_pointer() if w > 1 else i64.as_pointer()
            tail = builder.sub(k, i64(w))
            lo = builder.load(builder.bitcast(builder.gep(base, [s]), vp), align=8)
            hi = builder.load(builder.bitcast(builder.gep(base, [builder.add(s, tail)]), vp), align=8)
            builder.store(lo, builder.bitcast(builder.gep(base, [d]), vp), align=8)
            builder.store(hi, builder.bitcast(builder.gep(base, [builder.add(d, tail)]), vp), align=8)

        def by_size(widths):
            # n > 16: pair(16); n > 8: pair(8); n > 4: pair(4); n > 2: pair(2); n > 0: pair(1)
            w = widths[0]
            if len(widths) == 1:
                with builder.if_then(builder.icmp_signed(">", k, i64(0))):
                    pair(w)
                return
            with builder.if_else(builder.icmp_signed(">", k, i64(w))) as (big, small):
                with big:
                    pair(w)
                with small:
                    by_size(widths[1:])

        by_size((SMALL_ELEMS // 2, 8, 4, 2, 1))
        return context.get_dummy_value()

    return types.void(arr, types.int64, types.int64, types.int64), codegen


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
    action (the caller counts both; the book is left unchanged).

    New, Change and Delete (~98 % of a real feed) share one path: New moves rows
    i..depth-2 down one and writes row i; Delete moves rows i+1..depth-1 up one and
    empties the last row (the row written is chosen and blanked without a branch);
    Change moves nothing (n = 0) and writes row i. (Tried: Change copying rows
    i+1..depth-1 onto themselves, so that the move does not depend on the action at all:
    slower, the copy costs more than the mispredicted branch it saves.)"""
    if action == ACT_DELETE_THRU:       # whole side; MDPriceLevel is not used
        clear_side(lv, s, side)
        return 0
    if level < 1 or level > depth:
        return 1
    i = level - 1
    # flat element index of row 0 of this side (C order: slot, side, row, field)
    base = ((s * lv.shape[1] + side) * lv.shape[2]) * NFIELD
    if action > ACT_DELETE:             # rare: DeleteFrom, Overlay, unknown
        if action == ACT_OVERLAY:
            _put_row(lv, base + i * NFIELD, px, qty, nord)
            return 0
        if action != ACT_DELETE_FROM:
            return 2
        # DeleteFrom: levels 1..N go, the rest move up N rows, the freed rows are emptied
        if depth - level > 0:
            _move_elems(lv, base, base + level * NFIELD, (depth - level) * NFIELD)
        j = max(0, depth - level)
        while j < depth:
            _put_row(lv, base + j * NFIELD, EMPTY_PX, 0, 0)
            j += 1
        return 0
    is_new = 1 if action == ACT_NEW else 0
    is_del = 1 if action == ACT_DELETE else 0
    tail = depth - 1 - i                # rows below row i
    n = tail * NFIELD * (is_new | is_del)
    if lv.shape[2] <= SMALL_MAX_DEPTH:   # the same every call: predicted
        _move_elems_small(lv, base + (i + is_new) * NFIELD, base + (i + is_del) * NFIELD, n)
    elif n > 0:
        _move_elems(lv, base + (i + is_new) * NFIELD, base + (i + is_del) * NFIELD, n)
    keep = is_del - 1                   # all ones unless Delete (then the row written is emptied)
    _put_row(lv, base + (i + tail * is_del) * NFIELD, (px & keep) | (EMPTY_PX & ~keep), qty & keep, nord & keep)
    return 0

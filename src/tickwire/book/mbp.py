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

from ..mem.hint import likely, unlikely

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


# The inline move below serves up to SMALL_ELEMS int64s: a side of up to 10 rows (CME books
# are 10 deep) moves at most 9 rows = 27 elements. Deeper books use _move_elems (libc memmove).
SMALL_ELEMS = 28
SMALL_MAX_DEPTH = SMALL_ELEMS // NFIELD + 1   # rows per side the inline move serves


# (first element, int64 lanes): three 512-bit chunks and a 256-bit one. The fourth chunk was
# 512 bits (32 elements, books up to 11 deep) until session 7: a 10-deep book never moves more
# than 27 elements, and the narrower last load/store made `top` ~1 ns/msg faster (34.1 -> 33.1,
# interleaved A/B, 6 rounds, load 3.0-3.7; on Zen 4 a 512-bit access is two 256-bit ones).
_CHUNKS = ((0, 8), (8, 8), (16, 8), (24, 4))


@intrinsic
def _move_elems_small(typingctx, arr, dst, src, n):
    """memmove within ``arr`` (int64) of ``n`` elements (0 <= n <= SMALL_ELEMS) from flat
    index ``src`` to ``dst``, inline and without a branch: four masked loads of
    ``[src, src+28)`` (8, 8, 8 and 4 lanes; lanes at or past ``n`` masked off), then four
    masked stores to ``dst``. Every load comes before every store, so overlapping ranges are safe; a
    masked-off lane is neither read nor written (AVX-512 masked moves do not touch, or
    fault on, masked-off memory), so nothing outside ``[src, src+n)`` / ``[dst, dst+n)``
    is accessed. Why: on a stream with random price levels (``bench feed --profile
    uniform``) the size dispatch of the previous version (w = 16/8/4/2/1 element pairs,
    chosen by four compares on ``n``) mispredicted on most New/Delete entries: all-New
    at random levels cost ~10 ns per entry more than all-Change (session 5 stream
    variants). Before that, a libc memmove call cost ~18 % of the handler (perf profile,
    session 4). Without AVX-512 LLVM lowers the masked moves to scalar code (correct, slower)."""
    if not (isinstance(arr, types.Array) and arr.dtype == types.int64):
        return None

    def codegen(context, builder, sig, args):
        a, d, s, k = args
        ary = context.make_array(arr)(context, builder, a)
        i64 = ir.IntType(64)
        ptr_t = ary.data.type
        lanes = builder.sub(builder.shl(i64(1), k), i64(1))      # bit j set: element j moves (n <= 28)
        vals = []
        for first, w in _CHUNKS:
            vec = ir.VectorType(i64, w)
            mask_t = ir.VectorType(ir.IntType(1), w)
            # LLVM >= 21 form (no alignment argument; llvmlite 0.50 ships LLVM 22)
            load = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vec, [ptr_t, mask_t, vec]),
                                                  f"llvm.masked.load.v{w}i64.p0")
            mask = builder.bitcast(builder.trunc(builder.lshr(lanes, i64(first)), ir.IntType(w)), mask_t)
            vals.append((vec, mask_t, mask, first,
                         builder.call(load, [builder.gep(ary.data, [builder.add(s, i64(first))]), mask,
                                             ir.Constant(vec, None)])))
        for vec, mask_t, mask, first, v in vals:            # every load before every store: overlap-safe
            store = cgutils.get_or_insert_function(builder.module,
                                                   ir.FunctionType(ir.VoidType(), [vec, ptr_t, mask_t]),
                                                   f"llvm.masked.store.v{vec.count}i64.p0")
            builder.call(store, [v, builder.gep(ary.data, [builder.add(d, i64(first))]), mask])
        return context.get_dummy_value()

    return types.void(arr, types.int64, types.int64, types.int64), codegen


@intrinsic
def _put_row(typingctx, arr, at, px, qty, nord):
    """Store (px, qty, nord) at flat element index ``at`` of ``arr``: three plain stores,
    none of the per-index negative-wraparound code of ``lv[s, side, i, f]`` (notes §4).
    ``at`` comes from book_step's checked row arithmetic."""
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
def book_step(arr, base, rows, level, depth, action):
    """Everything one MBP entry does to a side but writing the entry's own row.

    ``arr``: an int64 array whose flat element ``base`` is row 0 of the side (``rows``
    rows of NFIELD elements, C order); ``level`` is 1-based, ``depth`` the instrument's
    depth for this side (<= rows). Returns ``(r, at, keep)``: r 0 - the caller writes the
    entry's (px, qty, nord) at flat index ``at``, each ANDed with ``keep`` (and px ORed with
    EMPTY_PX & ~keep): ``keep`` is 0 for a Delete, whose written row is the emptied last
    one; r 1 - level outside 1..depth, r 2 - unknown action (the caller counts both; the
    book is unchanged); r 3 - done, nothing to write (DeleteThru, DeleteFrom).

    Why the row write is left to the caller: the entry's values are then read from the
    packet *after* the row move. Read before it (as arguments), they had to be kept across
    the masked stores, which may alias the packet as far as LLVM knows, and in the
    feed's entry loop they went to the stack and back on every entry (session 7 asm).

    New, Change, Delete and Overlay (~99 % of a real feed) share one path: New moves rows
    i..depth-2 down one and writes row i; Delete moves rows i+1..depth-1 up one and
    empties the last row (the row written is chosen and blanked without a branch);
    Change and Overlay move nothing and write row i. A Change skips the move by one branch
    on the action byte (New/Delete are then told apart by arithmetic, not compares: LLVM had
    made three branches of them, session 8: feed_run ~1 ns/msg); it is not made
    branch-free: in an isolated A/B of apply_level (session 5; 200 k entries, medians of 7, ns
    per entry: old size-dispatched move / masked move always / masked move unless n = 0)
    the masked moves with an empty mask made Changes cost 6.2 instead of 2.9 ns:
    top-of-book stream 7.0 / 15.1 / 7.0, uniform levels 11.9 / 9.6 / 9.5, all Change
    3.8 / 6.2 / 2.9. (Tried in session 4: Change copying rows i+1..depth-1 onto
    themselves, so that the move does not depend on the action at all: slower, the copy
    costs more than the mispredicted branch it saves.) The inline move serves an
    instrument depth up to SMALL_MAX_DEPTH (at most SMALL_ELEMS elements move), deeper
    ones call memmove; the test is on the instrument's depth, which is the same entry
    after entry, so it is predicted."""
    if unlikely(action == ACT_DELETE_THRU):   # whole side; MDPriceLevel is not used
        for j in range(rows):           # inline, not clear_side: the feed's fast path holds no call
            _put_row(arr, base + j * NFIELD, EMPTY_PX, 0, 0)
        return 3, 0, 0
    if unlikely(level < 1 or level > depth):
        if action != ACT_DELETE_FROM or level < 1:
            return 1, 0, 0
        # DeleteFrom deeper than the depth we keep (a book kept shallower than the
        # channel's, e.g. `tickwire book --depth 5`): every row we hold goes
        level = depth
    i = level - 1
    if unlikely(action > ACT_DELETE or action < 0):   # rare: Overlay, DeleteFrom, unknown
        if action == ACT_OVERLAY:
            return 0, base + i * NFIELD, -1
        if action != ACT_DELETE_FROM:
            return 2, 0, 0
        # DeleteFrom: levels 1..N go, the rest move up N rows, the freed rows are emptied
        if depth <= SMALL_MAX_DEPTH:
            _move_elems_small(arr, base, base + level * NFIELD, max(0, depth - level) * NFIELD)
        elif depth - level > 0:
            _move_elems(arr, base, base + level * NFIELD, (depth - level) * NFIELD)
        j = max(0, depth - level)
        while j < depth:
            _put_row(arr, base + j * NFIELD, EMPTY_PX, 0, 0)
            j += 1
        return 3, 0, 0
    # action is 0 New, 1 Change or 2 Delete here: told apart by arithmetic, and the one
    # branch left is on the action byte alone (read early, so a mispredict is found early)
    is_del = action >> 1
    is_new = 1 - ((action + 1) >> 1)
    tail = depth - 1 - i                # rows below row i
    if action != ACT_CHANGE:
        n = tail * NFIELD               # may be 0 (level == depth): the masked move then touches nothing
        if likely(depth <= SMALL_MAX_DEPTH):
            _move_elems_small(arr, base + (i + is_new) * NFIELD, base + (i + is_del) * NFIELD, n)
        elif n > 0:
            _move_elems(arr, base + (i + is_new) * NFIELD, base + (i + is_del) * NFIELD, n)
    return 0, base + (i + tail * is_del) * NFIELD, is_del - 1


@njit(cache=True, inline="always", _nrt=False)
def put_entry_row(arr, at, keep, px, qty, nord):
    """The row write of book_step's r 0 (``keep`` 0: an emptied row)."""
    _put_row(arr, at, (px & keep) | (EMPTY_PX & ~keep), qty & keep, nord & keep)


@njit(cache=True, inline="always", _nrt=False)
def apply_level(lv, s, side, level, depth, action, px, qty, nord):
    """Apply one MBP entry with its values: book_step on ``lv[s, side]`` and the row
    write. Returns 0, or 1 for a level outside 1..depth, 2 for an unknown action (the
    caller counts both; the book is left unchanged). The feed's entry loops call
    book_step themselves and read the values from the packet after the move."""
    # flat element index of row 0 of this side (C order: slot, side, row, field)
    base = ((s * lv.shape[1] + side) * lv.shape[2]) * NFIELD
    r, at, keep = book_step(lv, base, lv.shape[2], level, depth, action)
    if r == 0:
        put_entry_row(lv, at, keep, px, qty, nord)
        return 0
    return r if r < 3 else 0

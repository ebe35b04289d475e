"""MDP 3.0 channel handler, compiled: one UDP payload in, books updated.

    feed_input(mem, buf, off, length, source)  source: SRC_A / SRC_B (incrementals),
                                               SRC_SNAPSHOT (market recovery loop)
    feed_run(mem, buf, offs, lens, source)     a batch of payloads (views built once)
    feed_flush(mem)                            declare the gap the reorder window holds

All are ``@njit(cache=True, _nrt=False)`` and take the FeedMem (two flat arrays, feed.state),
so the engine calls them per packet from inside its own Numba loop, and Python calls them
the same way (CLI, tests). Inside, ``views(mem)`` carves the named regions (FeedState). A
packet first meets the fast path (feed.fastpath, inlined into feed_input and feed_run, no
call inside); whatever it does not handle goes to ``slow_packet``, the general walk below,
out of line, which resumes where the fast path stopped. The rare paths are out-of-line
functions that take the FeedMem and carve their own views.

Sequencing (notes/mdp3.md §5): A and B carry identical packets; the first copy of a
MsgSeqNum is processed, later copies are counted as duplicates. A packet ahead of the
next expected seq waits in a small window for the other line to fill the hole; when
the window is full or the hole is wider than the window, the missing seqs are declared
lost. After a loss every synced instrument becomes STALE: its next entry proves it good
(RptSeq = last + 1) or broken (a jump: RECOVERING). A RECOVERING instrument is rebuilt
from the snapshot loop (52): load the snapshot, set RptSeq, then replay the incrementals
buffered since the snapshot's LastMsgSeqNumProcessed for that instrument only, with the
same RptSeq continuity rule.

Bad input (truncated packet, MsgSize past the packet, block or group past the message,
wrong schema id, unknown template, short entries) is counted under its cause and
skipped; when we cannot tell which instruments a skipped message touched, the channel is
treated as having lost a packet (instruments go STALE), never silently wrong.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..book.mbp import BID, IMPLIED_OFFER, OFFER, book_step, clear_book, put_entry_row
from ..mem.atomics import memcpy
from ..mem.hotpath import into_runtime_free_callers
from ..sbe.le import rd_i32, rd_i64, rd_u8, rd_u16, rd_u32
from . import layout as L
from .carve import carve
from .fastpath import (BOOK_RESET, END_OF_EVENT, FAST_DONE, HASH_MAX, HASH_MUL, PACKET_HEADER, SBE_HEADER, SIDE_OF,
                       fast_packet, group_at)
from .state import (C_BAD_ACTION, C_BAD_ENTRY_TYPE, C_FIRST_SEQ, C_BAD_LEVEL, C_BLOCK_OVERRUN, C_BOOK_RESETS, C_BUFFERING,
                    C_BYTES, C_CHANNEL_RESETS, C_DEFAULT_DEPTH, C_DUPLICATES, C_ENTRIES, C_GAPS, C_GROUP_OVERRUN,
                    C_IN_EVENT, C_INSTRUMENT_TABLE_FULL, C_LAST_LOST_SEQ, C_LAST_SEQ, C_LOST_PACKETS,
                    C_MESSAGE_OVERRUN, C_MESSAGES, C_N_INST, C_NEWER_VERSION, C_NEXT_SEQ, C_OLD_RPT_ENTRIES,
                    C_PACKET_TOO_BIG, C_PACKETS, C_PEND_COUNT, C_RECOVERIES, C_REORDERED, C_REPLAY_OVERFLOW,
                    C_REPLAYED_PACKETS, C_REPLAYING, C_RING_COUNT, C_RING_FIRST_SEQ, C_RING_HEAD, C_RPT_GAPS,
                    C_SCHEMA_ID, C_SCHEMA_ID_MISMATCH, C_SCHEMA_VERSION, C_SHORT_ENTRY, C_SNAPSHOT_PACKETS,
                    C_SNAPSHOTS_APPLIED, C_SNAPSHOTS_IGNORED, C_SNAPSHOTS_TOO_OLD, C_STALE_MARKS, C_START_SYNCED,
                    C_TRUNCATED_PACKET, C_UNKNOWN_TEMPLATE, C_UNSUPPORTED_TEMPLATE_ENTRIES, I_DEPTH, I_DISPLAY,
                    I_IDEPTH, I_LAST_SEQ, I_MINPX, I_RECOVERIES, I_RPT, I_SECID, I_STATE, I_STATUS, I_UPDATES,
                    S_EMPTY, S_RECOVERING, S_STALE, S_SYNCED, SRC_SNAPSHOT, FeedMem, FeedState, H_CTR, H_DEPTH, H_HSIZE,
                    H_INDEX, H_INST, H_LEVELS, H_MAXPKT, H_NINST, H_PEND8, H_PENDM, H_RING, H_RING8, H_RINGM, H_TPL,
                    H_WINDOW, N_CTR, N_INST_COLS, H_MAXO, H_OFREE, H_OHSIZE, H_OINDEX, H_OMETA, H_ORDERS,
                    I_MBO_CHUNK, I_MBO_CHUNK_LMSP, I_MBO_STATE, C_MBO_BAD_CHUNK, C_MBO_BAD_ORDER_ID,
                    C_MBO_DUPLICATE_ORDER, C_MBO_SNAPSHOTS_APPLIED, C_MBO_TABLE_FULL, C_MBO_UNKNOWN_ORDER,
                    C_JUMP_SEQ, C_JUMP_SRC, C_SEQ_JUMPS_UNCONFIRMED, C_WINDOW_EVICTED)
from ..book.mbp import NFIELD, NSIDE
from ..book.mbo import (MBO_BAD_ID, MBO_DUPLICATE, MBO_FULL, MBO_OK, MBO_UNKNOWN, N_META, N_OCOLS, mbo_add,
                        mbo_clear_instrument, mbo_delete, mbo_update)
from collections import namedtuple

# The MBO regions, carved from ``FeedState.flat`` by the MBO code only (mbo_of), so the
# MBP hot path neither builds nor passes them.
MboState = namedtuple("MboState", "orders oindex free meta")

NULL_I32 = 2147483647


# ------------------------------------------------------------------ state views
@njit(cache=True, inline="always", _nrt=False)
def views(mem):
    """FeedMem (two flat arrays) -> FeedState of region views; no copy, no allocation."""
    m, b = mem
    n, depth, w, r, mp = m[H_NINST], m[H_DEPTH], m[H_WINDOW], m[H_RING], m[H_MAXPKT]
    return FeedState(
        carve(m, m[H_CTR], N_CTR),
        carve(m, m[H_TPL], (L.MAX_TEMPLATE, L.NSLOT)),
        carve(m, m[H_INST], (n, N_INST_COLS)),
        carve(m, m[H_INDEX], m[H_HSIZE]),
        carve(m, m[H_LEVELS], (n, NSIDE, depth, NFIELD)),
        carve(b, m[H_PEND8], (w, mp)),
        carve(m, m[H_PENDM], (w, 2)),
        carve(b, m[H_RING8], (r, mp)),
        carve(m, m[H_RINGM], (r, 2)),
        m, b)


@njit(cache=True, inline="always", _nrt=False)
def st_mem(st):
    """The FeedMem behind views ``st``. Out-of-line (cold) functions take this and carve
    their own views: passing the whole FeedState by value made every hot caller compute,
    spill and push all ten region views for calls that almost never happen."""
    return FeedMem(st.flat, st.u8)


@njit(cache=True, inline="always", _nrt=False)
def mbo_views(mem):
    return mbo_of_flat(mem[0])


@njit(cache=True, inline="always", _nrt=False)
def mbo_of(st):
    """The MBO regions, carved only by the MBO code (47/53): the MBP hot path never pays for them."""
    return mbo_of_flat(st.flat)


@njit(cache=True, inline="always", _nrt=False)
def mbo_of_flat(m):
    mo = m[H_MAXO]
    return MboState(carve(m, m[H_ORDERS], (mo, N_OCOLS)), carve(m, m[H_OINDEX], m[H_OHSIZE]),
                    carve(m, m[H_OFREE], mo), carve(m, m[H_OMETA], N_META))


# ------------------------------------------------------------------ instruments
# index[h] holds the SecurityID and the slot in one word: (secid & 0xFFFFFFFF) << 32 | (slot + 1),
# 0 = empty. One load answers a probe; with the slot alone, every entry paid two
# dependent loads (index, then inst[slot, I_SECID]) - the costliest step per entry in a
# perf profile of the benchmark.
@njit(cache=True, inline="always", _nrt=False)
def find_slot(st, secid):
    """Slot of SecurityID ``secid``, or -1. Open addressing; the first probe hits unless
    two SecurityIDs collide, so the inlined part is a multiply, a mask, one load and one
    compare: no loop. A key match on an empty word (SecurityID 0, ``e`` = 0) gives
    (0 & 0xFFFFFFFF) - 1 = -1, "not found", as it should. Collisions go out of line."""
    h = (secid * HASH_MUL) & ((st.index.size - 1) & HASH_MAX)
    e = st.index[h]
    if ((e >> 32) & 0xFFFFFFFF) == (secid & 0xFFFFFFFF):   # mask: the shift is arithmetic
        return (e & 0xFFFFFFFF) - 1
    if e == 0:
        return -1
    return find_slot_far(st_mem(st), secid)


@njit(cache=True, _nrt=False)
def find_slot_far(mem, secid):
    """find_slot past the first probe (its word holds another SecurityID)."""
    st = views(mem)
    mask = (st.index.size - 1) & HASH_MAX
    key = secid & 0xFFFFFFFF
    h = (secid * HASH_MUL) & mask
    for _ in range(st.index.size):
        e = st.index[h]
        if e == 0:
            return -1
        if ((e >> 32) & 0xFFFFFFFF) == key:
            return (e & 0xFFFFFFFF) - 1
        h = (h + 1) & mask
    return -1


@njit(cache=True, _nrt=False)
def new_slot(mem, secid):
    """A slot for an unseen SecurityID (-1 and counted if the table is full). Out of line:
    it runs once per instrument, and keeping it out of the per-entry loop keeps that loop small."""
    st = views(mem)
    mask = (st.index.size - 1) & HASH_MAX   # the same probe sequence as find_slot
    h = (secid * HASH_MUL) & mask
    for _ in range(st.index.size):
        if st.index[h] == 0:
            break
        h = (h + 1) & mask
    n = st.ctr[C_N_INST]
    if n >= st.inst.shape[0] or st.index[h] != 0:
        st.ctr[C_INSTRUMENT_TABLE_FULL] += 1
        return -1
    st.index[h] = ((secid & 0xFFFFFFFF) << 32) | (n + 1)
    st.ctr[C_N_INST] = n + 1
    st.inst[n, I_SECID] = secid
    # Joined at the start of the channel (seq 1) and nothing lost since: the book starts
    # empty and valid. After a loss: unproven (STALE) until an entry with RptSeq 1
    # shows nothing was missed, or a snapshot arrives. Joined later: unknown until a snapshot.
    if st.ctr[C_START_SYNCED] == 1:
        st.inst[n, I_STATE] = S_SYNCED if st.ctr[C_LAST_LOST_SEQ] < 0 else S_STALE
    else:
        st.inst[n, I_STATE] = S_RECOVERING
    st.inst[n, I_RPT] = 0
    st.inst[n, I_DEPTH] = st.ctr[C_DEFAULT_DEPTH]
    st.inst[n, I_IDEPTH] = min(2, st.levels.shape[2])
    st.inst[n, I_STATUS] = -1
    if st.inst[n, I_STATE] == S_RECOVERING:
        start_buffering(st_mem(st))
    return n


@njit(cache=True, inline="always", _nrt=False)
def instrument_slot(st, secid, create):
    """Slot of SecurityID ``secid``; with ``create`` a new slot (-1 if the table is full)."""
    s = find_slot(st, secid)
    if s < 0 and create:
        s = new_slot(st_mem(st), secid)
    return s


@njit(cache=True, _nrt=False)
def start_buffering(mem):
    st = views(mem)
    if st.ctr[C_BUFFERING] == 0:
        st.ctr[C_BUFFERING] = 1
        st.ctr[C_RING_COUNT] = 0
        st.ctr[C_RING_HEAD] = 0
        st.ctr[C_RING_FIRST_SEQ] = -1


@njit(cache=True, _nrt=False)
def mark_all_stale(mem, lost_upto):
    """Unknown loss up to seq ``lost_upto``: synced books become unproven."""
    st = views(mem)
    if lost_upto > st.ctr[C_LAST_LOST_SEQ]:
        st.ctr[C_LAST_LOST_SEQ] = lost_upto
    for s in range(st.ctr[C_N_INST]):
        if st.inst[s, I_STATE] == S_SYNCED:
            st.inst[s, I_STATE] = S_STALE
            st.ctr[C_STALE_MARKS] += 1
        if st.inst[s, I_MBO_STATE] == S_SYNCED:    # no RptSeq in 47: only a snapshot can tell
            st.inst[s, I_MBO_STATE] = S_RECOVERING
    start_buffering(st_mem(st))


@njit(cache=True, _nrt=False)
def break_chain(mem, s):
    st = views(mem)
    st.inst[s, I_STATE] = S_RECOVERING
    st.ctr[C_RPT_GAPS] += 1
    start_buffering(st_mem(st))


@njit(cache=True, inline="always", _nrt=False)
def check_rpt_row(st, row, s, rpt):
    """RptSeq rule for slot ``s`` (``row`` = ``st.inst[s]``, which the caller already holds).
    Returns True when the entry must be applied."""
    state = row[I_STATE]
    if state == S_RECOVERING:
        return False
    last = row[I_RPT]
    if rpt <= last:
        st.ctr[C_OLD_RPT_ENTRIES] += 1    # already in the book (replay overlap, snapshot newer)
        return False
    if rpt != last + 1:
        break_chain(st_mem(st), s)
        return False
    if state == S_STALE:
        row[I_STATE] = S_SYNCED   # chain continued across the loss: nothing was missed
    row[I_RPT] = rpt
    return True


@njit(cache=True, inline="always", _nrt=False)
def side_of(entry_type):
    """``entry_type`` is a u8 read (0..255)."""
    return SIDE_OF[entry_type]


# ------------------------------------------------------------------ groups
@njit(cache=True, inline="always", _nrt=False)
def group_bounds(st, tid, g, buf, pos, mend):
    """Group ``g`` of template ``tid`` at ``pos`` (group_at with the schema's dimension)."""
    base = L.T_GRP + 4 * g
    return group_at(buf, pos, mend, st.tpl[tid, base], st.tpl[tid, base + 1], st.tpl[tid, base + 2])


@njit(cache=True, inline="always", _nrt=False)
def checked_entries(st, entry_len, count, e, pos, eneed):
    """An entry must hold every field the handler reads (``eneed`` bytes), else counted
    ``short_entry`` and the group is unreadable (entry_len -1)."""
    if entry_len >= 0 and count > 0 and entry_len < eneed:
        st.ctr[C_SHORT_ENTRY] += 1
        return -1, 0, pos
    return entry_len, count, e


@njit(cache=True, inline="always", _nrt=False)
def entry_group(st, tid, buf, pos, mend):
    """Group 0 at ``pos``, checked once for the whole group: its header and
    count x blockLength entries lie inside the message, and an entry holds every field the
    handler reads (else counted ``short_entry``). Returns (entry_len, count, first_entry),
    entry_len -1 when the group cannot be read; entries are then read without further checks."""
    entry_len, count, e = group_bounds(st, tid, 0, buf, pos, mend)
    return checked_entries(st, entry_len, count, e, pos, st.tpl[tid, L.T_ENEED])


# ------------------------------------------------------------------ templates
@njit(cache=True, inline="always", _nrt=False)
def on_book(st, tid, buf, body, block_len, mend, seq, only, first):
    """46: returns the entries applied (the caller counts them in C_ENTRIES), -1 when
    the group cannot be read. Entries before ``first`` are skipped (fastpath applied them).

    When the schema lays 46 out as CME does (``T_STD46``, decided once by layout.build:
    entry offsets STD46, groupSize dimension), the group header and every entry field are
    read at constant offsets: base + entry + constant, no offsets held in registers (the
    generic loop spilled them and half its other locals to the stack on every entry).
    Any other layout takes the generic loop, out of line (one call per message): inlined
    as well, it made every inlined copy of the message walk compile ~50 % longer
    (feed_input alone 61 -> 93 s of CPU, cold). Same source for both."""
    pos = body + block_len
    if st.tpl[tid, L.T_STD46] == 1:
        hs, noff, nw = L.STD46_GROUP
        entry_len, count, e = group_at(buf, pos, mend, hs, noff, nw)
        entry_len, count, e = checked_entries(st, entry_len, count, e, pos, L.STD46_ENEED)
        if entry_len < 0:
            return -1
        o = L.STD46
        return book_entries(st, buf, e + first * entry_len, entry_len, count - first, seq, only,
                            o[0], o[1], o[2], o[3], o[4], o[5], o[6], o[7])
    entry_len, count, e = entry_group(st, tid, buf, pos, mend)
    if entry_len < 0:
        return -1
    e += first * entry_len
    count -= first
    # Offsets into locals once per message: every region is a view of the same flat
    # array, so LLVM must assume each book store may change tpl and would reload them.
    t = st.tpl[tid]
    return book_entries_any(st_mem(st), buf, e, entry_len, count, seq, only, t[L.E_PX], t[L.E_SIZE], t[L.E_SECID],
                            t[L.E_RPT], t[L.E_NORD], t[L.E_LEVEL], t[L.E_ACTION], t[L.E_TYPE])


@njit(cache=True, _nrt=False)
def book_entries_any(mem, buf, e, entry_len, count, seq, only, o_px, o_size, o_secid, o_rpt, o_nord, o_level,
                     o_action, o_type):
    """book_entries for a schema whose 46 entry layout is not CME's (offsets from the schema)."""
    return book_entries(views(mem), buf, e, entry_len, count, seq, only, o_px, o_size, o_secid, o_rpt, o_nord,
                        o_level, o_action, o_type)


@njit(cache=True, inline="always", _nrt=False)
def entry_slot(st, buf, at_secid, seq, only):
    """Slot of the entry's SecurityID (read at ``at_secid``; a new instrument gets a slot)
    when the entry is to be applied (``only`` >= 0: replay for that slot alone), with the
    seq it was last seen at on the incremental feed set (see apply_snapshot); else -1.
    No cache of the previous entry's slot: the inlined probe is a few instructions, and
    on interleaved instruments the cache's branch mispredicted."""
    s = instrument_slot(st, rd_i32(buf, at_secid), True)
    if s >= 0 and (only < 0 or s == only):
        st.inst[s, I_LAST_SEQ] = seq
        return s
    return -1


@njit(cache=True, inline="always", _nrt=False)
def book_entries(st, buf, e, entry_len, count, seq, only, o_px, o_size, o_secid, o_rpt, o_nord, o_level,
                 o_action, o_type):
    """The 46 entry loop: ``count`` entries of ``entry_len`` bytes from ``e``, already
    checked to lie inside the message (entry_group). Returns the entries applied."""
    lv = st.levels
    inst = st.inst
    applied = 0
    for _ in range(count):
        s = entry_slot(st, buf, e + o_secid, seq, only)
        if s >= 0:
            applied += 1
            row = inst[s]                       # the instrument's columns: one index computation
            if check_rpt_row(st, row, s, rd_u32(buf, e + o_rpt)):
                side = side_of(rd_u8(buf, e + o_type))
                if side == BOOK_RESET:
                    clear_book(lv, s)
                    st.ctr[C_BOOK_RESETS] += 1
                elif side < 0:
                    st.ctr[C_BAD_ENTRY_TYPE] += 1
                else:
                    depth = row[I_DEPTH + (side >> 1)]  # outright or implied depth, no branch
                    r, at, keep = book_step(lv, ((s * NSIDE + side) * lv.shape[2]) * NFIELD, lv.shape[2],
                                            rd_u8(buf, e + o_level), depth, rd_u8(buf, e + o_action))
                    if r == 0:                  # values read after the row move (book_step)
                        nord = rd_i32(buf, e + o_nord) if o_nord >= 0 else 0
                        put_entry_row(lv, at, keep, rd_i64(buf, e + o_px), rd_i32(buf, e + o_size), nord)
                    elif r == 1:
                        st.ctr[C_BAD_LEVEL] += 1
                    elif r == 2:
                        st.ctr[C_BAD_ACTION] += 1
                row[I_UPDATES] += 1
        e += entry_len
    return applied


@njit(cache=True, inline="always", _nrt=False)
def on_rpt_only(st, tid, buf, body, block_len, mend, seq, only, breaks, first):
    """Trade summary and statistics: they advance RptSeq but not the MBP book.
    An unsupported book template (``breaks``) sends its instruments to recovery.
    Returns the entries applied, -1 when the group cannot be read (as on_book)."""
    t = st.tpl[tid]
    entry_len, count, e = entry_group(st, tid, buf, body + block_len, mend)
    if entry_len < 0:
        return -1
    e += first * entry_len
    count -= first
    o_secid, o_rpt = t[L.E_SECID], t[L.E_RPT]     # locals: see on_book
    applied = 0
    for _ in range(count):
        s = entry_slot(st, buf, e + o_secid, seq, only)
        if s >= 0:
            applied += 1
            row = st.inst[s]
            if breaks:
                st.ctr[C_UNSUPPORTED_TEMPLATE_ENTRIES] += 1
                if row[I_STATE] != S_RECOVERING:
                    break_chain(st_mem(st), s)
            else:
                check_rpt_row(st, row, s, rd_u32(buf, e + o_rpt))
        e += entry_len
    return applied


@njit(cache=True, inline="always", _nrt=False)
def add_order(mb, t, buf, e, s, side):
    """mbo_add of the order in the 47/53 entry at ``e`` (``t``: the template's offsets)."""
    return mbo_add(mb.orders, mb.oindex, mb.free, mb.meta, rd_i64(buf, e + t[L.E_ORDERID]),
                   rd_i64(buf, e + t[L.E_PRIO]), rd_i64(buf, e + t[L.E_PX]), rd_i32(buf, e + t[L.E_SIZE]), s, side)


@njit(cache=True, inline="always", _nrt=False)
def count_mbo_failure(st, r):
    """Count an order-table result other than MBO_OK under its cause."""
    if r == MBO_DUPLICATE:
        st.ctr[C_MBO_DUPLICATE_ORDER] += 1
    elif r == MBO_UNKNOWN:
        st.ctr[C_MBO_UNKNOWN_ORDER] += 1
    elif r == MBO_FULL:
        st.ctr[C_MBO_TABLE_FULL] += 1
    elif r == MBO_BAD_ID:
        st.ctr[C_MBO_BAD_ORDER_ID] += 1


@njit(cache=True, _nrt=False)
def on_mbo(mem, tid, buf, body, block_len, mend, seq, only):
    """47 MDIncrementalRefreshOrderBook: New / Change / Delete by OrderID."""
    st = views(mem)
    mb = mbo_of(st)
    t = st.tpl[tid]
    entry_len, count, e = entry_group(st, tid, buf, body + block_len, mend)
    if entry_len < 0:
        return False
    if st.ctr[C_REPLAYING] == 1:        # replay for an MBP snapshot: MBO already has these
        return True
    for _ in range(count):
        s = instrument_slot(st, rd_i32(buf, e + t[L.E_SECID]), True)
        if s >= 0 and (only < 0 or s == only):
            st.ctr[C_ENTRIES] += 1
            if st.inst[s, I_MBO_STATE] == S_EMPTY:
                # First MBO entry: the order book is known (empty before it) only if the
                # channel started at seq 1 and nothing was ever lost or skipped since.
                fresh = st.ctr[C_START_SYNCED] == 1 and st.ctr[C_LAST_LOST_SEQ] < 0
                st.inst[s, I_MBO_STATE] = S_SYNCED if fresh else S_RECOVERING
                if st.inst[s, I_MBO_STATE] == S_RECOVERING:
                    start_buffering(st_mem(st))
            if st.inst[s, I_MBO_STATE] == S_SYNCED:
                side = side_of(rd_u8(buf, e + t[L.E_TYPE]))
                oid = rd_i64(buf, e + t[L.E_ORDERID])
                action = rd_u8(buf, e + t[L.E_ACTION])
                r = MBO_OK
                if side != BID and side != OFFER:
                    st.ctr[C_BAD_ENTRY_TYPE] += 1
                elif action == 0:
                    r = add_order(mb, t, buf, e, s, side)
                elif action == 1:
                    r = mbo_update(mb.orders, mb.oindex, oid, rd_i64(buf, e + t[L.E_PRIO]),
                                   rd_i64(buf, e + t[L.E_PX]), rd_i32(buf, e + t[L.E_SIZE]), side, s)
                elif action == 2:
                    r = mbo_delete(mb.orders, mb.oindex, mb.free, mb.meta, oid, s)
                else:
                    st.ctr[C_BAD_ACTION] += 1
                if r != MBO_OK:
                    # The order book no longer matches the venue's: recover it from 53.
                    count_mbo_failure(st, r)
                    st.inst[s, I_MBO_STATE] = S_RECOVERING
                    start_buffering(st_mem(st))
        if s >= 0 and (only < 0 or s == only):
            st.inst[s, I_LAST_SEQ] = seq
        e += entry_len
    return True


@njit(cache=True, inline="always", _nrt=False)
def root_of(mem, tid, buf, body):
    """For the cold per-message functions (54, 52, 53): the region views, template
    ``tid``'s offsets and the slot of the SecurityID in the message's root block (created
    if new; -1 if the instrument table is full)."""
    st = views(mem)
    t = st.tpl[tid]
    return st, t, instrument_slot(st, rd_i32(buf, body + t[L.R_SECID]), True)


@njit(cache=True, _nrt=False)
def on_definition(mem, tid, buf, body, block_len, mend):
    st, t, s = root_of(mem, tid, buf, body)
    if s < 0:
        return True
    if t[L.R_MINPX] >= 0:
        st.inst[s, I_MINPX] = rd_i64(buf, body + t[L.R_MINPX])
    if t[L.R_DISPLAY] >= 0:
        st.inst[s, I_DISPLAY] = rd_i64(buf, body + t[L.R_DISPLAY])
    target = t[L.T_TARGET]
    if target < 0:
        return True
    pos = body + block_len
    for g in range(target + 1):       # skip the groups before NoMDFeedTypes
        entry_len, count, e = group_bounds(st, tid, g, buf, pos, mend)
        if entry_len < 0:
            return False
        if g == target and t[L.E_FEEDTYPE] >= 0 and t[L.E_DEPTH] >= 0 and entry_len >= t[L.T_ENEED]:
            q = e
            for _ in range(count):
                f = q + t[L.E_FEEDTYPE]
                depth = np.int64(np.int8(rd_u8(buf, q + t[L.E_DEPTH])))
                depth = max(1, min(depth, st.levels.shape[2]))
                # 'GBX' outright depth, 'GBI' implied depth (notes/mdp3.md §3, template 54)
                if rd_u8(buf, f) == 71 and rd_u8(buf, f + 1) == 66:
                    if rd_u8(buf, f + 2) == 88:
                        st.inst[s, I_DEPTH] = depth
                    elif rd_u8(buf, f + 2) == 73:
                        st.inst[s, I_IDEPTH] = depth
                q += entry_len
        pos = e + entry_len * count
    return True


@njit(cache=True, _nrt=False)
def on_status(mem, tid, buf, body):
    st = views(mem)
    t = st.tpl[tid]
    secid = rd_i32(buf, body + t[L.R_SECID])
    if secid == NULL_I32:
        return            # applies to a whole security group: not tracked per instrument
    s = instrument_slot(st, secid, True)
    if s >= 0:
        st.inst[s, I_STATUS] = rd_u8(buf, body + t[L.R_STATUS])


@njit(cache=True, _nrt=False)
def on_channel_reset(mem):
    """ChannelReset4: every book on the channel is empty, RptSeq restarts at 1."""
    st = views(mem)
    mb = mbo_of(st)
    st.ctr[C_CHANNEL_RESETS] += 1
    for s in range(st.ctr[C_N_INST]):
        clear_book(st.levels, s)
        st.inst[s, I_RPT] = 0
        st.inst[s, I_STATE] = S_SYNCED
        # the order books are empty too: a known state again, whatever recovery was pending
        mbo_clear_instrument(mb.orders, mb.oindex, mb.free, mb.meta, s)
        if st.inst[s, I_MBO_STATE] != S_EMPTY:
            st.inst[s, I_MBO_STATE] = S_SYNCED
        st.inst[s, I_MBO_CHUNK] = 0
    maybe_stop_buffering(mem)


# ------------------------------------------------------------------ one packet's messages
@njit(cache=True, inline="always", _nrt=False)
def next_message(st, buf, pos, end):
    """Frame the message at ``pos``: MsgSize u16, then the SBE header (blockLength,
    templateId, schemaId, version; notes/mdp3.md §1). Returns (cause, mend, tid, body,
    block_len). cause -1: readable, the root block lies inside the message. Otherwise the
    counter naming why not: after C_TRUNCATED_PACKET / C_MESSAGE_OVERRUN the rest of the
    packet cannot be framed (mend -1); after C_SCHEMA_ID_MISMATCH, C_UNKNOWN_TEMPLATE or
    C_BLOCK_OVERRUN only this message is skipped (``mend`` is where the next one starts)."""
    if pos + 2 + SBE_HEADER > end:
        return C_TRUNCATED_PACKET, -1, 0, 0, 0
    size = rd_u16(buf, pos)
    mend = pos + size
    if size < 2 + SBE_HEADER or mend > end:
        return C_MESSAGE_OVERRUN, -1, 0, 0, 0
    m = pos + 2
    block_len = rd_u16(buf, m)
    tid = rd_u16(buf, m + 2)
    body = m + SBE_HEADER
    if rd_u16(buf, m + 4) != st.ctr[C_SCHEMA_ID]:
        return C_SCHEMA_ID_MISMATCH, mend, tid, body, block_len
    if tid >= L.MAX_TEMPLATE or st.tpl[tid, L.T_KIND] == L.K_UNKNOWN:
        return C_UNKNOWN_TEMPLATE, mend, tid, body, block_len
    if body + block_len > mend or block_len < st.tpl[tid, L.T_RNEED]:
        return C_BLOCK_OVERRUN, mend, tid, body, block_len
    return -1, mend, tid, body, block_len


@njit(cache=True, inline="always", _nrt=False)
def process_messages(st, buf, off, length, seq, only, start, skip):
    """Walk the messages of an in-order incremental packet from ``start`` (the first
    message: off + PACKET_HEADER). ``only`` >= 0 restricts book changes to that
    instrument slot (replay after its snapshot). ``skip`` >= 0 resumes where
    fastpath.fast_packet stopped: the message at ``start`` is already counted and its
    first ``skip`` entries applied.

    (Tried: messages/entries/in_event counted in locals and added to ``ctr`` once per
    packet, schema id/version loaded once per packet: feed_input ~5 % faster, feed_run
    ~6 % slower in an interleaved A/B - the locals live across the entry loop and push
    its values out of registers. Not kept.)"""
    pos = start
    end = off + length
    replay = only >= 0
    while pos < end:
        cause, mend, tid, body, block_len = next_message(st, buf, pos, end)
        if mend < 0:                          # the rest of the packet cannot be framed
            if not replay:
                st.ctr[cause] += 1
                mark_all_stale(st_mem(st), seq)
            break
        pos = mend
        first = skip if skip > 0 else 0       # entries of this message already applied
        counted = skip >= 0                   # this message already counted (resumed)
        skip = -1
        if not replay and not counted:
            st.ctr[C_MESSAGES] += 1
            if (cause < 0 or cause == C_BLOCK_OVERRUN) and rd_u16(buf, body - 2) > st.ctr[C_SCHEMA_VERSION]:
                st.ctr[C_NEWER_VERSION] += 1   # SBE §3.7: decoded by blockLength, extra fields skipped
        if cause >= 0:
            if not replay:
                st.ctr[cause] += 1
                if cause != C_UNKNOWN_TEMPLATE:   # it could have touched any instrument
                    mark_all_stale(st_mem(st), seq)
            continue
        t = st.tpl[tid]
        kind = t[L.T_KIND]
        mei = t[L.R_MEI]
        if mei >= 0 and not replay and not counted:
            st.ctr[C_IN_EVENT] = 0 if rd_u8(buf, body + mei) & END_OF_EVENT else 1
        n = 0
        if kind == L.K_BOOK:
            n = on_book(st, tid, buf, body, block_len, mend, seq, only, first)
        elif kind == L.K_TRADE or kind == L.K_RPT_ONLY:
            n = on_rpt_only(st, tid, buf, body, block_len, mend, seq, only, False, first)
        elif kind == L.K_MBO:
            n = 0 if on_mbo(st_mem(st), tid, buf, body, block_len, mend, seq, only) else -1
        elif kind == L.K_RPT_BREAK:
            n = on_rpt_only(st, tid, buf, body, block_len, mend, seq, only, True, first)
        elif replay:
            continue
        elif kind == L.K_DEF:
            n = 0 if on_definition(st_mem(st), tid, buf, body, block_len, mend) else -1
        elif kind == L.K_STATUS:
            on_status(st_mem(st), tid, buf, body)
        elif kind == L.K_RESET:
            on_channel_reset(st_mem(st))
        if n >= 0:
            st.ctr[C_ENTRIES] += n
        elif not replay:
            st.ctr[C_GROUP_OVERRUN] += 1
            mark_all_stale(st_mem(st), seq)


@njit(cache=True, _nrt=False)
def keep_for_replay(mem, buf, off, length, seq):
    st = views(mem)
    ring = st.ring
    if length > ring.shape[1]:
        st.ctr[C_PACKET_TOO_BIG] += 1
        st.ctr[C_RING_COUNT] = 0           # coverage broken: only newer snapshots can help
        st.ctr[C_RING_FIRST_SEQ] = seq + 1
        return
    n = ring.shape[0]
    i = (st.ctr[C_RING_HEAD] + st.ctr[C_RING_COUNT]) % n
    if st.ctr[C_RING_COUNT] == n:          # full: overwrite the oldest
        st.ctr[C_REPLAY_OVERFLOW] += 1
        st.ctr[C_RING_HEAD] = (st.ctr[C_RING_HEAD] + 1) % n
        st.ctr[C_RING_FIRST_SEQ] = st.ring_meta[st.ctr[C_RING_HEAD], 0]
    else:
        st.ctr[C_RING_COUNT] += 1
        if st.ctr[C_RING_COUNT] == 1:
            st.ctr[C_RING_FIRST_SEQ] = seq
    memcpy(ring[i], 0, buf, off, length)
    st.ring_meta[i, 0] = seq
    st.ring_meta[i, 1] = length


@njit(cache=True, inline="always", _nrt=False)
def done_in_order(st, buf, off, length, seq):
    """Packet ``seq`` has been processed: advance the sequence; keep it for replay while
    some instrument waits for a snapshot."""
    st.ctr[C_NEXT_SEQ] = seq + 1
    st.ctr[C_LAST_SEQ] = seq
    if st.ctr[C_BUFFERING] == 1:
        keep_for_replay(st_mem(st), buf, off, length, seq)


@njit(cache=True, _nrt=False)
def replay_messages(mem, buf, off, length, seq, only):
    """Out-of-line copy of the message walk for the cold callers (window drain, replay),
    so the inlined hot path exists once more, in feed_input (each inlined copy costs
    seconds of compile time)."""
    st = views(mem)
    process_messages(st, buf, off, length, seq, only, off + PACKET_HEADER, -1)


@njit(cache=True, _nrt=False)
def replay_since(mem, s, lmsp, mode):
    """After a snapshot of slot ``s`` taken at ``lmsp``: replay the buffered incrementals
    after it, for ``s`` only (notes/mdp3.md §5). ``mode`` goes to C_REPLAYING while it runs
    (1 MBP snapshot: the MBO code skips; 2 MBO snapshot)."""
    st = views(mem)
    st.ctr[C_REPLAYING] = mode
    n = st.ring.shape[0]
    for k in range(st.ctr[C_RING_COUNT]):
        i = (st.ctr[C_RING_HEAD] + k) % n
        seq = st.ring_meta[i, 0]
        if seq > lmsp:
            st.ctr[C_REPLAYED_PACKETS] += 1
            replay_messages(st_mem(st), st.ring[i], 0, st.ring_meta[i, 1], seq, s)
    st.ctr[C_REPLAYING] = 0


@njit(cache=True, _nrt=False)
def process_in_order_cold(mem, buf, off, length, seq):
    st = views(mem)
    replay_messages(st_mem(st), buf, off, length, seq, -1)
    done_in_order(st, buf, off, length, seq)


@njit(cache=True, _nrt=False)
def drain_window(mem):
    """Process waiting packets that are now in order; drop those already seen."""
    st = views(mem)
    progress = True
    while progress and st.ctr[C_PEND_COUNT] > 0:
        progress = False
        for w in range(st.pend_meta.shape[0]):
            seq = st.pend_meta[w, 0]
            if seq < 0:
                continue
            if seq < st.ctr[C_NEXT_SEQ]:
                st.pend_meta[w, 0] = -1
                st.ctr[C_PEND_COUNT] -= 1
                st.ctr[C_DUPLICATES] += 1
            elif seq == st.ctr[C_NEXT_SEQ]:
                st.pend_meta[w, 0] = -1
                st.ctr[C_PEND_COUNT] -= 1
                st.ctr[C_REORDERED] += 1
                process_in_order_cold(st_mem(st), st.pend[w], 0, st.pend_meta[w, 1], seq)
                progress = True


@njit(cache=True, _nrt=False)
def declare_gap(mem):
    """The packets before the lowest waiting one are not coming: count them lost."""
    st = views(mem)
    lo = -1
    for w in range(st.pend_meta.shape[0]):
        seq = st.pend_meta[w, 0]
        if seq >= 0 and (lo < 0 or seq < lo):
            lo = seq
    if lo < 0:
        return
    st.ctr[C_GAPS] += 1
    st.ctr[C_LOST_PACKETS] += lo - st.ctr[C_NEXT_SEQ]
    mark_all_stale(st_mem(st), lo - 1)
    st.ctr[C_NEXT_SEQ] = lo
    drain_window(st_mem(st))


@njit(cache=True, _nrt=False)
def hold(mem, buf, off, length, seq):
    """Keep a packet that is ahead of the next expected seq for A/B hole fill. A full
    window gives up its farthest packet for a nearer one (a stray far-ahead datagram
    must not hold a slot forever; counted window_evicted: its seq will count as lost if
    the sequence gets there); when the new packet is the farthest, the packets before
    the lowest waiting one are not coming: declare the gap, then place the new one."""
    st = views(mem)
    free = -1
    far = -1
    for w in range(st.pend_meta.shape[0]):
        q = st.pend_meta[w, 0]
        if q == seq:
            st.ctr[C_DUPLICATES] += 1
            return
        if q < 0:
            if free < 0:
                free = w
        elif far < 0 or q > st.pend_meta[far, 0]:
            far = w
    if length > st.pend.shape[1]:
        st.ctr[C_PACKET_TOO_BIG] += 1     # cannot hold it: it is lost to us
        return
    if free < 0:
        if seq < st.pend_meta[far, 0]:
            st.ctr[C_WINDOW_EVICTED] += 1
            st.pend_meta[far, 0] = -1
            st.ctr[C_PEND_COUNT] -= 1
            free = far
        else:
            declare_gap(st_mem(st))
            nxt = st.ctr[C_NEXT_SEQ]
            if seq < nxt:
                st.ctr[C_DUPLICATES] += 1
            elif seq == nxt:
                process_in_order_cold(st_mem(st), buf, off, length, seq)
                drain_window(st_mem(st))
            else:
                hold(st_mem(st), buf, off, length, seq)
            return
    memcpy(st.pend[free], 0, buf, off, length)
    st.pend_meta[free, 0] = seq
    st.pend_meta[free, 1] = length
    st.ctr[C_PEND_COUNT] += 1


@njit(cache=True, _nrt=False)
def feed_flush(mem):
    """Give up waiting for the holes in the window (end of capture, or a timer)."""
    st = views(mem)
    while st.ctr[C_PEND_COUNT] > 0:
        declare_gap(st_mem(st))


# ------------------------------------------------------------------ snapshots
@njit(cache=True, _nrt=False)
def snapshot_usable(mem, s, lmsp):
    """Can a snapshot that reflects incrementals up to ``lmsp`` make instrument ``s`` whole?
    No loss after it; and every incremental since that touched ``s`` is in the replay
    ring (an instrument never seen on the incremental feed needs no replay, only that
    we saw every packet after lmsp)."""
    st = views(mem)
    if lmsp < st.ctr[C_LAST_LOST_SEQ]:
        return False
    if lmsp + 1 < st.ctr[C_FIRST_SEQ]:
        return False                       # packets between it and our first one are unknown
    if lmsp >= st.ctr[C_NEXT_SEQ] - 1 or st.inst[s, I_LAST_SEQ] <= lmsp:
        return True                        # nothing for s since the snapshot point
    return (st.ctr[C_BUFFERING] == 1 and st.ctr[C_RING_COUNT] > 0
            and st.ctr[C_RING_FIRST_SEQ] <= lmsp + 1)


@njit(cache=True, _nrt=False)
def apply_snapshot(mem, tid, buf, body, block_len, mend):
    st, t, s = root_of(mem, tid, buf, body)
    if s < 0:
        return True
    state = st.inst[s, I_STATE]
    if state == S_SYNCED:
        st.ctr[C_SNAPSHOTS_IGNORED] += 1
        return True
    lmsp = rd_u32(buf, body + t[L.R_LMSP])
    rpt = rd_u32(buf, body + t[L.R_RPT])
    entry_len, count, e = entry_group(st, tid, buf, body + block_len, mend)
    if entry_len < 0:
        return False
    started = st.ctr[C_NEXT_SEQ] != 0
    last = st.ctr[C_NEXT_SEQ] - 1
    if started and not snapshot_usable(st_mem(st), s, lmsp):
        st.ctr[C_SNAPSHOTS_TOO_OLD] += 1
        return True
    lv = st.levels
    clear_book(lv, s)
    for _ in range(count):
        side = side_of(rd_u8(buf, e + t[L.E_TYPE]))
        if 0 <= side <= IMPLIED_OFFER:
            depth = st.inst[s, I_DEPTH] if side <= OFFER else st.inst[s, I_IDEPTH]
            level = np.int64(np.int8(rd_u8(buf, e + t[L.E_LEVEL])))
            if 1 <= level <= depth:
                i = level - 1
                lv[s, side, i, 0] = rd_i64(buf, e + t[L.E_PX])
                lv[s, side, i, 1] = rd_i32(buf, e + t[L.E_SIZE])
                lv[s, side, i, 2] = rd_i32(buf, e + t[L.E_NORD]) if t[L.E_NORD] >= 0 else 0
            else:
                st.ctr[C_BAD_LEVEL] += 1
        e += entry_len
    st.inst[s, I_RPT] = rpt
    # Late join (no incrementals yet): valid only once an entry continues the chain.
    st.inst[s, I_STATE] = S_SYNCED if started else S_STALE
    st.ctr[C_SNAPSHOTS_APPLIED] += 1
    if started and lmsp < last and st.inst[s, I_LAST_SEQ] > lmsp:
        replay_since(st_mem(st), s, lmsp, 1)
    if st.inst[s, I_STATE] == S_SYNCED:
        st.ctr[C_RECOVERIES] += 1
        st.inst[s, I_RECOVERIES] += 1
    maybe_stop_buffering(st_mem(st))
    return True


@njit(cache=True, _nrt=False)
def apply_snapshot_mbo(mem, tid, buf, body, block_len, mend):
    """53 SnapshotFullRefreshOrderBook: chunks 1..NoChunks of one instrument's orders."""
    st, t, s = root_of(mem, tid, buf, body)
    mb = mbo_of(st)
    if s < 0:
        return True
    if st.inst[s, I_MBO_STATE] == S_SYNCED:
        st.ctr[C_SNAPSHOTS_IGNORED] += 1
        return True
    entry_len, count, e = entry_group(st, tid, buf, body + block_len, mend)
    if entry_len < 0:
        return False
    lmsp = rd_u32(buf, body + t[L.R_LMSP])
    nchunks = rd_u32(buf, body + t[L.R_NCHUNKS]) if t[L.R_NCHUNKS] >= 0 else 1
    chunk = rd_u32(buf, body + t[L.R_CHUNK]) if t[L.R_CHUNK] >= 0 else 1
    last = st.ctr[C_NEXT_SEQ] - 1
    # No RptSeq to prove a late-joined order book: wait for incrementals first.
    if st.ctr[C_NEXT_SEQ] == 0 or not snapshot_usable(st_mem(st), s, lmsp):
        st.ctr[C_SNAPSHOTS_TOO_OLD] += 1
        return True
    if chunk == 1:
        mbo_clear_instrument(mb.orders, mb.oindex, mb.free, mb.meta, s)
        st.inst[s, I_MBO_STATE] = S_RECOVERING
        st.inst[s, I_MBO_CHUNK_LMSP] = lmsp
    elif chunk < 1 or chunk != st.inst[s, I_MBO_CHUNK] + 1 or chunk > nchunks \
            or lmsp != st.inst[s, I_MBO_CHUNK_LMSP]:
        # missed a chunk, or this one belongs to another snapshot (its LastMsgSeqNumProcessed
        # differs): what we hold is not one snapshot; wait for the next chunk 1
        st.ctr[C_MBO_BAD_CHUNK] += 1
        st.inst[s, I_MBO_CHUNK] = -1
        return True
    for _ in range(count):
        side = side_of(rd_u8(buf, e + t[L.E_TYPE]))
        if side == BID or side == OFFER:
            count_mbo_failure(st, add_order(mb, t, buf, e, s, side))
        else:
            st.ctr[C_BAD_ENTRY_TYPE] += 1
        e += entry_len
    st.inst[s, I_MBO_CHUNK] = chunk
    if chunk < nchunks:
        return True
    st.inst[s, I_MBO_CHUNK] = 0       # complete: the next snapshot must start at chunk 1 again
    st.inst[s, I_MBO_STATE] = S_SYNCED
    st.ctr[C_MBO_SNAPSHOTS_APPLIED] += 1
    if lmsp < last and st.inst[s, I_LAST_SEQ] > lmsp:
        replay_since(st_mem(st), s, lmsp, 2)
    maybe_stop_buffering(st_mem(st))
    return True


@njit(cache=True, _nrt=False)
def maybe_stop_buffering(mem):
    st = views(mem)
    for s in range(st.ctr[C_N_INST]):
        if st.inst[s, I_STATE] != S_SYNCED or st.inst[s, I_MBO_STATE] == S_RECOVERING:
            return
    st.ctr[C_BUFFERING] = 0
    st.ctr[C_RING_COUNT] = 0


@njit(cache=True, _nrt=False)
def process_snapshot_packet(mem, buf, off, length):
    st = views(mem)
    st.ctr[C_SNAPSHOT_PACKETS] += 1
    pos = off + PACKET_HEADER
    end = off + length
    while pos < end:
        cause, mend, tid, body, block_len = next_message(st, buf, pos, end)
        if cause >= 0:
            st.ctr[cause] += 1
        if mend < 0:
            return
        pos = mend
        if cause >= 0:
            continue
        kind = st.tpl[tid, L.T_KIND]
        if kind == L.K_SNAP:
            if not apply_snapshot(st_mem(st), tid, buf, body, block_len, mend):
                st.ctr[C_GROUP_OVERRUN] += 1
        elif kind == L.K_SNAP_MBO:
            if not apply_snapshot_mbo(st_mem(st), tid, buf, body, block_len, mend):
                st.ctr[C_GROUP_OVERRUN] += 1
        elif kind == L.K_DEF:
            if not on_definition(st_mem(st), tid, buf, body, block_len, mend):
                st.ctr[C_GROUP_OVERRUN] += 1


# ------------------------------------------------------------------ entry point
@njit(cache=True, _nrt=False)
def slow_packet(mem, buf, off, length, source, pos, skip):
    """The general walk of one UDP payload: the whole packet (``pos`` -1), or the rest of
    it from where fastpath.fast_packet stopped (``pos``, ``skip``: see fastpath). Out of
    line: it holds every rare path and its calls, so feed_input's own code (the fast path)
    holds no call but this one."""
    st = views(mem)
    if pos < 0:
        st.ctr[C_PACKETS] += 1
        st.ctr[C_BYTES] += length
        if off < 0 or length < PACKET_HEADER or off + length > buf.size:
            st.ctr[C_TRUNCATED_PACKET] += 1
            return
        if source == SRC_SNAPSHOT:
            process_snapshot_packet(st_mem(st), buf, off, length)
            return
        seq = rd_u32(buf, off)
        nxt = st.ctr[C_NEXT_SEQ]
        if nxt == 0:                       # first packet of the session
            st.ctr[C_START_SYNCED] = 1 if seq == 1 else 0
            st.ctr[C_FIRST_SEQ] = seq
            st.ctr[C_NEXT_SEQ] = seq
            nxt = seq
        if seq < nxt:
            st.ctr[C_DUPLICATES] += 1
            return
        if seq > nxt:
            if seq - nxt >= st.pend_meta.shape[0]:
                # Past the window: everything before it is lost -- if the jump is real. One
                # datagram does not move the sequence (a corrupt or stray one would make
                # every later packet a "duplicate": the feed silenced); it is counted and
                # dropped. A second, different packet beyond the window too, within a
                # window of the first, confirms it (a real jump loses those packets anyway:
                # the books go to recovery whichever of them we keep); so does the same packet
                # on the other line (A and B are independent feeds of one sequence, a stray or
                # corrupt datagram is not on both: without this a loss just before the last
                # packet of a burst went undeclared and its instruments stayed synced).
                j = st.ctr[C_JUMP_SEQ]
                if j > 0 and abs(seq - j) < st.pend_meta.shape[0] and (seq != j or source != st.ctr[C_JUMP_SRC]):
                    st.ctr[C_JUMP_SEQ] = 0
                    hold(st_mem(st), buf, off, length, seq)
                    declare_gap(st_mem(st))
                else:
                    st.ctr[C_JUMP_SEQ] = seq
                    st.ctr[C_JUMP_SRC] = source
                    st.ctr[C_SEQ_JUMPS_UNCONFIRMED] += 1
                return
            hold(st_mem(st), buf, off, length, seq)
            return
        pos = off + PACKET_HEADER
    seq = rd_u32(buf, off)
    process_messages(st, buf, off, length, seq, -1, pos, skip)
    done_in_order(st, buf, off, length, seq)
    if st.ctr[C_PEND_COUNT] > 0:
        drain_window(st_mem(st))


@njit(cache=True, inline="always", _nrt=False)
def packet_in(st, buf, off, length, source):
    """One UDP payload, given the region views: the fast path inline, the rest out of line."""
    r, pos, skip = fast_packet(st, buf, off, length, source)
    if r != FAST_DONE:
        slow_packet(st_mem(st), buf, off, length, source, pos, skip)


@njit(cache=True, _nrt=False, inline=into_runtime_free_callers)
def feed_input(mem, buf, off, length, source):
    """One UDP payload ``buf[off:off+length]`` from line A, B or the snapshot loop.
    ``mem`` is the FeedMem of a ``feed.state.Feed`` (``Feed.mem``).

    Inlined into runtime-free callers (the engine's loop, feed_each): the call passed
    26 words (two flat arrays and the packet buffer field by field) and cost ~10 ns a
    packet with its prologue, a quarter of a message's budget; inlined, only the fast
    path is copied (the general walk stays one out-of-line call). Python and
    refcounting callers call it."""
    packet_in(views(mem), buf, off, length, source)


@njit(cache=True, _nrt=False)
def feed_run(mem, buf, offs, lens, source):
    """Many payloads at once: ``buf[offs[i]:offs[i]+lens[i]]`` in order, one source.
    For recorded streams (benchmark, replay tools); the engine calls feed_input."""
    st = views(mem)                 # built once per batch: the header never changes
    n = min(offs.size, lens.size)
    for i in range(n):
        packet_in(st, buf, offs[i], lens[i], source)
    return n


@njit(cache=True, _nrt=False)
def feed_each(mem, buf, offs, lens, source):
    """``feed_input`` once per payload, as the engine calls it (views rebuilt per packet):
    the benchmark times this beside ``feed_run`` so the per-packet path is reported too."""
    n = min(offs.size, lens.size)
    for i in range(n):
        feed_input(mem, buf, offs[i], lens[i], source)
    return n

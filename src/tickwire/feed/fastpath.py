"""The common case of an incremental MDP 3.0 packet, with no call out of line.

    fast_packet(st, buf, off, length, source) -> (status, pos, skip)

Most packets of a healthy channel are alike: the next MsgSeqNum on line A or B, nothing
waiting in the reorder window, nothing being recovered, every message a CME-layout 46
book update or a 48 trade summary (or another RptSeq-only template), every instrument
already known and its RptSeq chain intact. fast_packet handles exactly those, with the
same checks and counters as the general walk (feed.handler) but with every rare event
left to it: the inlined code holds no call, so a caller (feed_input, once per packet from
the engine) pays no prologue for thirty out-of-line call sites (Numba zeroes each one's
return and exception words on entry; ~20 ns per feed_input call in session 4), and the
loops hold nothing but the common case.

It never decides a rare case itself. At the first thing it does not handle it stops
*before* changing any state for it and says where the general walk must take over:

    FAST_DONE     the packet is fully handled
    FAST_PACKET   nothing was done: the general walk takes the whole packet
                  (snapshot loop, out of sequence, first packet, window or replay ring in use,
                  truncated packet)
    FAST_RESUME   the packet was counted and is in sequence; the messages before ``pos`` are
                  done. skip -1: the message at ``pos`` is untouched (it may be malformed,
                  unknown, of another kind, or its group overruns / has short entries);
                  skip k >= 0: that message is counted and its first k entries applied (the
                  next entry is a new instrument, a hash collision, an RptSeq gap, or a book
                  reset)

Every length, offset and count from the wire is checked here before use exactly as in
the general walk (notes/mdp3.md §1): message header inside the packet, MsgSize inside
the packet, root block inside the message and long enough for the fields read, group
dimension and numInGroup x blockLength inside the message, entries long enough; whatever
fails one of them goes to the general walk, which counts it under its cause.

Every branch to a rare case is marked ``unlikely`` (mem.hint: LLVM branch weights, the
hardware predictor is not involved): with them LLVM keeps the common path straight and
its values in registers; without them the entry loop spilled and reloaded the row
pointer, the entry pointer and the entry's values on every entry (session 7: `top`
38.4 -> 34.4 ns/msg, interleaved A/B). Data-dependent branches (the action, the loop
ends, 46 vs 48) carry no hint.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..mem.hint import likely, unlikely
from ..book.mbp import BID, IMPLIED_BID, IMPLIED_OFFER, NFIELD, NSIDE, OFFER, book_step, put_entry_row
from ..sbe.le import rd_i32, rd_i64, rd_u8, rd_u16, rd_u32
from . import layout as L
from .state import (C_BAD_ACTION, C_BAD_ENTRY_TYPE, C_BAD_LEVEL, C_BUFFERING, C_BYTES, C_ENTRIES, C_IN_EVENT,
                    C_LAST_SEQ, C_MESSAGES, C_NEWER_VERSION, C_NEXT_SEQ, C_NOT_HDR46, C_NOT_HDR48,
                    C_OLD_RPT_ENTRIES, C_PACKETS, C_PEND_COUNT, C_SCHEMA_ID, C_SCHEMA_VERSION, I_DEPTH, I_LAST_SEQ, I_RPT, I_STATE,
                    I_UPDATES, S_RECOVERING, S_STALE, S_SYNCED, SRC_SNAPSHOT)

PACKET_HEADER = 12     # MsgSeqNum u32 + SendingTime u64 (notes/mdp3.md §1)
SBE_HEADER = 8         # blockLength, templateId, schemaId, version (u16 each)
END_OF_EVENT = 0x80    # MatchEventIndicator bit 7
# The index size is a power of two below 2**31 (feed.state): masking with this as well
# changes no probe position, but lets LLVM prove the position non-negative, so the index
# load carries no negative-index wraparound code (notes/numba-hot-path.md §4).
HASH_MAX = (1 << 31) - 1
HASH_MUL = 2654435761  # Knuth's multiplicative hash (the SecurityID index, feed.handler)
BOOK_RESET = 9         # side_of('J'): MDEntryType BookReset

# MDEntryType -> book side: '0' bid, '1' offer, 'E' implied bid, 'F' implied offer,
# 'J' book reset (9); anything else -1. A table, not a chain of compares: bid and offer
# alternate at random in a real feed, and each compare chain mispredicted about every
# other entry. Numba freezes the global array into the compiled code as a constant.
SIDE_OF = np.full(256, -1, np.int64)
SIDE_OF[48], SIDE_OF[49], SIDE_OF[69], SIDE_OF[70], SIDE_OF[74] = BID, OFFER, IMPLIED_BID, IMPLIED_OFFER, BOOK_RESET

FAST_DONE, FAST_PACKET, FAST_RESUME = 0, 1, 2


@njit(cache=True, inline="always", _nrt=False)
def group_at(buf, pos, mend, hs, noff, nw):
    """The group whose dimension (``hs`` bytes, numInGroup u8/u16 per ``nw`` at ``noff``,
    blockLength u16 at 0) is at ``pos``. Returns (entry_len, count, first_entry), or
    entry_len -1 when the header or its count x blockLength entries overrun ``mend``."""
    if unlikely(pos + hs > mend):
        return -1, 0, pos
    entry_len = rd_u16(buf, pos)
    count = rd_u8(buf, pos + noff) if nw == 1 else rd_u16(buf, pos + noff)
    first = pos + hs
    if unlikely(first + entry_len * count > mend):
        return -1, 0, pos
    return entry_len, count, first


@njit(cache=True, inline="always", _nrt=False)
def known_slot(index, hmask, secid):
    """Slot of ``secid`` when the first probe of the SecurityID index finds it, else -1
    (not there, or behind a collision: the general walk's find_slot/new_slot decide)."""
    w = index[(secid * HASH_MUL) & hmask]
    if unlikely(((w >> 32) & 0xFFFFFFFF) != (secid & 0xFFFFFFFF)):   # mask: the shift is arithmetic
        return -1
    return (w & 0xFFFFFFFF) - 1                             # -1 for an empty word (SecurityID 0)


@njit(cache=True, inline="always", _nrt=False)
def fast_packet(st, buf, off, length, source):
    """One UDP payload (see the module docstring). ``st``: the handler's region views."""
    ctr = st.ctr
    if unlikely(source == SRC_SNAPSHOT or off < 0 or length < PACKET_HEADER or off + length > buf.size):
        return FAST_PACKET, -1, -1
    seq = rd_u32(buf, off)
    nxt = ctr[C_NEXT_SEQ]
    if unlikely(seq != nxt or nxt == 0 or ctr[C_PEND_COUNT] != 0 or ctr[C_BUFFERING] != 0):
        return FAST_PACKET, -1, -1
    ctr[C_PACKETS] += 1
    ctr[C_BYTES] += length
    index = st.index
    hmask = (index.size - 1) & HASH_MAX
    inst = st.inst
    lv = st.levels
    pos = off + PACKET_HEADER
    end = off + length
    while pos < end:
        # framing (notes/mdp3.md §1): MsgSize u16 (includes itself), SBE header, root block
        if unlikely(pos + 2 + SBE_HEADER > end):
            return FAST_RESUME, pos, -1
        mend = pos + rd_u16(buf, pos)
        if unlikely(mend < pos + 2 + SBE_HEADER or mend > end):
            return FAST_RESUME, pos, -1
        m = pos + 2
        body = m + SBE_HEADER
        # The common case in one compare per template: the 8 header bytes equal the exact
        # header of a current-version CME-layout 46 or 48 (layout.fast_headers), which
        # passes the schema id, template, kind, version and root-block-length checks at
        # once; whatever else (another template or version, a bad header) takes the checks
        # one by one below. The two compares are combined with `|` so that the only branch on
        # which template it is comes below, once (46 vs 48 is data: it mispredicts).
        hdr = rd_i64(buf, m)
        is46 = hdr == ~ctr[C_NOT_HDR46]
        if likely(is46 | (hdr == ~ctr[C_NOT_HDR48])):
            block_len = hdr & 0xFFFF
            if unlikely(body + block_len > mend):
                return FAST_RESUME, pos, -1
            hs, noff, nw = L.STD46_GROUP       # both templates: groupSize (fast_headers)
            entry_len, count, e = group_at(buf, body + block_len, mend, hs, noff, nw)
            eneed = L.STD46_ENEED if is46 else L.STD48_ENEED
            if unlikely(entry_len < 0 or (count > 0 and entry_len < eneed)):
                return FAST_RESUME, pos, -1
            ctr[C_MESSAGES] += 1
            ctr[C_IN_EVENT] = 0 if rd_u8(buf, body + L.STD_MEI) & END_OF_EVENT else 1
            std46 = is46
            o_secid, o_rpt = L.STD48
        else:
            block_len = rd_u16(buf, m)
            tid = rd_u16(buf, m + 2)
            if unlikely(rd_u16(buf, m + 4) != ctr[C_SCHEMA_ID] or tid >= L.MAX_TEMPLATE):
                return FAST_RESUME, pos, -1
            t = st.tpl[tid]
            if unlikely(body + block_len > mend or block_len < t[L.T_RNEED]):
                return FAST_RESUME, pos, -1
            kind = t[L.T_KIND]
            std46 = kind == L.K_BOOK and t[L.T_STD46] == 1
            if unlikely(not std46 and kind != L.K_TRADE and kind != L.K_RPT_ONLY):
                return FAST_RESUME, pos, -1
            # the entry group, checked once for all its entries (then read without checks)
            if std46:
                hs, noff, nw = L.STD46_GROUP
                entry_len, count, e = group_at(buf, body + block_len, mend, hs, noff, nw)
                eneed = L.STD46_ENEED
            else:
                entry_len, count, e = group_at(buf, body + block_len, mend, t[L.T_GRP], t[L.T_GRP + 1], t[L.T_GRP + 2])
                eneed = t[L.T_ENEED]
            if unlikely(entry_len < 0 or (count > 0 and entry_len < eneed)):
                return FAST_RESUME, pos, -1
            ctr[C_MESSAGES] += 1
            if unlikely(rd_u16(buf, m + 6) > ctr[C_SCHEMA_VERSION]):
                ctr[C_NEWER_VERSION] += 1      # SBE §3.7: decoded by blockLength, extra fields skipped
            mei = t[L.R_MEI]
            if mei >= 0:
                ctr[C_IN_EVENT] = 0 if rd_u8(buf, body + mei) & END_OF_EVENT else 1
            o_secid, o_rpt = t[L.E_SECID], t[L.E_RPT]
        if std46:
            k = book_entries_fast(ctr, inst, index, hmask, lv, buf, e, entry_len, count, seq)
        else:
            k = rpt_entries_fast(ctr, inst, index, hmask, buf, e, entry_len, count, seq, o_secid, o_rpt)
        ctr[C_ENTRIES] += k
        if unlikely(k < count):
            return FAST_RESUME, pos, k
        pos = mend
    ctr[C_NEXT_SEQ] = seq + 1
    ctr[C_LAST_SEQ] = seq
    return FAST_DONE, 0, 0


@njit(cache=True, inline="always", _nrt=False)
def book_entries_fast(ctr, inst, index, hmask, lv, buf, e, entry_len, count, seq):
    """46 entries at CME's constant offsets (layout.STD46: MDEntryPx 0, MDEntrySize 8,
    SecurityID 12, RptSeq 16, NumberOfOrders 20, MDPriceLevel 24, MDUpdateAction 25,
    MDEntryType 26). Returns the entries handled; fewer than ``count`` when entry k needs
    the general walk, which then starts at entry k (nothing of entry k was changed).
    The same rules as handler.book_entries/check_rpt_row, in the same order of effects."""
    for k in range(count):
        s = known_slot(index, hmask, rd_i32(buf, e + 12))
        if unlikely(s < 0):
            return k
        row = inst[s]
        state = row[I_STATE]
        last = row[I_RPT]
        rpt = rd_u32(buf, e + 16)
        side = SIDE_OF[rd_u8(buf, e + 26)]
        if likely(state != S_RECOVERING):
            if unlikely(rpt <= last):
                ctr[C_OLD_RPT_ENTRIES] += 1    # already in the book (replay overlap, snapshot newer)
            elif unlikely(rpt != last + 1 or side == BOOK_RESET):
                return k                       # RptSeq gap (recovery) or BookReset
            else:
                if unlikely(state == S_STALE):
                    row[I_STATE] = S_SYNCED    # chain continued across the loss: nothing was missed
                row[I_RPT] = rpt
                if unlikely(side < 0):
                    ctr[C_BAD_ENTRY_TYPE] += 1
                else:
                    # the entry's values are read after the row move (book.mbp.book_step)
                    r, at, keep = book_step(lv, ((s * NSIDE + side) * lv.shape[2]) * NFIELD, lv.shape[2],
                                            rd_u8(buf, e + 24), row[I_DEPTH + (side >> 1)], rd_u8(buf, e + 25))
                    if likely(r == 0):
                        put_entry_row(lv, at, keep, rd_i64(buf, e), rd_i32(buf, e + 8), rd_i32(buf, e + 20))
                    elif r == 1:
                        ctr[C_BAD_LEVEL] += 1
                    elif r == 2:
                        ctr[C_BAD_ACTION] += 1
                row[I_UPDATES] += 1            # the entry was applied (the engine watches this)
        row[I_LAST_SEQ] = seq
        e += entry_len
    return count


@njit(cache=True, inline="always", _nrt=False)
def rpt_entries_fast(ctr, inst, index, hmask, buf, e, entry_len, count, seq, o_secid, o_rpt):
    """48 (and other RptSeq-only templates): RptSeq advances, the book is untouched.
    Returns the entries handled, as book_entries_fast."""
    for k in range(count):
        s = known_slot(index, hmask, rd_i32(buf, e + o_secid))
        if unlikely(s < 0):
            return k
        row = inst[s]
        state = row[I_STATE]
        if likely(state != S_RECOVERING):
            last = row[I_RPT]
            rpt = rd_u32(buf, e + o_rpt)
            if unlikely(rpt <= last):
                ctr[C_OLD_RPT_ENTRIES] += 1
            elif unlikely(rpt != last + 1):
                return k
            else:
                if unlikely(state == S_STALE):
                    row[I_STATE] = S_SYNCED
                row[I_RPT] = rpt
        row[I_LAST_SEQ] = seq
        e += entry_len
    return count

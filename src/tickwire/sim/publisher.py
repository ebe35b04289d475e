"""MDP 3.0 publisher for the simulator: matching-engine level changes -> MBP incrementals
(46), trades -> TradeSummary (48), plus full snapshots (52) for the recovery loop.

Packet layout and template offsets: shared/notes/mdp3.md §1 and §3 (the same layout
as tickwire's MDP 3.0 subset schema, sbe/schemas/mdp3_subset.xml; tests decode our
bytes with the project's SBE codec and feed them to the feed handler).

How book changes become positional MBP entries (mdp3.md §4): for every (instrument,
side) an operation touched we compare the new top ``depth`` levels with what we last
published for that side. A row whose price/size/count changed is sent as Overlay
(action 5: rewrite row N in place); rows that became empty are sent as Delete from
the bottom up, so no delete shifts a row that still matters. A receiver applying the
entries in order ends with exactly our top ``depth`` levels. RptSeq is per
instrument, +1 per entry (book and trade), as on CME.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np
from numba import njit
from numba.extending import register_jitable

from ..sbe.le import wr_u8, wr_u16, wr_u32, wr_u64
from .matching import depth as book_depth

PKT_HDR = 12
SBE_HDR = 8
MAX_PKT = 1400               # stay under a 1500-byte MTU with Ethernet/IP/UDP headers
NULL_PX = 9223372036854775807
NULL_I32 = 2147483647
EOE = 0x80                   # MatchEventIndicator EndOfEvent
LAST_QUOTE = 0x04
LAST_TRADE = 0x01
ENTRY_BOOK = 32
ENTRY_TRADE = 32
ENTRY_SNAP = 22
ACT_DELETE, ACT_OVERLAY = 2, 5

# meta slots
(P_SEQ, P_LEN, P_MSG_START, P_MSG_TID, P_GRP_COUNT_OFF, P_NENTRIES, P_NOW, P_PACKETS, P_ENTRIES, P_TRADES,
 P_OVERFLOW) = range(11)
P_N = 12

PubState = namedtuple("PubState", "pkt meta secids rpt pub scratch")


@register_jitable
def snapshot_bytes(depth):
    """The largest snapshot packet a book ``depth`` deep makes (both sides full)."""
    return PKT_HDR + 2 + SBE_HDR + 59 + 3 + 2 * depth * ENTRY_SNAP


def new_publisher(secids, depth: int = 10) -> PubState:
    # one SnapshotFullRefresh52 per instrument, in one datagram: its entry count is a u8
    # and the whole packet must fit MAX_PKT (the feed's datagram size)
    if depth < 1 or 2 * depth > 255 or snapshot_bytes(depth) > MAX_PKT:
        raise ValueError(f"publisher depth {depth}: a full snapshot ({snapshot_bytes(depth)} bytes, "
                         f"{2 * depth} entries) does not fit one {MAX_PKT}-byte packet")
    n = len(secids)
    pub = np.zeros((n, 2, depth, 3), np.int64)
    return PubState(np.zeros(MAX_PKT + 64, np.uint8), np.zeros(P_N, np.int64), np.asarray(secids, np.int64),
                    np.zeros(n, np.int64), pub, np.zeros((depth, 3), np.int64))


@njit(cache=True)
def pub_begin(P, now):
    """Start a packet (the sequence number is assigned at pub_end)."""
    m = P.meta
    m[P_NOW] = now
    m[P_LEN] = PKT_HDR
    m[P_MSG_START] = -1
    m[P_MSG_TID] = 0
    m[P_NENTRIES] = 0


@njit(cache=True)
def _close_msg(P):
    m = P.meta
    if m[P_MSG_START] < 0:
        return
    s = m[P_MSG_START]
    if m[P_MSG_TID] == 46 or m[P_MSG_TID] == 48:
        # the NoOrderIDEntries group (groupSize8Byte, empty): blockLength, 5 pad, count @7
        o = m[P_LEN]
        bl = 24 if m[P_MSG_TID] == 46 else 16
        wr_u16(P.pkt, o, bl)
        for k in range(2, 8):
            P.pkt[o + k] = 0
        m[P_LEN] = o + 8
    wr_u16(P.pkt, s, m[P_LEN] - s)          # MsgSize counts its own 2 bytes
    m[P_MSG_START] = -1
    m[P_MSG_TID] = 0


@njit(cache=True)
def _open_msg(P, tid, entry_len):
    """Make sure the current message is ``tid`` with room for one more entry."""
    m = P.meta
    if m[P_MSG_TID] == tid and m[P_NENTRIES] < 255 and m[P_LEN] + entry_len + 8 <= MAX_PKT:
        return True
    _close_msg(P)
    if m[P_LEN] + 2 + SBE_HDR + 11 + 3 + entry_len + 8 > MAX_PKT:
        return False
    s = m[P_LEN]
    pk = P.pkt
    m[P_MSG_START] = s
    m[P_MSG_TID] = tid
    b = s + 2
    wr_u16(pk, b, 11)           # blockLength
    wr_u16(pk, b + 2, tid)
    wr_u16(pk, b + 4, 1)        # schema id 1 (MDP 3.0)
    wr_u16(pk, b + 6, 13)       # version 13
    body = b + SBE_HDR
    wr_u64(pk, body, m[P_NOW])  # TransactTime
    wr_u8(pk, body + 8, LAST_QUOTE if tid == 46 else LAST_TRADE)
    pk[body + 9] = 0
    pk[body + 10] = 0
    g = body + 11
    wr_u16(pk, g, entry_len)
    m[P_GRP_COUNT_OFF] = g + 2
    pk[g + 2] = 0
    m[P_NENTRIES] = 0
    m[P_LEN] = g + 3
    return True


@njit(cache=True)
def pub_book_entry(P, i, side, level, action, px, qty, norders):
    if not _open_msg(P, 46, ENTRY_BOOK):
        P.meta[P_OVERFLOW] += 1
        return False
    m = P.meta
    pk = P.pkt
    e = m[P_LEN]
    P.rpt[i] += 1
    wr_u64(pk, e, px)
    wr_u32(pk, e + 8, qty)
    wr_u32(pk, e + 12, P.secids[i])
    wr_u32(pk, e + 16, P.rpt[i])
    wr_u32(pk, e + 20, norders)
    wr_u8(pk, e + 24, level)
    wr_u8(pk, e + 25, action)
    wr_u8(pk, e + 26, 48 if side == 0 else 49)     # '0' bid, '1' offer
    wr_u32(pk, e + 27, NULL_I32)                   # TradeableSize
    pk[e + 31] = 0
    m[P_LEN] = e + ENTRY_BOOK
    m[P_NENTRIES] += 1
    pk[m[P_GRP_COUNT_OFF]] = m[P_NENTRIES]
    m[P_ENTRIES] += 1
    return True


@njit(cache=True)
def pub_trade(P, i, px, qty, aggressor_side):
    if not _open_msg(P, 48, ENTRY_TRADE):
        P.meta[P_OVERFLOW] += 1
        return False
    m = P.meta
    pk = P.pkt
    e = m[P_LEN]
    P.rpt[i] += 1
    m[P_TRADES] += 1
    wr_u64(pk, e, px)
    wr_u32(pk, e + 8, qty)
    wr_u32(pk, e + 12, P.secids[i])
    wr_u32(pk, e + 16, P.rpt[i])
    wr_u32(pk, e + 20, 2)
    wr_u8(pk, e + 24, aggressor_side)
    wr_u8(pk, e + 25, 0)                           # New
    wr_u32(pk, e + 26, m[P_TRADES] & 0xFFFFFFFF)   # MDTradeEntryID
    pk[e + 30] = 0
    pk[e + 31] = 0
    m[P_LEN] = e + ENTRY_TRADE
    m[P_NENTRIES] += 1
    pk[m[P_GRP_COUNT_OFF]] = m[P_NENTRIES]
    return True


@njit(cache=True)
def pub_side_diff(P, book, i, side):
    """Publish the difference between the book's top levels of one side and what we
    last published for it (see module docstring)."""
    depth = P.pub.shape[2]
    new = P.scratch
    n = book_depth(book, i, side, depth, new)
    old = P.pub[i, side]
    m_old = 0
    while m_old < depth and old[m_old, 1] > 0:
        m_old += 1
    for r in range(n):
        if new[r, 0] != old[r, 0] or new[r, 1] != old[r, 1] or new[r, 2] != old[r, 2]:
            if not pub_book_entry(P, i, side, r + 1, ACT_OVERLAY, new[r, 0], new[r, 1], new[r, 2]):
                return False
            old[r, 0] = new[r, 0]
            old[r, 1] = new[r, 1]
            old[r, 2] = new[r, 2]
    r = m_old - 1
    while r >= n:
        if not pub_book_entry(P, i, side, r + 1, ACT_DELETE, NULL_PX, 0, 0):
            return False
        old[r, 0] = 0
        old[r, 1] = 0
        old[r, 2] = 0
        r -= 1
    return True


@njit(cache=True)
def pub_end(P):
    """Close the packet: EndOfEvent on its last message, header written. Returns the
    payload length (0 when the packet is empty: nothing to send, no sequence used)."""
    m = P.meta
    if m[P_LEN] == PKT_HDR:
        return 0
    last = m[P_MSG_START]
    _close_msg(P)
    if last >= 0:
        P.pkt[last + 2 + SBE_HDR + 8] |= EOE
    m[P_SEQ] += 1
    wr_u32(P.pkt, 0, m[P_SEQ])
    wr_u64(P.pkt, 4, m[P_NOW])
    m[P_PACKETS] += 1
    return m[P_LEN]


@njit(cache=True)
def snapshot_packet(P, out, i, seq_processed, now):
    """SnapshotFullRefresh52 of instrument ``i``'s published book into ``out`` (a whole
    snapshot-loop packet, its own sequence number 1 per the recovery feed). Returns length,
    0 when ``out`` is too small for it (the caller counts the snapshot as dropped)."""
    depth = P.pub.shape[2]
    if i < 0 or i >= P.pub.shape[0] or out.shape[0] < snapshot_bytes(depth):
        return 0
    o = PKT_HDR
    n_ent = 0
    for side in range(2):
        for r in range(depth):
            if P.pub[i, side, r, 1] > 0:
                n_ent += 1
    s = o
    body = s + 2 + SBE_HDR
    wr_u16(out, s + 2, 59)
    wr_u16(out, s + 4, 52)
    wr_u16(out, s + 6, 1)
    wr_u16(out, s + 8, 13)
    wr_u32(out, body, seq_processed)            # LastMsgSeqNumProcessed
    wr_u32(out, body + 4, P.secids.shape[0])    # TotNumReports
    wr_u32(out, body + 8, P.secids[i])
    wr_u32(out, body + 12, P.rpt[i])
    wr_u64(out, body + 16, now)
    wr_u64(out, body + 24, now)
    wr_u16(out, body + 32, 0xFFFF)
    wr_u8(out, body + 34, 17)                   # ReadyToTrade
    wr_u64(out, body + 35, NULL_PX)
    wr_u64(out, body + 43, NULL_PX)
    wr_u64(out, body + 51, NULL_PX)
    g = body + 59
    wr_u16(out, g, ENTRY_SNAP)
    wr_u8(out, g + 2, n_ent)
    e = g + 3
    for side in range(2):
        for r in range(depth):
            if P.pub[i, side, r, 1] > 0:
                wr_u64(out, e, P.pub[i, side, r, 0])
                wr_u32(out, e + 8, P.pub[i, side, r, 1])
                wr_u32(out, e + 12, P.pub[i, side, r, 2])
                wr_u8(out, e + 16, r + 1)
                wr_u16(out, e + 17, 0xFFFF)
                wr_u8(out, e + 19, 0xFF)
                wr_u8(out, e + 20, 0xFF)
                wr_u8(out, e + 21, 48 if side == 0 else 49)
                e += ENTRY_SNAP
    wr_u16(out, s, e - s)
    wr_u32(out, 0, 1)
    wr_u64(out, 4, now)
    return e

"""The established-connection fast path, compiled by Numba (RFC 9293 §3.10.7.4 restricted
to the common case).

Send: ``build_segment`` copies the connection's precomputed Ethernet+IPv4+TCP
header (``tmpl``), writes the few fields that change (sequence, acknowledgment,
window, timestamps, IP length and identification) and finishes both checksums
from sums precomputed over the constant fields (RFC 1624 style: only what
changed is added). ``fast_send`` queues a message, builds its segment at
SND.NXT and advances SND.NXT, all without touching Python.

Everything here is compiled runtime-free (``@hot``: no NRT reference counting on the
arrays taken out of ``txq``/``tmpl``/the pool, which cost an atomic each).

Receive: ``fast_input`` accepts exactly the segment the slow path would accept
without any decision: ESTABLISHED, ACK set and nothing else but PSH, SEQ ==
RCV.NXT, no out-of-order data held, an acknowledgment that does not move
backwards, room in the receive ring. It copies the payload into the receive
ring (where the consumer reads it) and updates RCV.NXT, SND.UNA and the send
window. Anything else returns False and goes to the Python slow path, which
implements the whole of RFC 9293; the two share the ``hot`` row, so there is one
state, never two.
"""

from __future__ import annotations


import numpy as np

from ...mem.atomics import load_u8, load_u16, load_u32, load_u64, memcpy, store_u8, store_u16, store_u32, store_u64
from ...mem.hotpath import hot
from ...mem.hotpath import into_runtime_free_callers
from ...mem.mempool import BUF_SIZE, pool_alloc, pool_free
from ...wire.bytes import wr16, wr32
from ...wire.checksum import csum_add, csum_finish, csum_fold
from .seq import seq_add, seq_le, seq_lt, seq_sub
from .segment import (SG_ACK, SG_DATA_LEN, SG_DATA_OFF, SG_FLAGS, SG_SEQ, SG_TS, SG_TSECR,
                      SG_TSVAL, SG_WND)
from .tcb import (ACK_PENDING, CWND, DUPACKS, FAST_RX, FAST_TX, HDR_TCP_LEN,
                  HDR_TCP_OFF, IP_ID, IP_SUM, OOO, RCV_ADV, RCV_NXT, RCV_WSCALE, RTO_US,
                  RTT_SAMPLE_US, RTX_DEADLINE, RX_NXT, RX_READ, SND_MSS, SND_NXT, SND_UNA,
                  SND_WL1, SND_WL2, SND_WND, SND_WSCALE, SSTHRESH, STATE, TMPL_LEN, TMPL_SUM,
                  TS_BASE, TS_OK, TS_RECENT, TX_END, TX_FIN, TX_NXT, TX_UNA, LAST_RX_US, RECOVER, SND_MAX,
                  RX_FIN, TMPL_CAP)
from .states import ACK, CLOSE_WAIT, ESTABLISHED, PSH

ETH_IP_LEN = 34      # Ethernet (14) + IPv4 without options (20): the template's layout


@hot(inline="always")
def ts_now(hot, slot, now_us):
    """Our TSval: a millisecond clock with a random per-connection offset (RFC 7323 §5.4)."""
    return (now_us // 1000 + hot[slot, TS_BASE]) & 0xFFFFFFFF


@hot
def rcv_window(hot, slot, rxcap):
    """The window field to advertise and the right edge it promises (RFC 9293 §3.8.6.2):
    free room in the receive ring, scaled (RFC 7323 §2.3), never shrinking an edge
    already advertised."""
    free = rxcap - (hot[slot, RX_NXT] - hot[slot, RX_READ])
    scale = hot[slot, RCV_WSCALE]
    field = min(free >> scale, 65535)
    edge = seq_add(hot[slot, RCV_NXT], field << scale)
    if seq_lt(edge, hot[slot, RCV_ADV]):
        # Never move the right edge back: advertise what was already promised.
        field = min(seq_sub(hot[slot, RCV_ADV], hot[slot, RCV_NXT]) >> scale, 65535)
        edge = hot[slot, RCV_ADV]
    return field, edge


@hot(inline="always")
def payload_off(hot, slot, optlen):
    """Where a segment's payload starts, relative to the frame: headers of the template
    plus ``optlen`` bytes of extra options."""
    return hot[slot, TMPL_LEN] + optlen


@hot(inline="always")
def _sum_be(s):
    """A sum of little-endian words (as the copy loops below count) as a network-order
    partial sum: fold, then swap the bytes (RFC 1071 §2(B): the sum is byte-order
    independent up to that swap). Same result as ``wire.checksum.csum_add``."""
    s = csum_fold(s)
    return ((s & 0xFF) << 8) | (s >> 8)


@hot(inline="always")
def copy2_sum(d1, o1, d2, o2, src, so, n):
    """Copy ``src[so:so+n]`` to ``d1[o1:]`` and to ``d2[o2:]`` in one pass and return the
    Internet checksum partial sum of those bytes (network order, unfolded; words counted
    from ``so``): the payload is read once, for the frame, the retransmission copy and the
    TCP checksum together (RFC 1071 §2 suggests combining the sum with the copy). 8-byte words,
    then 4/2/1: writes exactly ``n`` bytes to each destination, reads exactly ``n``."""
    s = np.int64(0)
    j = 0
    while j + 8 <= n:
        w = load_u64(src, so + j)
        store_u64(d1, o1 + j, w)
        store_u64(d2, o2 + j, w)
        s += np.int64(w & np.uint64(0xFFFFFFFF)) + np.int64(w >> np.uint64(32))
        j += 8
    if j + 4 <= n:
        w4 = load_u32(src, so + j)
        store_u32(d1, o1 + j, w4)
        store_u32(d2, o2 + j, w4)
        s += np.int64(w4)
        j += 4
    if j + 2 <= n:
        w2 = load_u16(src, so + j)
        store_u16(d1, o1 + j, w2)
        store_u16(d2, o2 + j, w2)
        s += np.int64(w2)
        j += 2
    if j < n:
        # odd trailing byte = high byte of a zero-padded big-endian word = low byte in LE
        b = load_u8(src, so + j)
        store_u8(d1, o1 + j, b)
        store_u8(d2, o2 + j, b)
        s += np.int64(b)
    return _sum_be(s)


@hot(inline="always")
def _finish_headers(hot, slot, data, boff, flags, seq, ack, wnd, ident, optlen, plen, psum, now_us):
    """Write the fields that change into a frame whose template bytes (and options and
    payload) are in place, and both checksums: the template's precomputed sums of the
    constant fields plus the changed words plus ``psum``, the partial sum of the options
    and payload (RFC 1624 style: only what changed is added). Returns the frame length."""
    t = boff + hot[slot, HDR_TCP_OFF]
    thl = hot[slot, HDR_TCP_LEN] + optlen
    tlen = thl + plen
    # IPv4 (RFC 791 §3.1): total length and identification are the only fields that change.
    total = 20 + tlen
    ipo = boff + 14
    wr16(data, ipo + 2, total)
    wr16(data, ipo + 4, ident)
    wr16(data, ipo + 10, csum_finish(hot[slot, IP_SUM] + total + ident))
    # TCP (RFC 9293 §3.1): the variable words on top of the template's precomputed sum
    # (which holds the pseudo-header's addresses and protocol; its length is tlen).
    word12 = ((thl >> 2) << 12) | flags
    wr32(data, t + 4, seq)
    wr32(data, t + 8, ack)
    wr16(data, t + 12, word12)
    wr16(data, t + 14, wnd)
    s = (hot[slot, TMPL_SUM] + tlen + word12 + (seq >> 16) + (seq & 0xFFFF)
         + (ack >> 16) + (ack & 0xFFFF) + wnd + psum)
    if hot[slot, HDR_TCP_LEN] >= 32:           # the template carries the timestamps option
        tsval = ts_now(hot, slot, now_us)
        tsecr = hot[slot, TS_RECENT]
        wr32(data, t + 24, tsval)
        wr32(data, t + 28, tsecr)
        s += (tsval >> 16) + (tsval & 0xFFFF) + (tsecr >> 16) + (tsecr & 0xFFFF)
    wr16(data, t + 16, csum_finish(s))
    return hot[slot, HDR_TCP_OFF] + tlen


@hot(inline="always")
def _write_headers(hot, slot, tmpl, data, boff, flags, seq, ack, wnd, ident, opts, optlen, plen, now_us):
    """Headers of one segment whose ``plen`` payload bytes already sit at
    ``data[boff + payload_off:]``: copy the template and the extra options, then
    ``_finish_headers``. Reads the connection row, writes only ``data``; returns the frame
    length. (The generic path: ACKs, retransmissions, SACK options; fast_send has its own.)"""
    hl = hot[slot, TMPL_LEN]
    memcpy(data, boff, tmpl[slot], 0, hl)
    psum = np.int64(0)
    if optlen > 0:
        memcpy(data, boff + hl, opts, 0, optlen)
        psum = csum_add(data, boff + hl, optlen, psum)
    if plen > 0:
        psum = csum_add(data, boff + hl + optlen, plen, psum)
    return _finish_headers(hot, slot, data, boff, flags, seq, ack, wnd, ident, optlen, plen, psum, now_us)


@hot(inline="always")
def _segment_sent(hot, slot, rxcap):
    """The connection-state side of sending any segment: it carries RCV.NXT and the
    current window (RFC 9293 §3.8.6.2), so it acknowledges everything (no ACK pending),
    and it uses one IPv4 identification. Returns (ack, window field, identification)."""
    ack = hot[slot, RCV_NXT]
    wnd, edge = rcv_window(hot, slot, rxcap)
    hot[slot, RCV_ADV] = edge
    ident = hot[slot, IP_ID]
    hot[slot, IP_ID] = (ident + 1) & 0xFFFF
    hot[slot, ACK_PENDING] = 0
    return ack, wnd, ident


@hot
def build_segment(hot, slot, tmpl, data, boff, flags, seq, ring, roff, plen, opts, optlen, rxcap, now_us):
    """Write one segment at ``data[boff:]``; returns its frame length.

    Payload: ``plen`` bytes of the send ring ``ring`` from stream offset ``roff``
    (ring wrap handled). Extra options (SACK blocks) are ``opts[:optlen]``,
    optlen a multiple of 4 that fits the 40 option bytes (checked by the caller).
    The acknowledgment is always RCV.NXT and the window the current one, so every
    segment sent also acknowledges (clears ACK_PENDING).
    """
    if plen > 0:
        ring_get(ring, roff, data, boff + payload_off(hot, slot, optlen), plen)
    ack, wnd, ident = _segment_sent(hot, slot, rxcap)
    return _write_headers(hot, slot, tmpl, data, boff, flags, seq, ack, wnd, ident, opts, optlen, plen, now_us)


@hot(inline="always")
def _frame_off(pool, idx):
    return idx * pool.meta[BUF_SIZE] + pool.data_off[idx]


@hot
def ring_put(ring, off, src, soff, n):
    """Copy ``src[soff:soff+n]`` into a ring at stream offset ``off`` (wrap handled)."""
    cap = ring.shape[0]
    start = off & (cap - 1)
    first = min(n, cap - start)
    memcpy(ring, start, src, soff, first)
    if first < n:
        memcpy(ring, 0, src, soff + first, n - first)


@hot
def ring_get(ring, off, dst, doff, n):
    cap = ring.shape[0]
    start = off & (cap - 1)
    first = min(n, cap - start)
    memcpy(dst, doff, ring, start, first)
    if first < n:
        memcpy(dst, doff + first, ring, 0, n - first)


@hot
def usable_window(hot, slot):
    """Bytes that may be sent now: min(peer window, congestion window) minus bytes in flight."""
    inflight = seq_sub(hot[slot, SND_NXT], hot[slot, SND_UNA])
    return min(hot[slot, SND_WND], hot[slot, CWND]) - inflight


@hot(inline="always")
def _send_room(hot, slot, cap, mlen):
    """The send ring can take ``mlen`` more bytes (and no FIN is queued after them)."""
    return hot[slot, TX_FIN] == 0 and mlen >= 0 and hot[slot, TX_END] + mlen - hot[slot, TX_UNA] <= cap


@hot(inline="always")
def _can_send_now(hot, slot, end, mlen):
    """A message queued at stream offset ``end`` may go out at once as one segment: the
    connection may send, nothing older is waiting, it fits one MSS and the window."""
    st = hot[slot, STATE]
    return ((st == ESTABLISHED or st == CLOSE_WAIT) and hot[slot, TX_NXT] == end
            and mlen <= hot[slot, SND_MSS] and mlen <= usable_window(hot, slot))


@hot(inline="always")
def _data_sent(hot, slot, end, mlen, now_us):
    """SND.NXT and the send ring's sent mark past a data segment of ``mlen`` bytes."""
    seq = hot[slot, SND_NXT]
    hot[slot, SND_NXT] = seq_add(seq, mlen)
    if seq_lt(hot[slot, SND_MAX], hot[slot, SND_NXT]):
        hot[slot, SND_MAX] = hot[slot, SND_NXT]
    hot[slot, TX_NXT] = end + mlen
    if hot[slot, RTX_DEADLINE] == 0:           # RFC 6298 §5.1: start the timer if not running
        hot[slot, RTX_DEADLINE] = now_us + hot[slot, RTO_US]
    hot[slot, FAST_TX] += 1


# Inlined into runtime-free callers (the engine's flush_oe, the compiled loops): a call passes
# the connection table, rings, template, the pool's six arrays and the message field by field
# (~90 words on the stack) -- a good part of the segment's cost (mem/hotpath.py).
@hot(inline=into_runtime_free_callers)
def fast_send(hot, slot, txq, rxcap, tmpl, pool, msg, moff, mlen, opts, now_us):
    """Engine-level send: queue ``msg[moff:moff+mlen]`` and, if it can go at once,
    build its segment. Returns a pool buffer ready for tx_burst (>= 0), -1 when the
    data was queued for the slow path (window closed, older data still unsent,
    message larger than one MSS, connection not established, no buffer, a buffer too
    small for the frame), or -2 when the send ring has no room (nothing queued; try
    again after ACKs arrive).

    The work per message: the template (headers, precomputed sums) copied as one
    constant-size block, the payload read once and written to both the frame and the
    send ring (the retransmission queue) while its checksum is summed (``copy2_sum``),
    then the few changing header fields. No libc call, no division."""
    ring = txq[slot]
    cap = ring.shape[0]
    if not _send_room(hot, slot, cap, mlen):
        return -2
    end = hot[slot, TX_END]
    hot[slot, TX_END] = end + mlen
    if not _can_send_now(hot, slot, end, mlen):
        ring_put(ring, end, msg, moff, mlen)
        return -1
    idx = pool_alloc(pool)
    hl = hot[slot, TMPL_LEN]
    if idx >= 0 and (pool.meta[BUF_SIZE] - pool.data_off[idx] < max(TMPL_CAP, hl + mlen)
                     or tmpl.shape[1] < TMPL_CAP):
        pool_free(pool, idx)     # tiny buffers or template rows: the slow path segments it
        idx = -1
    if idx < 0:
        ring_put(ring, end, msg, moff, mlen)
        return -1
    boff = _frame_off(pool, idx)
    data = pool.data
    # The whole template row at once (a constant size: two vector moves, no libc call);
    # the bytes past the headers are overwritten by the payload or lie past the frame end.
    memcpy(data, boff, tmpl[slot], 0, TMPL_CAP)
    start = end & (cap - 1)
    if start + mlen <= cap:
        psum = copy2_sum(data, boff + hl, ring, start, msg, moff, mlen)
    else:                        # the send ring wraps inside this message (rare)
        ring_put(ring, end, msg, moff, mlen)
        psum = copy2_sum(data, boff + hl, data, boff + hl, msg, moff, mlen)
    seq = hot[slot, SND_NXT]
    ack, wnd, ident = _segment_sent(hot, slot, rxcap)
    pool.data_len[idx] = _finish_headers(hot, slot, data, boff, ACK | PSH, seq, ack, wnd, ident, 0, mlen, psum,
                                         now_us)
    _data_sent(hot, slot, end, mlen, now_us)
    return idx


@hot
def fast_input(hot, slot, rxq, data, sg, now_us):
    """Accept the next in-order segment of an ESTABLISHED connection, or return False."""
    if (hot[slot, STATE] != ESTABLISHED or hot[slot, OOO] != 0 or hot[slot, RECOVER] != 0
            or hot[slot, SND_NXT] != hot[slot, SND_MAX] or hot[slot, RX_FIN] >= 0):
        return False        # (RX_FIN: a FIN already seen past a hole is consumed by the slow path)
    flags = sg[SG_FLAGS]
    if (flags & ~PSH) != ACK:
        return False
    seq = sg[SG_SEQ]
    if seq != hot[slot, RCV_NXT]:
        return False
    ack = sg[SG_ACK]
    una = hot[slot, SND_UNA]
    nxt = hot[slot, SND_NXT]
    if seq_lt(ack, una) or seq_lt(nxt, ack):
        return False
    plen = sg[SG_DATA_LEN]
    if plen == 0 and ack == una:
        return False        # duplicate ACK or window update: the slow path counts dupacks
    ts = hot[slot, TS_OK] != 0
    if ts and sg[SG_TS] == 0:
        return False        # RFC 7323 §3.2: once negotiated, a segment without TS is suspect
    ring = rxq[slot]
    cap = ring.shape[0]
    if plen > 0:
        # the whole payload must fit the window we advertised and the ring
        if plen > cap - (hot[slot, RX_NXT] - hot[slot, RX_READ]) or seq_lt(hot[slot, RCV_ADV], seq_add(seq, plen)):
            return False
        ring_put(ring, hot[slot, RX_NXT], data, sg[SG_DATA_OFF], plen)
        hot[slot, RX_NXT] += plen
        hot[slot, RCV_NXT] = seq_add(seq, plen)
        hot[slot, ACK_PENDING] += 1
    if ts:
        hot[slot, TS_RECENT] = sg[SG_TSVAL]     # RFC 7323 §4.3: SEG.SEQ == Last.ACK.sent here
    acked = seq_sub(ack, una)
    if acked > 0:
        hot[slot, SND_UNA] = ack
        hot[slot, TX_UNA] += acked
        hot[slot, DUPACKS] = 0
        mss = hot[slot, SND_MSS]
        cw = hot[slot, CWND]
        if cw < hot[slot, SSTHRESH]:            # RFC 5681 §3.1: slow start
            cw += min(acked, mss)
        else:                                    # congestion avoidance
            cw += max(1, mss * mss // cw)
        hot[slot, CWND] = min(cw, 1 << 30)
        if ts:
            r = ((now_us // 1000 + hot[slot, TS_BASE] - sg[SG_TSECR]) & 0xFFFFFFFF)
            if r < 60000:
                hot[slot, RTT_SAMPLE_US] = max(r * 1000, 1)
        # RFC 6298 §5.2/5.3: stop the timer when all is acked, else restart it.
        hot[slot, RTX_DEADLINE] = 0 if ack == nxt else now_us + hot[slot, RTO_US]
    # RFC 9293 §3.10.7.4: window update when the segment is not older than the last one used.
    if seq_lt(hot[slot, SND_WL1], seq) or (seq == hot[slot, SND_WL1] and seq_le(hot[slot, SND_WL2], ack)):
        hot[slot, SND_WND] = sg[SG_WND] << hot[slot, SND_WSCALE]
        hot[slot, SND_WL1] = seq
        hot[slot, SND_WL2] = ack
    hot[slot, LAST_RX_US] = now_us
    hot[slot, FAST_RX] += 1
    return True


@hot
def tcp_recv(hot, slot, rxq, out, ooff, n):
    """Engine-level receive: move up to ``n`` delivered bytes to ``out[ooff:]``; returns the count."""
    k = min(n, hot[slot, RX_NXT] - hot[slot, RX_READ])
    if k > 0:
        ring_get(rxq[slot], hot[slot, RX_READ], out, ooff, k)
        hot[slot, RX_READ] += k
    return k


@hot
def build_ack(hot, slot, tmpl, txq, rxcap, pool, opts, optlen, now_us):
    """A pure ACK at SND.NXT (RFC 9293 §3.10.7.4); returns its buffer or -1 if the pool is empty."""
    idx = pool_alloc(pool)
    if idx < 0:
        return -1
    n = build_segment(hot, slot, tmpl, pool.data, _frame_off(pool, idx), ACK, hot[slot, SND_NXT],
                      txq[slot], 0, 0, opts, optlen, rxcap, now_us)
    pool.data_len[idx] = n
    return idx

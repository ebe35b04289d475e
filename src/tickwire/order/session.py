"""FIXP session (client side), iLink 3 style: Negotiate -> Establish -> sequenced business
messages with Sequence heartbeats, RetransmitRequest on a gap, Terminate.

The session is transport-agnostic: the engine hands it each complete frame (after
oe_codec.frame_check) and gives it an output buffer for what it must send. All state is
one int64 array (SS_*), so the engine loop carries it as a plain argument.

Sequencing of inbound business messages (FIXP 1.1 §6 "recoverable" flow, as in iLink 3):
  seq == next  -> process (A_BUSINESS), next += 1
  seq <  next  -> duplicate, dropped and counted (A_DROP)
  seq >  next  -> gap: RetransmitRequest(from=next, count=seq-next+1), drop this one (it is
                  inside the requested range and comes back in order), counted
A Sequence heartbeat whose NextSeqNo is ahead of ours is a gap too.

Reconnect: the client re-Establishes with the same UUID and its NextSeqNo; if the venue
no longer knows the UUID (EstablishmentReject ERR_UNKNOWN_UUID, e.g. a venue restart) the
client Negotiates a fresh UUID and reports A_RESET: the venue's order state is gone, so
the engine must drop its working orders (orders.forget_all).

Keepalive: if nothing was sent for one interval we send Sequence; if nothing was received
for two intervals the session is declared lost (Terminate ERR_KEEPALIVE_LAPSED, A_DOWN).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from . import wire_layout as W
from .oe_codec import (enc_establish, enc_negotiate, enc_retransmit, enc_sequence, enc_terminate, rd_field_u16,
                       rd_field_u32, rd_field_u64, rd_seqnum, template_of)

# state array slots
(SS_STATE, SS_UUID, SS_NEXT_OUT, SS_NEXT_IN, SS_LAST_RX, SS_LAST_TX, SS_KEEPALIVE_NS, SS_FIRM,
 SS_RT_END,          # retransmission outstanding up to (excluding) this seq; 0 = none
 SS_HIGHEST_SEEN,    # highest business seq seen (to re-request after a retransmission)
 SS_ESTABLISHED, SS_GAPS, SS_DUPLICATES, SS_GARBAGE, SS_RT_REQUESTS, SS_TERMINATES, SS_LAPSES, SS_RESETS,
 SS_LAST_ERROR, SS_NOT_APPLIED,
 SS_RT_SENT) = range(21)  # when the outstanding RetransmitRequest was sent
SS_N = 24
SS_NAMES = ("state", "uuid", "next_out", "next_in", "last_rx", "last_tx", "keepalive_ns", "firm", "rt_end",
            "highest_seen", "established", "gaps", "duplicates", "garbage", "retransmit_requests", "terminates",
            "keepalive_lapses", "resets", "last_error", "not_applied", "rt_sent")

ST_DOWN, ST_NEGOTIATING, ST_ESTABLISHING, ST_ESTABLISHED = range(4)
ST_NAMES = ("down", "negotiating", "establishing", "established")

# what the engine must do with a frame
A_NONE, A_BUSINESS, A_DROP, A_DOWN, A_RESET, A_UP = range(6)

MAX_RT_COUNT = 2000   # messages per RetransmitRequest (CME's replay limit is of this order, mdp3.md §5)


def new_session(firm: int = 1, keepalive_ms: int = 1000) -> np.ndarray:
    s = np.zeros(SS_N, np.int64)
    s[SS_FIRM] = firm
    s[SS_KEEPALIVE_NS] = keepalive_ms * 1_000_000
    s[SS_NEXT_OUT] = 1
    s[SS_NEXT_IN] = 1
    return s


@njit(cache=True, inline="always")
def on_terminate(s, buf, off):
    """A Terminate507 from the peer (either side of the session): record why, go down."""
    s[SS_TERMINATES] += 1
    s[SS_LAST_ERROR] = rd_field_u16(buf, off, W.F_TERM_ERR)
    s[SS_STATE] = ST_DOWN
    return A_DOWN


@njit(cache=True, _nrt=False)
def client_connect(s, now, out, off):
    """Transport is up: Negotiate (first time) or re-Establish (same UUID, keep sequences)."""
    s[SS_LAST_RX] = now
    s[SS_LAST_TX] = now
    s[SS_RT_END] = 0
    if s[SS_UUID] == 0:
        s[SS_UUID] = now if now > 0 else 1
        s[SS_STATE] = ST_NEGOTIATING
        return enc_negotiate(out, off, s[SS_UUID], now, s[SS_FIRM])
    s[SS_STATE] = ST_ESTABLISHING
    return enc_establish(out, off, s[SS_UUID], now, s[SS_NEXT_OUT], s[SS_KEEPALIVE_NS] // 1_000_000)


@njit(cache=True, _nrt=False)
def client_disconnected(s):
    s[SS_STATE] = ST_DOWN


@njit(cache=True, inline="always")
def next_out_seq(s):
    """Sequence number for the next business message we send (then advanced)."""
    q = s[SS_NEXT_OUT]
    s[SS_NEXT_OUT] = q + 1
    return q


@njit(cache=True, inline="always")
def _request(s, now, from_seq, upto, out, off):
    count = upto - from_seq
    if count > MAX_RT_COUNT:
        count = MAX_RT_COUNT
    s[SS_RT_END] = from_seq + count
    s[SS_RT_SENT] = now
    s[SS_RT_REQUESTS] += 1
    s[SS_LAST_TX] = now
    return enc_retransmit(out, off, W.RETRANSMIT_REQUEST, s[SS_UUID], s[SS_UUID], now, from_seq, count)


@njit(cache=True, _nrt=False)
def client_on_frame(s, buf, off, n, now, out, ooff):
    """One checked frame from the venue. Returns (action, bytes written to out)."""
    s[SS_LAST_RX] = now
    tid = template_of(buf, off)
    st = s[SS_STATE]
    if tid >= W.NEW_ORDER:
        if st != ST_ESTABLISHED:
            s[SS_GARBAGE] += 1
            return A_DROP, 0
        seq = rd_seqnum(buf, off)
        nxt = s[SS_NEXT_IN]
        if seq > s[SS_HIGHEST_SEEN]:
            s[SS_HIGHEST_SEEN] = seq
        if seq == nxt:
            s[SS_NEXT_IN] = nxt + 1
            if s[SS_RT_END] != 0 and nxt + 1 >= s[SS_RT_END]:
                s[SS_RT_END] = 0
                if s[SS_HIGHEST_SEEN] >= nxt + 1:      # more went missing meanwhile
                    return A_BUSINESS, _request(s, now, nxt + 1, s[SS_HIGHEST_SEEN] + 1, out, ooff)
            return A_BUSINESS, 0
        if seq < nxt:
            s[SS_DUPLICATES] += 1
            return A_DROP, 0
        s[SS_GAPS] += 1
        if s[SS_RT_END] != 0:
            return A_DROP, 0        # a retransmission is already on its way
        return A_DROP, _request(s, now, nxt, seq + 1, out, ooff)
    if tid == W.SEQUENCE:
        if rd_field_u64(buf, off, W.F_UUID) != s[SS_UUID]:
            s[SS_GARBAGE] += 1
            return A_NONE, 0
        nseq = rd_field_u32(buf, off, W.F_SEQ_NEXT_SEQ)
        if st == ST_ESTABLISHED and nseq > s[SS_NEXT_IN] and s[SS_RT_END] == 0:
            s[SS_GAPS] += 1
            return A_NONE, _request(s, now, s[SS_NEXT_IN], nseq, out, ooff)
        return A_NONE, 0
    if tid == W.NEGOTIATION_RESPONSE and st == ST_NEGOTIATING:
        if rd_field_u64(buf, off, W.F_UUID) != s[SS_UUID]:
            s[SS_GARBAGE] += 1
            return A_NONE, 0
        s[SS_NEXT_OUT] = 1
        s[SS_NEXT_IN] = 1
        s[SS_HIGHEST_SEEN] = 0
        s[SS_STATE] = ST_ESTABLISHING
        s[SS_LAST_TX] = now
        return A_NONE, enc_establish(out, ooff, s[SS_UUID], now, s[SS_NEXT_OUT], s[SS_KEEPALIVE_NS] // 1_000_000)
    if tid == W.ESTABLISHMENT_ACK and st == ST_ESTABLISHING:
        if rd_field_u64(buf, off, W.F_UUID) != s[SS_UUID]:
            s[SS_GARBAGE] += 1
            return A_NONE, 0
        venue_next = rd_field_u32(buf, off, W.F_ACK_NEXT_SEQ)
        if venue_next < s[SS_NEXT_IN]:
            # the venue's sequence went back under the same UUID: messages we already
            # applied would come again with other contents, and ours would be dropped as
            # duplicates. Not a session we can trade on: Terminate and say why.
            s[SS_LAST_ERROR] = W.ERR_SEQ_LOWER
            s[SS_STATE] = ST_DOWN
            return A_DOWN, enc_terminate(out, ooff, s[SS_UUID], now, W.ERR_SEQ_LOWER)
        s[SS_STATE] = ST_ESTABLISHED
        s[SS_ESTABLISHED] += 1
        if venue_next > s[SS_NEXT_IN]:
            # we missed messages while disconnected (fills, cancel-on-disconnect): fetch them
            s[SS_GAPS] += 1
            s[SS_HIGHEST_SEEN] = venue_next - 1
            return A_UP, _request(s, now, s[SS_NEXT_IN], venue_next, out, ooff)
        return A_UP, 0
    if tid == W.ESTABLISHMENT_REJECT or tid == W.NEGOTIATION_REJECT:
        err = rd_field_u16(buf, off, W.F_ESTREJ_ERR if tid == W.ESTABLISHMENT_REJECT else W.F_REJ_ERR_NEG)
        s[SS_LAST_ERROR] = err
        if tid == W.ESTABLISHMENT_REJECT and err == W.ERR_UNKNOWN_UUID:
            # the venue forgot us: start over with a new UUID; working orders are gone
            s[SS_UUID] = now if now != s[SS_UUID] else now + 1
            s[SS_RESETS] += 1
            s[SS_STATE] = ST_NEGOTIATING
            s[SS_LAST_TX] = now
            return A_RESET, enc_negotiate(out, ooff, s[SS_UUID], now, s[SS_FIRM])
        s[SS_STATE] = ST_DOWN
        return A_DOWN, 0
    if tid == W.TERMINATE:
        return on_terminate(s, buf, off), 0
    if tid == W.RETRANSMISSION:
        return A_NONE, 0
    if tid == W.NOT_APPLIED:
        s[SS_NOT_APPLIED] += 1
        return A_NONE, 0
    if tid == W.RETRANSMIT_REJECT:
        # the venue cannot replay: our order state may be wrong; treat as session loss
        s[SS_LAST_ERROR] = rd_field_u16(buf, off, W.F_RTREJ_ERR)
        s[SS_STATE] = ST_DOWN
        return A_DOWN, enc_terminate(out, ooff, s[SS_UUID], now, W.ERR_RETRANS_RANGE)
    # a valid frame that makes no sense in this state, or a venue->client template we
    # never expect (e.g. a NewOrderSingle): counted, ignored
    s[SS_GARBAGE] += 1
    return A_NONE, 0


@njit(cache=True, _nrt=False)
def client_garbage(s, now, out, ooff, err):
    """The stream is not our protocol (frame_check < 0): we cannot resynchronise a byte
    stream, so Terminate and go down; the engine closes the transport and reconnects."""
    s[SS_GARBAGE] += 1
    s[SS_LAST_ERROR] = err
    s[SS_STATE] = ST_DOWN
    return enc_terminate(out, ooff, s[SS_UUID], now, W.ERR_GARBAGE)


@njit(cache=True, _nrt=False)
def client_poll(s, now, out, ooff):
    """Timers. Returns (action, bytes written): a heartbeat, or A_DOWN on a lapsed peer."""
    st = s[SS_STATE]
    if st == ST_DOWN:
        return A_NONE, 0
    ka = s[SS_KEEPALIVE_NS]
    if now - s[SS_LAST_RX] > 2 * ka:
        s[SS_LAPSES] += 1
        s[SS_STATE] = ST_DOWN
        return A_DOWN, enc_terminate(out, ooff, s[SS_UUID], now, W.ERR_KEEPALIVE_LAPSED)
    if st == ST_ESTABLISHED and s[SS_RT_END] != 0 and now - s[SS_RT_SENT] > 2 * ka:
        # a RetransmitRequest unanswered for two keepalives: every business message meanwhile
        # was dropped as a gap, so our order state is behind the venue's; end the session
        # (the engine halts trading, reconnects, and asks again from SS_NEXT_IN)
        s[SS_LAST_ERROR] = W.ERR_RETRANS_TIMEOUT
        s[SS_STATE] = ST_DOWN
        s[SS_RT_END] = 0
        return A_DOWN, enc_terminate(out, ooff, s[SS_UUID], now, W.ERR_RETRANS_TIMEOUT)
    if st == ST_ESTABLISHED and now - s[SS_LAST_TX] > ka:
        s[SS_LAST_TX] = now
        return A_NONE, enc_sequence(out, ooff, s[SS_UUID], s[SS_NEXT_OUT], 0)
    return A_NONE, 0

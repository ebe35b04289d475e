"""FIXP session, venue side (the simulator's order-entry gateway), mirror of
order/session.py.

The venue keeps a journal of every business message it sent (one MAX_FRAME slot per
sequence number, a ring of ``journal.shape[0]`` messages) so a RetransmitRequest is served
in O(count) with the original bytes. A request older than the journal gets
RetransmitReject. Inbound business messages with a sequence gap get NotApplied (iLink 3
behaviour), then are processed. Cancel-on-disconnect is the caller's job (gateway.py),
after ``server_lost`` says the session went down.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..mem.atomics import memcpy
from ..sbe.le import wr_u32
from ..order import wire_layout as W
from ..order.oe_codec import (enc_establishment_ack, enc_not_applied, enc_establishment_reject, enc_negotiation_response,
                              enc_retransmit, enc_retransmit_reject, enc_sequence, enc_terminate, rd_field_u16,
                              rd_field_u32, rd_field_u64, rd_seqnum, template_of)
from ..order.session import (A_BUSINESS, A_DOWN, on_terminate, A_DROP, A_NONE, A_UP, SS_DUPLICATES, SS_ESTABLISHED, SS_GAPS,
                             SS_GARBAGE, SS_HIGHEST_SEEN, SS_KEEPALIVE_NS, SS_LAPSES, SS_LAST_ERROR, SS_LAST_RX,
                             SS_LAST_TX, SS_N, SS_NEXT_IN, SS_NEXT_OUT, SS_NOT_APPLIED, SS_RT_REQUESTS,
                             SS_UUID, ST_DOWN, ST_ESTABLISHED, ST_ESTABLISHING, ST_NEGOTIATING)

SS_STATE = 0
NOT_APPLIED_ENC = W.NOT_APPLIED


def new_server_session(keepalive_ms: int = 1000, journal: int = 8192):
    s = np.zeros(SS_N, np.int64)
    s[SS_KEEPALIVE_NS] = keepalive_ms * 1_000_000
    s[SS_NEXT_OUT] = 1
    s[SS_NEXT_IN] = 1
    return s, np.zeros((journal, W.MAX_FRAME), np.uint8), np.zeros(journal, np.int64)


@njit(cache=True)
def journal_put(s, journal, jlen, frame, off, n):
    """Stamp the next outbound sequence number into a business frame and keep a copy.
    Returns the sequence number used."""
    seq = s[SS_NEXT_OUT]
    s[SS_NEXT_OUT] = seq + 1
    wr_u32(frame, off + W.BODY + W.F_SEQNUM, seq)
    k = seq % journal.shape[0]
    memcpy(journal[k], 0, frame, off, n)
    jlen[k] = n
    return seq


@njit(cache=True)
def server_on_frame(s, journal, jlen, buf, off, n, now, out, ooff):
    """One checked frame from the client. Returns (action, bytes written to out).
    A_BUSINESS: the caller decodes and executes it."""
    s[SS_LAST_RX] = now
    tid = template_of(buf, off)
    st = s[SS_STATE]
    if tid >= W.NEW_ORDER:
        if st != ST_ESTABLISHED or tid > W.CANCEL_REQUEST:
            s[SS_GARBAGE] += 1
            return A_DROP, 0
        seq = rd_seqnum(buf, off)
        nxt = s[SS_NEXT_IN]
        if seq < nxt:
            s[SS_DUPLICATES] += 1
            return A_DROP, 0
        w = 0
        if seq > nxt:
            s[SS_GAPS] += 1
            s[SS_NOT_APPLIED] += 1
            w = enc_not_applied(out, ooff, s[SS_UUID], nxt, seq - nxt)
        s[SS_NEXT_IN] = seq + 1
        return A_BUSINESS, w
    if tid == W.NEGOTIATE:
        uuid = rd_field_u64(buf, off, W.F_UUID)
        if uuid != s[SS_UUID]:
            # a new session: fresh sequence numbers and journal
            s[SS_UUID] = uuid
            s[SS_NEXT_IN] = 1
            s[SS_NEXT_OUT] = 1
            jlen[:] = 0
        s[SS_STATE] = ST_NEGOTIATING
        s[SS_LAST_TX] = now
        return A_NONE, enc_negotiation_response(out, ooff, uuid, now, 0, 0)
    if tid == W.ESTABLISH:
        uuid = rd_field_u64(buf, off, W.F_UUID)
        if uuid != s[SS_UUID] or s[SS_UUID] == 0:
            return A_NONE, enc_establishment_reject(out, ooff, uuid, now, s[SS_NEXT_OUT], W.ERR_UNKNOWN_UUID)
        cnext = rd_field_u32(buf, off, W.F_EST_NEXT_SEQ)
        if cnext < s[SS_NEXT_IN]:
            s[SS_STATE] = ST_DOWN
            return A_DOWN, enc_establishment_reject(out, ooff, uuid, now, s[SS_NEXT_OUT], W.ERR_SEQ_LOWER)
        ka = rd_field_u32(buf, off, W.F_EST_KEEPALIVE)
        if ka > 0:
            s[SS_KEEPALIVE_NS] = ka * 1_000_000
        s[SS_STATE] = ST_ESTABLISHED
        s[SS_ESTABLISHED] += 1
        s[SS_LAST_TX] = now
        return A_UP, enc_establishment_ack(out, ooff, uuid, now, s[SS_NEXT_OUT], s[SS_NEXT_IN] - 1, uuid,
                                           s[SS_KEEPALIVE_NS] // 1_000_000)
    if tid == W.RETRANSMIT_REQUEST:
        s[SS_RT_REQUESTS] += 1
        frm = rd_field_u32(buf, off, W.F_RT_FROM)
        cnt = rd_field_u16(buf, off, W.F_RT_COUNT)
        J = journal.shape[0]
        room = (out.shape[0] - ooff) // W.MAX_FRAME - 1
        if (st != ST_ESTABLISHED or frm < 1 or cnt < 1 or frm + cnt > s[SS_NEXT_OUT]
                or frm + J <= s[SS_NEXT_OUT] - 1 or cnt > room):
            return A_NONE, enc_retransmit_reject(out, ooff, s[SS_UUID], s[SS_UUID], now, W.ERR_RETRANS_RANGE)
        w = enc_retransmit(out, ooff, W.RETRANSMISSION, s[SS_UUID], s[SS_UUID], now, frm, cnt)
        for q in range(frm, frm + cnt):
            k = q % J
            memcpy(out, ooff + w, journal[k], 0, jlen[k])
            w += jlen[k]
        s[SS_LAST_TX] = now
        return A_NONE, w
    if tid == W.SEQUENCE:
        return A_NONE, 0
    if tid == W.TERMINATE:
        return on_terminate(s, buf, off), 0
    s[SS_GARBAGE] += 1
    return A_NONE, 0


@njit(cache=True)
def server_poll(s, now, out, ooff):
    st = s[SS_STATE]
    if st != ST_ESTABLISHED:
        return A_NONE, 0
    ka = s[SS_KEEPALIVE_NS]
    if now - s[SS_LAST_RX] > 2 * ka:
        s[SS_LAPSES] += 1
        s[SS_STATE] = ST_DOWN
        return A_DOWN, enc_terminate(out, ooff, s[SS_UUID], now, W.ERR_KEEPALIVE_LAPSED)
    if now - s[SS_LAST_TX] > ka:
        s[SS_LAST_TX] = now
        return A_NONE, enc_sequence(out, ooff, s[SS_UUID], s[SS_NEXT_OUT], 0)
    return A_NONE, 0


@njit(cache=True)
def server_lost(s):
    s[SS_STATE] = ST_DOWN

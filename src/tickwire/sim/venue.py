"""The simulated venue, transport-independent: matching engine + MDP publisher +
synthetic flow + the FIXP gateway for one client session.

    venue_flow(V, now, steps)          synthetic participants act; market data queued
    venue_oe_input(V, buf, off, n, now) client bytes: session + orders; replies queued
    venue_timers(V, now)               heartbeats / lapse
    venue_disconnected(V, now)         transport lost: cancel-on-disconnect

Output queues, drained by the transport: ``mdq`` (one MDP packet per row, ``mdq_len``)
and ``out`` (order-entry bytes to the client, ``meta[V_OUT_LEN]``).
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np
from numba import njit

from ..order import wire_layout as W
from ..order.stream import stream_append, stream_keep_tail
from ..order.oe_codec import (enc_exec, enc_terminate, frame_check, rd_field_i32, rd_field_u8, rd_field_u32, rd_field_u64,
                              template_of)
from ..order.session import A_BUSINESS, A_DOWN, SS_STATE, SS_UUID, ST_ESTABLISHED
from .flow import flow_step, rnd
from .gateway_session import journal_put, new_server_session, server_lost, server_on_frame, server_poll
from .matching import (E_CLORDID, E_LEAVES, E_OID, E_OWNER, E_PRICE, E_QTY, E_SIDE, E_INSTR, E_TYPE, EV_ACK,
                       EV_CANCEL_REJECT, EV_CANCELED, EV_FILL, EV_LEVEL, EV_REJECTED, EV_REPLACED, EV_TRADE,
                       M_EV_COUNT, N_CUM, N_OID, N_OWNER, N_QTY, N_USED, OID_MASK, T_DAY, T_IOC, cancel_order,
                       new_order, replace_order)
from .publisher import P_SEQ, P_TRADES, pub_begin, pub_end, pub_side_diff, pub_trade, snapshot_packet

CLIENT_OWNER = 1
MDQ = 256          # market-data packets queued per transport turn

(V_OUT_LEN, V_MDQ_N, V_RXS_LEN, V_GARBAGE, V_ORDERS_IN, V_CANCELS_IN, V_REPLACES_IN, V_EXECS_OUT, V_COD_CANCELS,
 V_UNKNOWN_SECID, V_MDQ_DROPPED, V_OUT_OVERFLOW, V_FILLS_OUT, V_BAD_FIELDS, V_RX_LEFT) = range(15)
V_N = 16
V_NAMES = ("out_len", "mdq_n", "rxs_len", "garbage", "orders_in", "cancels_in", "replaces_in", "execs_out",
           "cod_cancels", "unknown_secid", "mdq_dropped", "out_overflow", "fills_out", "bad_fields",
           "rx_left")

Venue = namedtuple("Venue", "book pub flow sess journal jlen out rxs mdq mdq_len meta touched cl2oid")


def new_venue(book, pub, flow, keepalive_ms=1000) -> "Venue":
    sess, journal, jlen = new_server_session(keepalive_ms)
    n = book.cfg.shape[0]
    return Venue(book, pub, flow, sess, journal, jlen, np.zeros(1 << 20, np.uint8), np.zeros(1 << 16, np.uint8),
                 np.zeros((MDQ, pub.pkt.shape[0]), np.uint8), np.zeros(MDQ, np.int64), np.zeros(V_N, np.int64),
                 np.zeros((n, 2), np.int64), np.zeros((4096, 2), np.int64))


@njit(cache=True)
def _exec(V, template, ev, k, now, reason):
    if V.meta[V_OUT_LEN] + W.MAX_FRAME > V.out.shape[0]:
        V.meta[V_OUT_OVERFLOW] += 1
        return
    e = V.book.ev
    oid = e[k, E_OID]
    n = oid & OID_MASK
    nd = V.book.nodes
    qty = e[k, E_QTY]
    cum = 0
    if oid > 0 and n < nd.shape[0] and nd[n, N_OID] == oid:
        qty = nd[n, N_QTY]
        cum = nd[n, N_CUM]
    i = e[k, E_INSTR]
    secid = V.pub.secids[i] if 0 <= i < V.pub.secids.shape[0] else 0
    last_px = e[k, E_PRICE] if template == W.ER_TRADE else 0
    last_qty = e[k, E_QTY] if template == W.ER_TRADE else 0
    o = V.meta[V_OUT_LEN]
    # The last MAX_FRAME bytes of ``out`` are never sent: a report that does not fit before
    # them is encoded there, journaled and not sent (counted); the client sees the gap in
    # the sequence numbers and asks for it (FIXP retransmission), so nothing is lost.
    room = o + 2 * W.MAX_FRAME <= V.out.shape[0]
    at = o if room else V.out.shape[0] - W.MAX_FRAME
    ln = enc_exec(V.out, at, template, 0, now, e[k, E_CLORDID], oid, secid, e[k, E_SIDE], e[k, E_PRICE], qty,
                  e[k, E_LEAVES], cum, last_px, last_qty, V.pub.meta[P_TRADES] & 0xFFFFFFFF, reason)
    journal_put(V.sess, V.journal, V.jlen, V.out, at, ln)
    if room:
        V.meta[V_OUT_LEN] = o + ln
    else:
        V.meta[V_OUT_OVERFLOW] += 1
    V.meta[V_EXECS_OUT] += 1
    if template == W.ER_TRADE:
        V.meta[V_FILLS_OUT] += 1


@njit(cache=True)
def _events(V, now):
    """Turn the matching engine's events into market data (one packet) and execution
    reports for the client."""
    b = V.book
    e = b.ev
    ne = b.meta[M_EV_COUNT]
    pub_begin(V.pub, now)
    V.touched[:, :] = 0
    for k in range(ne):
        t = e[k, E_TYPE]
        if t == EV_TRADE:
            pub_trade(V.pub, e[k, E_INSTR], e[k, E_PRICE], e[k, E_QTY], e[k, E_SIDE])
        elif t == EV_LEVEL:
            V.touched[e[k, E_INSTR], e[k, E_SIDE] - 1] = 1
        elif e[k, E_OWNER] == CLIENT_OWNER:
            if t == EV_ACK:
                _exec(V, W.ER_NEW, e, k, now, 0)
                cid = e[k, E_CLORDID]
                V.cl2oid[cid & (V.cl2oid.shape[0] - 1), 0] = cid
                V.cl2oid[cid & (V.cl2oid.shape[0] - 1), 1] = e[k, E_OID]
            elif t == EV_FILL:
                _exec(V, W.ER_TRADE, e, k, now, 0)
            elif t == EV_CANCELED:
                _exec(V, W.ER_CANCEL, e, k, now, 0)
            elif t == EV_REPLACED:
                _exec(V, W.ER_MODIFY, e, k, now, 0)
            elif t == EV_REJECTED:
                _exec(V, W.ER_REJECT, e, k, now, e[k, E_LEAVES])
            elif t == EV_CANCEL_REJECT:
                _exec(V, W.CANCEL_REJECT, e, k, now, e[k, E_LEAVES])
    for i in range(V.touched.shape[0]):
        for sd in range(2):
            if V.touched[i, sd]:
                pub_side_diff(V.pub, b, i, sd)
    b.meta[M_EV_COUNT] = 0
    n = pub_end(V.pub)
    if n > 0:
        q = V.meta[V_MDQ_N]
        if q < V.mdq.shape[0]:
            V.mdq[q, :n] = V.pub.pkt[:n]
            V.mdq_len[q] = n
            V.meta[V_MDQ_N] = q + 1
        else:
            V.meta[V_MDQ_DROPPED] += 1      # the sequence number is used: receivers see a gap


@njit(cache=True)
def venue_flow(V, now, steps):
    for _ in range(steps):
        i = np_rand_instr(V)
        flow_step(V.flow, V.book, i)
        _events(V, now)


@njit(cache=True, inline="always")
def np_rand_instr(V):
    return rnd(V.flow, V.book.cfg.shape[0])


@njit(cache=True)
def _instr_of(V, secid):
    for i in range(V.pub.secids.shape[0]):
        if V.pub.secids[i] == secid:
            return i
    return -1


@njit(cache=True)
def _oid_for(V, cid, oid):
    if oid > 0:
        return oid
    r = cid & (V.cl2oid.shape[0] - 1)
    if V.cl2oid[r, 0] == cid:
        return V.cl2oid[r, 1]
    return 0


@njit(cache=True)
def _business(V, buf, off, now):
    tid = template_of(buf, off)
    cid = rd_field_u64(buf, off, W.F_CLORDID)
    if tid == W.NEW_ORDER:
        V.meta[V_ORDERS_IN] += 1
        i = _instr_of(V, rd_field_i32(buf, off, W.F_NO_SECID))
        if i < 0:
            V.meta[V_UNKNOWN_SECID] += 1
        tif = rd_field_u8(buf, off, W.F_NO_TIF)
        new_order(V.book, i, rd_field_u8(buf, off, W.F_NO_SIDE), rd_field_u64(buf, off, W.F_NO_PRICE),
                  rd_field_u32(buf, off, W.F_NO_QTY), T_IOC if tif == 3 else T_DAY, CLIENT_OWNER, cid)
    elif tid == W.CANCEL_REQUEST:
        V.meta[V_CANCELS_IN] += 1
        cancel_order(V.book, _oid_for(V, cid, rd_field_u64(buf, off, W.F_CX_OID)), CLIENT_OWNER, cid)
    elif tid == W.REPLACE_REQUEST:
        V.meta[V_REPLACES_IN] += 1
        replace_order(V.book, _oid_for(V, cid, rd_field_u64(buf, off, W.F_RP_OID)), CLIENT_OWNER, cid,
                      rd_field_u64(buf, off, W.F_RP_PRICE), rd_field_u32(buf, off, W.F_RP_QTY))
    _events(V, now)


@njit(cache=True)
def venue_oe_input(V, buf, off, n, now):
    """Client bytes ``buf[off:off + n]``, taken in pieces that fit the reassembly buffer.
    Returns A_DOWN when the session ended: the transport should send what take_out
    holds and close. ``meta[V_RX_LEFT]``: bytes not taken (the reply buffer is full until
    take_out drains it); the transport feeds them again, so nothing is lost. Garbage
    (a frame that fails frame_check) is answered with a Terminate naming it, counted,
    and ends the session; what followed it on the stream is meaningless and dropped."""
    taken = 0
    result = 0
    full = False
    while not full:
        rl = V.meta[V_RXS_LEN]
        take = stream_append(V.rxs, rl, buf, off + taken, n - taken)
        taken += take
        rl += take
        pos = 0
        while pos < rl:
            k = frame_check(V.rxs, pos, rl - pos)
            if k == 0:
                break
            if k < 0:
                V.meta[V_GARBAGE] += 1
                venue_disconnected(V, now)
                o = V.meta[V_OUT_LEN]
                if o + W.MAX_FRAME <= V.out.shape[0]:
                    V.meta[V_OUT_LEN] = o + enc_terminate(V.out, o, V.sess[SS_UUID], now, W.ERR_GARBAGE)
                else:
                    V.meta[V_OUT_OVERFLOW] += 1
                result = A_DOWN
                pos = rl
                taken = n
                break
            o = V.meta[V_OUT_LEN]
            if o + 64 * W.MAX_FRAME > V.out.shape[0]:
                V.meta[V_OUT_OVERFLOW] += 1
                full = True
                break
            act, w = server_on_frame(V.sess, V.journal, V.jlen, V.rxs, pos, k, now, V.out[o:], 0)
            V.meta[V_OUT_LEN] = o + w
            if act == A_BUSINESS:
                _business(V, V.rxs, pos, now)
            elif act == A_DOWN:
                venue_disconnected(V, now)
                result = A_DOWN
            pos += k
        V.meta[V_RXS_LEN] = stream_keep_tail(V.rxs, pos, rl)
        if taken >= n or pos == 0:      # all taken, or no room to take more
            break
    V.meta[V_RX_LEFT] = n - taken
    return result


@njit(cache=True)
def venue_disconnected(V, now):
    """Cancel-on-disconnect (mandatory on iLink 3): every resting client order is canceled.
    The cancel reports are journaled, not sent: the session is over (a Terminate, or no
    transport), so nothing may follow; a re-established client sees the gap in the
    sequence numbers and fetches them by retransmit request."""
    o = V.meta[V_OUT_LEN]
    server_lost(V.sess)
    nd = V.book.nodes
    for n in range(nd.shape[0]):
        if nd[n, N_USED] == 1 and nd[n, N_OWNER] == CLIENT_OWNER:
            if cancel_order(V.book, nd[n, N_OID], CLIENT_OWNER, 0):
                V.meta[V_COD_CANCELS] += 1
    _events(V, now)
    V.meta[V_OUT_LEN] = o
    V.meta[V_RXS_LEN] = 0


@njit(cache=True)
def venue_timers(V, now):
    o = V.meta[V_OUT_LEN]
    if o + W.MAX_FRAME > V.out.shape[0]:
        return 0
    act, w = server_poll(V.sess, now, V.out, o)
    V.meta[V_OUT_LEN] = o + w
    if act == A_DOWN:
        venue_disconnected(V, now)
    return act


@njit(cache=True)
def venue_snapshot(V, i, out, now):
    return snapshot_packet(V.pub, out, i, V.pub.meta[P_SEQ], now)


def take_out(V) -> bytes:
    n = int(V.meta[V_OUT_LEN])
    data = V.out[:n].tobytes()
    V.meta[V_OUT_LEN] = 0
    return data


def take_md(V) -> list[bytes]:
    n = int(V.meta[V_MDQ_N])
    pk = [V.mdq[k, :V.mdq_len[k]].tobytes() for k in range(n)]
    V.meta[V_MDQ_N] = 0
    return pk


def build_venue(instruments, seed: int = 1, n_levels: int = 4096, depth: int = 10, keepalive_ms: int = 1000):
    """instruments: list of (secid, mid_price, tick) in PRICE9 mantissas."""
    from .flow import new_flow
    from .matching import new_book
    from .publisher import new_publisher
    cfgs = []
    for secid, mid, tick in instruments:
        base = mid // tick * tick - (n_levels // 2) * tick
        if base <= 0:
            raise ValueError(f"instrument {secid}: mid {mid} too small for {n_levels} levels of {tick}")
        cfgs.append((base, tick))
    book = new_book(cfgs, n_levels=n_levels)
    pub = new_publisher([s for s, _, _ in instruments], depth)
    flow = new_flow(book, seed)
    return new_venue(book, pub, flow, keepalive_ms)

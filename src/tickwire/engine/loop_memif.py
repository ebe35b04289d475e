"""The run-to-completion loop over a frame port (memif, AF_XDP, AF_PACKET, PCI): one
bounded Numba call does, per received frame,

    rx_burst -> TCP fast path (order entry)  | stack_input -> UDP -> feed -> book
             -> strategy -> risk -> encode -> TCP fast_send -> tx_burst

and returns to Python only when the TCP slow path has frames to handle (handshake,
retransmission, out-of-order), when the order session must be reconnected, or at a TSC
``deadline`` (the control plane: memif link, TCP timers, the live view; the runner uses
slices of ~20 ms, so Python -- which evicts the loop's caches -- runs rarely).
Orders leave as soon as they are encoded: the frame is built and handed to tx_burst
after the instrument that produced them, before the rest of the packet is looked at.
Timestamps (layout.ST_*): rdtscp when the frame is taken from the receive ring (ST_RX)
and after the order frame was handed to tx_burst (ST_TX), rdtsc after each stage between
(only with E.meta[M_STAGES] on: core.stage_stamp):
tick-to-trade, wire-to-wire inside this process. Time for timers comes from the TSC clock
of the TCP stack (``clock``).
"""

from __future__ import annotations

from collections import namedtuple

from numba import njit

from ..drivers.port import rx_burst, tx_burst
from ..mem.atomics import cpu_pause, memcpy, prefetch_write, rdtscp
from ..mem.mempool import BUF_SIZE, pool_free
from ..stack.input import stack_input_inline
from ..stack.poll import stack_poll
from ..stack.state import ACT_TX, ACT_UDP, C_NOW, I_EP
from ..stack.tcp.fastpath import build_ack, fast_input, fast_send, tcp_recv
from ..stack.tcp.loops import clock_ticks_of_us, clock_us_at
from ..stack.tcp.poll import find_slot
from ..stack.tcp.segment import C_OK, tcp_decode
from ..stack.tcp.tcb import ACK_PENDING, STATE, TMPL_LEN, TX_END
from ..stack.tcp.states import ESTABLISHED
from ..wire.bytes import rd48
from ..wire.decode import I_PAYLEN, I_PAYLOAD
from .core import md_begin, md_instrument, oe_input_r, oe_timers_r, stage_stamp, stamp_tx
from ..mem.ref import by_ref, deref
from .layout import (M_CLOSE_TRANSPORT, M_SLOW_FRAMES, M_STAMP_N, M_T_PREV_POLL, M_T_STACK, M_T_TCP, M_TX_DROPPED,
                     M_SHADOW, M_TXS_LEN, M_WARM_FLEN, M_WARMS)
from .warm import tx_touch, warm_run


# The transmit side of an order: the port's state, the pool, the TCP connection tables and
# the loop's one-frame burst. Passed to flush_oe by reference (mem/ref.py), like the
# engine state: by value, each call stored ~200 words (every array's 7-9 fields) on the
# stack, twice per order (_send_orders, flush_oe). In-process A/B of that call chain (session
# 6, docs/engine.md): 100-110 -> 40 ns warm, 180-210 -> 120 ns after a 4 MB cache sweep.
TxSide = namedtuple("TxSide", "port pool hot txq rxq tmpl opts one")


@njit(cache=True, _nrt=False)
def flush_oe(TP, EP, slot, now_us):
    """Send the pending order-entry bytes on the TCP connection (``TP``: the transmit side,
    ``EP``: the engine state, both by reference, mem/ref.py). Returns 1
    when a segment went to tx_burst (the moment it was built in E.meta[M_T_TCP], 0 with
    stages off), 0 when there was nothing to send, -1 when the slow path must run (bytes
    queued behind the window, or no room: session broken).
    The idle warm-up (``warm_path``) runs this very code on its shadow state, so the
    instructions a real order executes are the ones kept warm (OpenOnload's ONLOAD_MSG_WARM).
    A shadow state (E.meta[M_SHADOW] != 0) stops before the wire: the segment's length goes
    to its E.meta[M_WARM_FLEN], its buffer back to the shadow pool; tx_burst is not called.
    (The shadow is a runtime flag, not an argument: a constant argument would make Numba
    compile a second, literal-specialised copy of this function for the warm-up.)"""
    E = deref(EP)
    n = E.meta[M_TXS_LEN]
    if n == 0:
        return 0
    E.meta[M_TXS_LEN] = 0
    if slot < 0:
        E.meta[M_TX_DROPPED] += 1
        return 0
    T = deref(TP)
    pool = T.pool
    idx = fast_send(T.hot, slot, T.txq, T.rxq.shape[1], T.tmpl, pool, E.txs, 0, n, T.opts, now_us)
    if idx >= 0:
        E.meta[M_T_TCP] = stage_stamp(E)
        if E.meta[M_SHADOW] != 0:
            E.meta[M_WARM_FLEN] = pool.data_len[idx]
            pool_free(pool, idx)
            return 1
        one = T.one
        one[0] = idx
        if tx_burst(T.port, pool, one, 1) != 1:
            pool_free(pool, idx)      # counted by the port; TCP retransmits it
        return 1
    if idx == -2:
        # the send ring is full: the byte stream would have a hole, so the session is over
        E.meta[M_TX_DROPPED] += 1
        E.meta[M_CLOSE_TRANSPORT] = 1
    return -1


@njit(cache=True, _nrt=False)
def _send_orders(TP, EP, slot, now_us, before):
    """Flush what an instrument produced and stamp it. Returns False when Python must run."""
    r = flush_oe(TP, EP, slot, now_us)
    stamp_tx(EP, before, deref(EP).meta[M_T_TCP] if r > 0 else 0)
    return r >= 0


@njit(cache=True, _nrt=False)
def warm_path(port_state, E, S, hot, slot, txq, rxq, tmpl, opts, one, now_us, i):
    """The order path on a dummy order for instrument ``i``, nothing sent, no real state
    changed (engine/warm.py): the real risk/encode code (``act_on_intents``) and the real
    segment build (``flush_oe`` in warm mode: the same compiled function, not a copy) on the
    shadow ``S``, the real state's lines read or prefetched. Returns the length of the
    shadow's segment (0: none)."""
    E.meta[M_WARMS] += 1
    n = warm_run(E, S, i, now_us * 1000)
    flen = 0
    if n > 0 and slot >= 0:
        for j in range(hot.shape[1]):
            S.hot[0, j] = hot[slot, j]
        memcpy(S.tmpl[0], 0, tmpl[slot], 0, hot[slot, TMPL_LEN])
        ring = txq[slot]
        prefetch_write(ring, hot[slot, TX_END] & (ring.shape[0] - 1))
        X = S.E
        X.meta[M_WARM_FLEN] = 0
        row = S.hot.shape[0] - 1        # the shadow's one connection row (0, not a literal: see flush_oe)
        TS = by_ref(TxSide(port_state, S.pool, S.hot, S.txq, rxq, S.tmpl, opts, one))   # the real one's types
        if flush_oe(TS, by_ref(X), row, now_us) > 0:
            flen = X.meta[M_WARM_FLEN]
    tx_touch(port_state)
    return flen


@njit(cache=True, _nrt=False)
def engine_memif_step(port_state, pool, bufs, E, net, info, hot, nslots, slot, txq, rxq, tmpl, sg, slow,
                      opts, scratch, clock, local_mac, udp_src, txb, S, warm_us, deadline):
    """Poll until the TSC passes ``deadline`` or Python is needed. ``S``: the shadow state
    that keeps the order path warm while idle, every ``warm_us`` (0: never; engine/warm.py).
    Returns (polls done, frames left in slow[:] for the TCP slow path, need_python)."""
    nslow = 0
    warm_every = clock_ticks_of_us(clock, warm_us)     # TSC ticks between warm-ups
    warm_i = 0
    need_python = False
    one = txb[txb.shape[0] - 1:]     # a one-frame burst (the loop must not allocate)
    data = pool.data
    EP = by_ref(E)      # per-packet calls take the states by reference (mem/ref.py)
    TP = by_ref(TxSide(port_state, pool, hot, txq, rxq, tmpl, opts, one))
    it = 0
    t_poll = rdtscp()
    t_warm = t_poll
    while t_poll < deadline:
        it += 1
        t_prev = t_poll
        now_us = clock_us_at(clock, t_poll)     # this poll's TSC stamp: no second read
        now = now_us * 1000
        n = rx_burst(port_state, pool, bufs, bufs.shape[0])
        for i in range(n):
            b = bufs[i]
            t_rx = rdtscp()
            off = b * pool.meta[BUF_SIZE] + pool.data_off[b]
            if rd48(data, off) == local_mac and tcp_decode(data, off, pool.data_len[b], sg) == C_OK:
                s = find_slot(hot, nslots, sg)
                if s >= 0 and fast_input(hot, s, rxq, data, sg, now_us):
                    pool_free(pool, b)
                elif nslow < slow.shape[0]:
                    slow[nslow] = b
                    nslow += 1
                else:
                    pool_free(pool, b)
                continue
            net.cfg[C_NOW] = now
            # inlined: a call passes the stack's and the pool's tuples by value (~25 ns a frame)
            act = stack_input_inline(net, pool, b, info)
            if act == ACT_UDP:
                E.meta[M_T_STACK] = stage_stamp(E)
                E.meta[M_T_PREV_POLL] = t_prev
                before = E.meta[M_STAMP_N]
                md_begin(EP, data, info[I_PAYLOAD], info[I_PAYLEN], udp_src[info[I_EP]], now, t_rx)
                pool_free(pool, b)      # the payload is done with: its buffer (cache-hot) carries the order
                if E.meta[M_TXS_LEN] > 0:
                    if not _send_orders(TP, EP, slot, now_us, before):
                        need_python = True
                for k in range(E.imap.shape[0]):
                    before = E.meta[M_STAMP_N]
                    md_instrument(EP, k, now)
                    if E.meta[M_TXS_LEN] > 0:
                        if not _send_orders(TP, EP, slot, now_us, before):
                            need_python = True
            elif act == ACT_TX:
                one[0] = b
                if tx_burst(port_state, pool, one, 1) != 1:
                    pool_free(pool, b)
            else:
                pool_free(pool, b)
        if slot >= 0:
            k = tcp_recv(hot, slot, rxq, scratch, 0, scratch.shape[0])
            if k > 0:
                oe_input_r(EP, scratch, 0, k, now)
                if flush_oe(TP, EP, slot, now_us) < 0:
                    need_python = True
            if hot[slot, ACK_PENDING] > 0 and hot[slot, STATE] == ESTABLISHED:
                a = build_ack(hot, slot, tmpl, txq, rxq.shape[1], pool, opts, 0, now_us)
                if a >= 0:
                    one[0] = a
                    if tx_burst(port_state, pool, one, 1) != 1:
                        pool_free(pool, a)
        if (it & 1023) == 0:
            oe_timers_r(EP, now)
            if flush_oe(TP, EP, slot, now_us) < 0:
                need_python = True
            net.cfg[C_NOW] = now
            m = stack_poll(net, pool, txb, 0, txb.shape[0] - 1)
            if m > 0:
                sent = tx_burst(port_state, pool, txb, m)
                for j in range(sent, m):
                    pool_free(pool, txb[j])
        if nslow > 0 or need_python or E.meta[M_CLOSE_TRANSPORT] != 0:
            break
        if n == 0:
            if warm_every > 0 and t_poll - t_warm >= warm_every:
                warm_path(port_state, E, S, hot, slot, txq, rxq, tmpl, opts, one, now_us, warm_i)
                warm_i = warm_i + 1 if warm_i + 1 < E.imap.shape[0] else 0
                t_warm = rdtscp()
            else:
                cpu_pause()
        t_poll = rdtscp()
    E.meta[M_SLOW_FRAMES] += nslow
    return it, nslow, need_python

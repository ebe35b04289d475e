"""The run-to-completion loop over a frame port (memif, AF_XDP, AF_PACKET, PCI): one
bounded Numba call does, per received frame,

    rx_burst -> TCP fast path (order entry)  | stack_input -> UDP -> feed -> book
             -> strategy -> risk -> encode -> TCP fast_send -> tx_burst

and returns to Python only when the TCP slow path has frames to handle (handshake,
retransmission, out-of-order), when the order session must be reconnected, or after
``iters`` polls (the control plane: memif link, TCP timers, the live view).
Timestamps: rdtscp when the frame is taken from the receive ring (ST_RX) and after the
order frame was handed to tx_burst (ST_TX): tick-to-trade, wire-to-wire inside this
process. Time for timers comes from the TSC clock of the TCP stack (``clock``).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..drivers.port import rx_burst, tx_burst
from ..mem.atomics import cpu_pause, rdtscp
from ..mem.mempool import BUF_SIZE, pool_free
from ..stack.input import stack_input
from ..stack.poll import stack_poll
from ..stack.state import ACT_TX, ACT_UDP, C_NOW, I_EP
from ..stack.tcp.fastpath import build_ack, fast_input, fast_send, tcp_recv
from ..stack.tcp.loops import clock_us
from ..stack.tcp.poll import find_slot
from ..stack.tcp.segment import C_OK, tcp_decode
from ..stack.tcp.tcb import ACK_PENDING, STATE
from ..stack.tcp.states import ESTABLISHED
from ..wire.bytes import rd48
from ..wire.decode import I_PAYLEN, I_PAYLOAD
from .core import md_packet, oe_input, oe_timers, stamp_tx
from .layout import M_CLOSE_TRANSPORT, M_SLOW_FRAMES, M_STAMP_N, M_TX_DROPPED, M_TXS_LEN


@njit(cache=True)
def flush_oe(port_state, pool, E, hot, slot, txq, rxq, tmpl, opts, now_us, one):
    """Send the pending order-entry bytes on the TCP connection. Returns True when the
    slow path must run (bytes queued behind the window, or no room: session broken)."""
    n = E.meta[M_TXS_LEN]
    if n == 0:
        return False
    E.meta[M_TXS_LEN] = 0
    if slot < 0:
        E.meta[M_TX_DROPPED] += 1
        return False
    idx = fast_send(hot, slot, txq, rxq.shape[1], tmpl, pool, E.txs, 0, n, opts, now_us)
    if idx >= 0:
        one[0] = idx
        if tx_burst(port_state, pool, one, 1) != 1:
            pool_free(pool, idx)      # counted by the port; TCP retransmits it
        return False
    if idx == -2:
        # the send ring is full: the byte stream would have a hole, so the session is over
        E.meta[M_TX_DROPPED] += 1
        E.meta[M_CLOSE_TRANSPORT] = 1
    return True


@njit(cache=True)
def engine_memif_step(port_state, pool, bufs, E, net, info, hot, nslots, slot, txq, rxq, tmpl, sg, slow,
                      opts, scratch, clock, local_mac, udp_src, txb, iters):
    """Returns (polls done, frames left in slow[:] for the TCP slow path, need_python)."""
    nslow = 0
    need_python = False
    one = np.empty(1, np.int32)
    data = pool.data
    it = 0
    while it < iters:
        it += 1
        n = rx_burst(port_state, pool, bufs, bufs.shape[0])
        now_us = clock_us(clock)
        now = now_us * 1000
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
            act = stack_input(net, pool, b, info)
            if act == ACT_UDP:
                before = E.meta[M_STAMP_N]
                md_packet(E, data, info[I_PAYLOAD], info[I_PAYLEN], udp_src[info[I_EP]], now, t_rx)
                pool_free(pool, b)
                if E.meta[M_TXS_LEN] > 0:
                    if flush_oe(port_state, pool, E, hot, slot, txq, rxq, tmpl, opts, now_us, one):
                        need_python = True
                    stamp_tx(E, before)
            elif act == ACT_TX:
                one[0] = b
                if tx_burst(port_state, pool, one, 1) != 1:
                    pool_free(pool, b)
            else:
                pool_free(pool, b)
        if slot >= 0:
            k = tcp_recv(hot, slot, rxq, scratch, 0, scratch.shape[0])
            if k > 0:
                oe_input(E, scratch, 0, k, now)
                if flush_oe(port_state, pool, E, hot, slot, txq, rxq, tmpl, opts, now_us, one):
                    need_python = True
            if hot[slot, ACK_PENDING] > 0 and hot[slot, STATE] == ESTABLISHED:
                a = build_ack(hot, slot, tmpl, txq, rxq.shape[1], pool, opts, 0, now_us)
                if a >= 0:
                    one[0] = a
                    if tx_burst(port_state, pool, one, 1) != 1:
                        pool_free(pool, a)
        if (it & 1023) == 0:
            oe_timers(E, now)
            if flush_oe(port_state, pool, E, hot, slot, txq, rxq, tmpl, opts, now_us, one):
                need_python = True
            net.cfg[C_NOW] = now
            m = stack_poll(net, pool, txb, 0, txb.shape[0])
            if m > 0:
                sent = tx_burst(port_state, pool, txb, m)
                for j in range(sent, m):
                    pool_free(pool, txb[j])
        if nslow > 0 or need_python or E.meta[M_CLOSE_TRANSPORT] != 0:
            break
        if n == 0:
            cpu_pause()
    E.meta[M_SLOW_FRAMES] += nslow
    return it, nslow, need_python

"""The same engine core over kernel sockets (``udp:`` and ``tcp:`` ports): the baseline
that ``tickwire demo`` and ``tickwire bench tick-to-trade`` compare against. Timestamps
are taken at the same points as in loop_memif: when a datagram has been taken from the
receive path (rx_burst returned it) and after the order bytes were handed to the
transmit path (tx_burst returned)."""

from __future__ import annotations

from numba import njit

from ..drivers.port import rx_burst, tx_burst
from ..mem.atomics import cpu_pause, memcpy, rdtscp
from ..mem.mempool import buf_start, pool_alloc, pool_free
from ..stack.tcp.loops import clock_us
from .core import md_packet, oe_input, oe_timers, stamp_tx
from .layout import M_CLOSE_TRANSPORT, M_STAMP_N, M_T_PREV_POLL, M_T_STACK, M_TX_DROPPED, M_TXS_LEN


@njit(cache=True, _nrt=False)
def _send_oe(tcp_st, pool, E, one):
    n = E.meta[M_TXS_LEN]
    if n == 0:
        return
    E.meta[M_TXS_LEN] = 0
    b = pool_alloc(pool)
    if b < 0:
        E.meta[M_TX_DROPPED] += 1
        E.meta[M_CLOSE_TRANSPORT] = 1
        return
    memcpy(pool.data, buf_start(pool, b), E.txs, 0, n)
    pool.data_len[b] = n
    one[0] = b
    for _ in range(100000):
        if tx_burst(tcp_st, pool, one, 1) == 1:
            return
    pool_free(pool, b)          # the kernel would not take it: the stream is broken
    E.meta[M_TX_DROPPED] += 1
    E.meta[M_CLOSE_TRANSPORT] = 1


@njit(cache=True, _nrt=False)
def _md_burst(port_st, src, pool, bufs, E, tcp_st, now, one, t_prev):
    n = rx_burst(port_st, pool, bufs, bufs.shape[0])
    for i in range(n):
        b = bufs[i]
        t_rx = rdtscp()
        E.meta[M_T_STACK] = t_rx        # the kernel did the stack
        E.meta[M_T_PREV_POLL] = t_prev
        before = E.meta[M_STAMP_N]
        md_packet(E, pool.data, buf_start(pool, b), pool.data_len[b], src, now, t_rx)
        pool_free(pool, b)
        if E.meta[M_TXS_LEN] > 0:
            _send_oe(tcp_st, pool, E, one)
            stamp_tx(E, before, 0)
    return n


@njit(cache=True, _nrt=False)
def engine_socket_step(udp_a, udp_b, udp_s, tcp_st, pool, bufs, E, clock, deadline):
    """Poll the three UDP feeds and the TCP session until the TSC passes ``deadline``."""
    one = bufs[bufs.shape[0] - 1:]   # a one-frame burst (the loop must not allocate)
    rxb = bufs[:bufs.shape[0] - 1]
    it = 0
    t_poll = rdtscp()
    while t_poll < deadline:
        it += 1
        t_prev = t_poll
        now = clock_us(clock) * 1000
        n = _md_burst(udp_a, 0, pool, rxb, E, tcp_st, now, one, t_prev)
        n += _md_burst(udp_b, 1, pool, rxb, E, tcp_st, now, one, t_prev)
        n += _md_burst(udp_s, 2, pool, rxb, E, tcp_st, now, one, t_prev)
        k = rx_burst(tcp_st, pool, rxb, rxb.shape[0])
        for i in range(k):
            b = rxb[i]
            oe_input(E, pool.data, buf_start(pool, b), pool.data_len[b], now)
            pool_free(pool, b)
        if k > 0:
            _send_oe(tcp_st, pool, E, one)
        if (it & 1023) == 0:
            oe_timers(E, now)
            _send_oe(tcp_st, pool, E, one)
        if E.meta[M_CLOSE_TRANSPORT] != 0:
            break
        if n + k == 0:
            cpu_pause()
        t_poll = rdtscp()
    return it

"""The same engine core over kernel sockets (``udp:`` and ``tcp:`` ports): the baseline
that ``tickwire demo`` and ``tickwire bench tick-to-trade`` compare against.

Tick-to-trade of this path (wire to wire, the kernel being this path's "wire" handling):
from the moment the kernel received the market-data datagram (its software receive
timestamp, engine/kernel_stamps.py) to the return of ``send`` on the order-entry socket,
both CLOCK_REALTIME (ST_KRX, ST_KTX). The TSC stamps are kept at the same points as in
loop_memif as well: when ``recvfrom`` returned the datagram (ST_RX) and after the order
bytes were handed to ``send`` (ST_TX), so the kernel's receive side (IP/UDP, socket queue,
the receive syscall) shows as its own stage."""

from __future__ import annotations

from numba import njit

from ..drivers.port import rx_burst, tx_burst
from ..mem.atomics import cpu_pause, memcpy, rdtscp
from ..mem.mempool import BUF_SIZE, buf_start, pool_alloc, pool_free
from ..stack.tcp.loops import clock_ticks_of_us, clock_us
from .core import md_begin, md_instrument, oe_input_r, oe_timers_r, stamp_tx
from .kernel_stamps import last_rx_stamp_ns, realtime_ns
from ..mem.ref import by_ref, deref
from .layout import (M_CLOSE_TRANSPORT, M_KRX_MISSING, M_STAGES, M_STAMP_N, M_T_PREV_POLL, M_T_STACK, M_TX_DROPPED, M_TXS_LEN,
                     M_WARMS, ST_KRX, ST_KTX)
from .warm import warm_run


@njit(cache=True, _nrt=False)
def _send_oe(tcp_st, pool, EP, one):
    """The queued order-entry bytes (E.txs) to the kernel TCP socket, one pool buffer at a
    time: a venue can make them longer than a buffer (a RetransmitRequest for every gap it
    opens, core._txs_room), and a buffer holds BUF_SIZE - data_off bytes. A buffer the
    kernel will not take ends the stream (never a cut or reordered byte stream)."""
    E = deref(EP)
    n = E.meta[M_TXS_LEN]
    if n == 0:
        return
    E.meta[M_TXS_LEN] = 0
    off = 0
    while off < n:
        b = pool_alloc(pool)
        if b < 0:
            E.meta[M_TX_DROPPED] += 1
            E.meta[M_CLOSE_TRANSPORT] = 1
            return
        k = min(n - off, pool.meta[BUF_SIZE] - pool.data_off[b])
        memcpy(pool.data, buf_start(pool, b), E.txs, off, k)
        pool.data_len[b] = k
        one[0] = b
        taken = False
        for _ in range(100000):
            if tx_burst(tcp_st, pool, one, 1) == 1:
                taken = True
                break
        if not taken:
            pool_free(pool, b)          # the kernel would not take it: the stream is broken
            E.meta[M_TX_DROPPED] += 1
            E.meta[M_CLOSE_TRANSPORT] = 1
            return
        off += k


@njit(cache=True, _nrt=False)
def _kernel_stamps(EP, before, fd, ts):
    """The kernel path's own start and end (layout.ST_KRX/ST_KTX, CLOCK_REALTIME): called at
    once after stamp_tx, so KTX is ~ the ST_TX moment; the receive stamp is read afterwards
    (an ioctl, outside the measured span). A datagram without a kernel stamp (the ioctl then
    answers with the current time) is counted and keeps no kernel stamps."""
    E = deref(EP)
    if E.meta[M_STAMP_N] <= before:
        return
    k = (E.meta[M_STAMP_N] - 1) % E.stamps.shape[0]
    end = realtime_ns(ts)
    krx = last_rx_stamp_ns(fd, ts)
    if krx <= 0 or krx > end:
        E.meta[M_KRX_MISSING] += 1
        return
    E.stamps[k, ST_KRX] = krx
    E.stamps[k, ST_KTX] = end


@njit(cache=True, _nrt=False)
def _send_stamped(tcp_st, pool, EP, one, before, fd, ts):
    if deref(EP).meta[M_TXS_LEN] > 0:
        _send_oe(tcp_st, pool, EP, one)
        stamp_tx(EP, before, 0)
        _kernel_stamps(EP, before, fd, ts)


@njit(cache=True, _nrt=False)
def _md_burst(port_st, src, fd, pool, bufs, EP, tcp_st, now, one, t_prev, ts):
    """Every datagram waiting on one feed socket, each handled (and its orders sent) before
    the next is received: the kernel stamp of a datagram is the socket's *last* one.
    ``EP``: the engine state by reference (mem/ref.py), as on the memif path."""
    E = deref(EP)
    got = 0
    while got < bufs.shape[0]:
        if rx_burst(port_st, pool, bufs, 1) == 0:
            break
        got += 1
        b = bufs[0]
        t_rx = rdtscp()
        E.meta[M_T_STACK] = t_rx if E.meta[M_STAGES] != 0 else 0   # the kernel did the stack
        E.meta[M_T_PREV_POLL] = t_prev
        # as on the memif path, an order leaves as soon as the instrument that produced it is done
        before = E.meta[M_STAMP_N]
        md_begin(EP, pool.data, buf_start(pool, b), pool.data_len[b], src, now, t_rx)
        pool_free(pool, b)
        _send_stamped(tcp_st, pool, EP, one, before, fd, ts)
        for i in range(E.imap.shape[0]):
            before = E.meta[M_STAMP_N]
            md_instrument(EP, i, now)
            _send_stamped(tcp_st, pool, EP, one, before, fd, ts)
    return got


@njit(cache=True, _nrt=False)
def engine_socket_step(udp_a, udp_b, udp_s, tcp_st, pool, bufs, E, clock, fds, ts, S, warm_us, deadline):
    """Poll the three UDP feeds and the TCP session until the TSC passes ``deadline``.
    ``fds``: the feed sockets' descriptors (kernel receive stamps); ``ts``: int64[2] scratch.
    While idle, the order path is kept warm as on the memif path, every ``warm_us`` with the
    shadow ``S`` (engine/warm.py: risk and encoding; a kernel socket has no send path to
    warm without sending)."""
    one = bufs[bufs.shape[0] - 1:]   # a one-frame burst (the loop must not allocate)
    rxb = bufs[:bufs.shape[0] - 1]
    warm_every = clock_ticks_of_us(clock, warm_us)     # TSC ticks between warm-ups
    warm_i = 0
    EP = by_ref(E)
    it = 0
    t_poll = rdtscp()
    t_warm = t_poll
    while t_poll < deadline:
        it += 1
        t_prev = t_poll
        now = clock_us(clock) * 1000
        n = _md_burst(udp_a, 0, fds[0], pool, rxb, EP, tcp_st, now, one, t_prev, ts)
        n += _md_burst(udp_b, 1, fds[1], pool, rxb, EP, tcp_st, now, one, t_prev, ts)
        n += _md_burst(udp_s, 2, fds[2], pool, rxb, EP, tcp_st, now, one, t_prev, ts)
        k = rx_burst(tcp_st, pool, rxb, rxb.shape[0])
        for i in range(k):
            b = rxb[i]
            oe_input_r(EP, pool.data, buf_start(pool, b), pool.data_len[b], now)
            pool_free(pool, b)
        if k > 0:
            _send_oe(tcp_st, pool, EP, one)
        if (it & 1023) == 0:
            oe_timers_r(EP, now)
            _send_oe(tcp_st, pool, EP, one)
        if E.meta[M_CLOSE_TRANSPORT] != 0:
            break
        if n + k == 0:
            if warm_every > 0 and t_poll - t_warm >= warm_every:
                E.meta[M_WARMS] += 1
                warm_run(E, S, warm_i, now)
                warm_i = warm_i + 1 if warm_i + 1 < E.imap.shape[0] else 0
                t_warm = rdtscp()
            else:
                cpu_pause()
        t_poll = rdtscp()
    return it

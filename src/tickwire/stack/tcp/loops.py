"""Compiled loops over established connections: an echo server step and a ping-pong
client, both entirely inside Numba (rx_burst -> fast_input -> tcp_recv -> fast_send ->
tx_burst). Segments the fast path does not take are handed back to Python in
``slow`` (the caller runs the slow path on them and frees them), so these loops never
need the interpreter per packet, yet never lose a segment either.

Time inside the loops comes from the TSC: ``clock = (tsc0, us0, us_per_tsc_q32)``
turns rdtscp into the stack's microsecond clock (timestamps, RTO deadlines).
"""

from __future__ import annotations

import time

import numpy as np
from numba import njit

from ...drivers.port import rx_burst, tx_burst
from ...mem.atomics import cpu_pause, rdtscp
from ...mem.mempool import BUF_SIZE, pool_free
from ...wire.bytes import rd48
from .fastpath import build_ack, fast_input, fast_send, tcp_recv
from .poll import find_slot, slow_work_due
from .segment import C_OK, tcp_decode
from .states import CLOSE_WAIT, ESTABLISHED
from .tcb import ACK_PENDING, SND_MSS, STATE, TX_END, TX_UNA


def tsc_clock(now_us: int, probe_s: float = 0.02) -> np.ndarray:
    """Calibrate rdtscp against the monotonic clock: [tsc0, us0, us_per_tsc * 2**32]."""
    c0, t0 = _tsc(), time.monotonic_ns()
    time.sleep(probe_s)
    c1, t1 = _tsc(), time.monotonic_ns()
    q = int(((t1 - t0) / 1000) / max(c1 - c0, 1) * (1 << 32))
    return np.array([c1, t1 // 1000, q], np.int64)


@njit(cache=True)
def _tsc():
    return rdtscp()


@njit(cache=True, inline="always")
def clock_us_at(clock, tsc):
    """The calibrated clock (microseconds) at the TSC reading ``tsc``."""
    return clock[1] + (((tsc - clock[0]) * clock[2]) >> 32)


@njit(cache=True, inline="always")
def clock_ticks_of_us(clock, us):
    """TSC ticks in ``us`` microseconds (clock[2] = microseconds per tick << 32); 0 when
    the clock is not calibrated or ``us`` <= 0 (callers read 0 as "never")."""
    return (us << 32) // clock[2] if clock[2] > 0 and us > 0 else 0


@njit(cache=True, inline="always")
def clock_us(clock):
    return clock_us_at(clock, rdtscp())


@njit(cache=True)
def _rx_one_burst(port_state, pool, bufs, burst, hot, nslots, rxq, sg, slow, nslow, local_mac, clock):
    """Receive a burst; fast-path what we can, append the rest to ``slow``. Returns (n, nslow)."""
    n = rx_burst(port_state, pool, bufs, burst)
    now = clock_us(clock)
    for i in range(n):
        b = bufs[i]
        off = b * pool.meta[BUF_SIZE] + pool.data_off[b]
        taken = False
        if rd48(pool.data, off) == local_mac and tcp_decode(pool.data, off, pool.data_len[b], sg) == C_OK:
            s = find_slot(hot, nslots, sg)
            if s >= 0 and fast_input(hot, s, rxq, pool.data, sg, now):
                taken = True
        if taken:
            pool_free(pool, b)
        elif nslow < slow.shape[0]:
            slow[nslow] = b
            nslow += 1
        else:
            pool_free(pool, b)       # slow queue full: a loss, TCP recovers it
    return n, nslow


@njit(cache=True)
def pingpong(port_state, pool, bufs, hot, nslots, slot, txq, rxq, tmpl, sg, slow, opts, msg, size,
             n, rtt_tsc, spin_limit, local_mac, clock, scratch):
    """Send ``size`` bytes, wait until ``size`` bytes come back, ``n`` times; rtt_tsc[i] = TSC
    ticks per round trip. Returns (completed, nslow, pending): stops early when the fast
    path cannot send (window/queue), when a round trip exceeds ``spin_limit`` polls, or
    when the slow queue fills; ``pending`` is then the number of echo bytes of the
    interrupted round still to come (the caller drains them)."""
    nslow = 0
    one = np.empty(1, np.int32)
    for i in range(n):
        t0 = rdtscp()
        idx = fast_send(hot, slot, txq, rxq.shape[1], tmpl, pool, msg, 0, size, opts, clock_us(clock))
        if idx == -2:
            return i, nslow, 0
        if idx == -1:
            return i, nslow, size         # queued: the slow path sends it
        one[0] = idx
        if tx_burst(port_state, pool, one, 1) != 1:
            pool_free(pool, idx)      # counted by the port; retransmission covers it
        got = 0
        spins = 0
        while got < size:
            k, nslow = _rx_one_burst(port_state, pool, bufs, bufs.shape[0], hot, nslots, rxq, sg, slow,
                                     nslow, local_mac, clock)
            got += tcp_recv(hot, slot, rxq, scratch, got, size - got)
            if got >= size:
                break
            if nslow > slow.shape[0] - 4 or spins > spin_limit:
                return i, nslow, size - got
            spins += 1
            if (spins & 1023) == 0 and slow_work_due(hot, nslots, clock_us(clock)):
                return i, nslow, size - got          # e.g. our message was lost: Python retransmits
            if k == 0:
                cpu_pause()
        rtt_tsc[i] = rdtscp() - t0
    return n, nslow, 0


@njit(cache=True)
def echo_step(port_state, pool, bufs, hot, nslots, txq, rxq, tmpl, sg, slow, opts, scratch, iters, local_mac, clock):
    """Up to ``iters`` polls of an echo server: every byte received on an established
    connection is sent straight back. Returns (echoed_bytes, nslow, need_python): stops
    early when slow-path work is waiting or queued output needs the slow path."""
    echoed = 0
    nslow = 0
    need_python = False
    one = np.empty(1, np.int32)
    rxcap = rxq.shape[1]
    txcap = txq.shape[1]
    for _ in range(iters):
        k, nslow = _rx_one_burst(port_state, pool, bufs, bufs.shape[0], hot, nslots, rxq, sg, slow, nslow,
                                 local_mac, clock)
        for s in range(nslots):
            st = hot[s, STATE]
            if st != ESTABLISHED and st != CLOSE_WAIT:
                continue
            while True:
                # read only what the send ring can take back, so no byte is ever dropped
                room = txcap - (hot[s, TX_END] - hot[s, TX_UNA])
                m = tcp_recv(hot, s, rxq, scratch, 0, min(scratch.shape[0], room, hot[s, SND_MSS]))
                if m <= 0:
                    break
                idx = fast_send(hot, s, txq, rxcap, tmpl, pool, scratch, 0, m, opts, clock_us(clock))
                echoed += m
                if idx >= 0:
                    one[0] = idx
                    if tx_burst(port_state, pool, one, 1) != 1:
                        pool_free(pool, idx)
                else:
                    need_python = True        # queued behind the window: Python's output() sends it
                    break
            if hot[s, ACK_PENDING] > 0 and st == ESTABLISHED:
                a = build_ack(hot, s, tmpl, txq, rxcap, pool, opts, 0, clock_us(clock))
                if a >= 0:
                    one[0] = a
                    if tx_burst(port_state, pool, one, 1) != 1:
                        pool_free(pool, a)
        if nslow > 0 or need_python or slow_work_due(hot, nslots, clock_us(clock)):
            break
        if k == 0:
            cpu_pause()
    return echoed, nslow, need_python

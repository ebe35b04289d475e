"""Reflect every frame with Ethernet source and destination swapped (testpmd's macswap)."""

from __future__ import annotations

import time

import numpy as np

from ..drivers.macswap import swap_macs
from ..drivers.port import reflect, rx_burst, tx_burst
from ..mem.atomics import cpu_pause
from ..mem.hotpath import hot
from ..mem.mempool import buf_start, pool_free
from .slices import SLICE_POLLS, StopFlag, wait_for_link

# stats[] slots
ECHOED, DROPPED, SHORT = range(3)


@hot
def echo_slice(state, pool, bufs, burst, polls, stats):
    """Up to ``polls`` rx polls; every frame goes back out with MACs swapped, through the
    port's one-copy ``reflect`` where it has one, else (and for what it leaves: chained,
    short frames) through rx_burst/tx_burst. Frames shorter than an Ethernet header are
    dropped (SHORT); frames the TX ring cannot take right now are dropped (DROPPED), as
    testpmd does."""
    for _ in range(polls):
        r = reflect(state, burst)
        if r > 0:
            stats[ECHOED] += r
            continue
        if r == 0:
            # Idle: pause before polling again (as the bench's memif-shaped ping-pong does).
            # Why: memif's poll prefetches the peer's next descriptor and frame lines, and a
            # poll that lands while the peer writes them takes a line back mid-write (one more
            # transfer on the round trip). Echo round trip, far placement (docs/memif.md,
            # session 7): -10..-90 ns in-pair A/B, -10..-20 ns old vs new tree in the bench loop.
            cpu_pause()
            continue
        stats[ECHOED] += -1 - r
        n = rx_burst(state, pool, bufs, burst)
        if n == 0:
            cpu_pause()
            continue
        k = 0
        for i in range(n):
            idx = bufs[i]
            if pool.data_len[idx] < 14:
                pool_free(pool, idx)
                stats[SHORT] += 1
                continue
            swap_macs(pool.data, buf_start(pool, idx))
            bufs[k] = idx
            k += 1
        sent = tx_burst(state, pool, bufs, k)
        for i in range(sent, k):
            pool_free(pool, bufs[i])
        stats[ECHOED] += sent
        stats[DROPPED] += k - sent
    return stats[ECHOED]


def run_echo(port, *, count: int = 0, duration: float = 0.0, burst: int = 32,
             link_timeout: float = 10.0, on_slice=None) -> dict:
    """Echo until ``count`` frames (0 = no limit), ``duration`` seconds (0 = no limit) or a signal."""
    stop = StopFlag()
    stats = np.zeros(3, np.int64)
    bufs = np.empty(burst, np.int32)
    try:
        # compiled before the link comes up (zero polls: nothing moves), not after: a peer starts
        # at link-up, and a cold compile of the inlined data path takes seconds
        echo_slice(port.state, port.pool.arrays, bufs, burst, 0, stats)
        wait_for_link(port, link_timeout)
        t_end = time.monotonic() + duration if duration else float("inf")
        while not stop.stopped and time.monotonic() < t_end and not (count and stats[ECHOED] >= count):
            echo_slice(port.state, port.pool.arrays, bufs, burst, SLICE_POLLS, stats)
            port.poll()
            if on_slice:
                on_slice(stats)
    finally:
        stop.restore()
    return {"echoed": int(stats[ECHOED]), "dropped_tx_full": int(stats[DROPPED]),
            "dropped_short": int(stats[SHORT]), **port.stats()}

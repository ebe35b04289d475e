"""Receive frames from a port into a nanosecond pcap file."""

from __future__ import annotations

import time

import numpy as np

from ..drivers.port import rx_burst
from ..mem.hotpath import hot
from ..mem.atomics import rdtscp
from ..tsc import TscClock
from ..wire.pcapfile import PcapWriter
from .slices import SLICE_POLLS, StopFlag, wait_for_link


@hot
def capture_slice(state, pool, held, stamps, limit, burst, polls):
    """Receive into ``held`` (we keep the buffers) until ``limit`` frames or ``polls`` polls.
    Each frame is stamped with the TSC of the poll that returned it."""
    got = 0
    for _ in range(polls):
        if got >= limit:
            break
        n = rx_burst(state, pool, held[got:], min(burst, limit - got))
        if n:
            t = rdtscp()
            for i in range(n):
                stamps[got + i] = t
            got += n
    return got


def run_capture(port, out_path: str, *, count: int, duration: float = 0.0, burst: int = 32,
                link_timeout: float = 10.0) -> dict:
    clock = TscClock()
    stop = StopFlag()
    held = np.empty(burst * 8, np.int32)
    stamps = np.empty(len(held), np.int64)
    written = 0
    pool = port.pool
    try:
        # compiled before the link comes up (zero polls: nothing moves), not after: a peer starts
        # at link-up, and a cold compile of the inlined data path takes seconds
        capture_slice(port.state, pool.arrays, held, stamps, len(held), burst, 0)
        wait_for_link(port, link_timeout)
        t_end = time.monotonic() + duration if duration else float("inf")
        with PcapWriter(out_path) as pcap:
            while not stop.stopped and time.monotonic() < t_end and (not count or written < count):
                want = len(held) if not count else min(len(held), count - written)
                n = capture_slice(port.state, pool.arrays, held, stamps, want, burst, SLICE_POLLS)
                for i in range(n):
                    pcap.write(pool.read(int(held[i])), clock.to_wall_ns(int(stamps[i])))
                pool.free_burst(held[:n])
                written += n
                port.poll()
    finally:
        stop.restore()
    return {"captured": written, "file": out_path, **port.stats()}

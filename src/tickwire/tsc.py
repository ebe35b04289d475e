"""Time-stamp counter <-> nanoseconds.

Hot loops stamp events with ``rdtscp`` (tickwire.mem.atomics; ~10 ns granularity
here, notes/numba-hot-path.md §9) and never call the clock. Python converts
afterwards with a calibration taken against CLOCK_MONOTONIC/REALTIME.
"""

from __future__ import annotations

import time

from numba import njit

from .mem.atomics import rdtscp


@njit(cache=True)
def read_tsc():
    return rdtscp()


class TscClock:
    """Linear map TSC -> ns, calibrated over ``seconds`` (longer = more precise)."""

    def __init__(self, seconds: float = 0.05):
        read_tsc()  # compile outside the measured window
        t0, c0 = time.time_ns(), read_tsc()
        m0 = time.perf_counter_ns()
        while time.perf_counter_ns() - m0 < seconds * 1e9:
            pass
        t1, c1 = time.time_ns(), read_tsc()
        self.hz = (c1 - c0) * 1e9 / max(1, t1 - t0)
        self._c0, self._t0 = c1, t1

    def cycles_to_ns(self, cycles):
        return cycles * (1e9 / self.hz)

    def to_wall_ns(self, tsc: int) -> int:
        """Wall-clock ns (Unix epoch) of a TSC reading taken in this process."""
        return self._t0 + int((tsc - self._c0) * 1e9 / self.hz)

    def ns_to_cycles(self, ns: float) -> int:
        return int(ns * self.hz / 1e9)

"""Retransmission timeout estimator, RFC 6298.

All times are integer microseconds (no floats in the stack's state). The
constants follow RFC 6298 §2 (alpha = 1/8, beta = 1/4, K = 4, G = clock
granularity) except MIN_RTO: RFC 6298 §2.4 says 1 s "SHOULD", and notes that
smaller values are in wide use; Linux uses 200 ms, and so do we by default
(configurable) because an order-entry link on a LAN sees sub-millisecond RTTs.
"""

from __future__ import annotations

INITIAL_RTO_US = 1_000_000     # RFC 6298 §2.1: 1 s before any sample
MIN_RTO_US = 200_000
MAX_RTO_US = 60_000_000        # RFC 6298 §2.5: a maximum of at least 60 s may be placed
GRANULARITY_US = 1_000


class RtoEstimator:
    __slots__ = ("srtt", "rttvar", "rto", "backoffs", "min_rto", "max_rto", "samples")

    def __init__(self, min_rto: int = MIN_RTO_US, max_rto: int = MAX_RTO_US, initial: int = INITIAL_RTO_US):
        self.srtt = 0          # 0 = no sample yet
        self.rttvar = 0
        self.min_rto, self.max_rto = min_rto, max_rto
        self.rto = max(min_rto, min(initial, max_rto))
        self.backoffs = 0
        self.samples = 0

    def sample(self, r: int) -> None:
        """Feed one RTT measurement R (µs). Callers obey Karn's rule (§3): never
        sample a retransmitted segment unless timestamps disambiguate it."""
        r = max(r, 1)
        if self.samples == 0:                      # §2.2
            self.srtt = r
            self.rttvar = r // 2
        else:                                      # §2.3: beta = 1/4, alpha = 1/8
            self.rttvar = (3 * self.rttvar + abs(self.srtt - r)) // 4
            self.srtt = (7 * self.srtt + r) // 8
        self.samples += 1
        self.backoffs = 0
        self.rto = max(self.min_rto, min(self.srtt + max(GRANULARITY_US, 4 * self.rttvar), self.max_rto))

    def back_off(self) -> None:
        """§5.5: the timer expired, double RTO (bounded by max_rto)."""
        self.backoffs += 1
        self.rto = min(self.rto * 2, self.max_rto)

"""Named counters kept in one int64 array, so Numba code bumps them by index.

Every port starts with the COMMON names; a driver appends its own drop causes.
"""

from __future__ import annotations

import numpy as np
from numba.extending import register_jitable

from ..mem.mempool import BAD_SPAN, NOT_OWNED, owned_len, pool_free

COMMON = ("rx_packets", "rx_bytes", "tx_packets", "tx_bytes",
          "rx_nobuf",        # a frame was waiting but the mempool was empty (left in the ring)
          "tx_ring_full",    # tx_burst returned fewer than asked because the ring was full
          "tx_too_long",     # frame longer than the port can send: dropped, buffer freed
          "rx_too_long")     # frame longer than a pool buffer: dropped
RX_PACKETS, RX_BYTES, TX_PACKETS, TX_BYTES, RX_NOBUF, TX_RING_FULL, TX_TOO_LONG, RX_TOO_LONG = range(len(COMMON))


class Counters:
    def __init__(self, extra: tuple[str, ...] = ()):
        self.names = COMMON + tuple(extra)
        self.array = np.zeros(len(self.names), np.int64)

    def index(self, name: str) -> int:
        return self.names.index(name)

    def as_dict(self) -> dict[str, int]:
        return {n: int(v) for n, v in zip(self.names, self.array)}

    def bump(self, name: str, by: int = 1) -> None:
        self.array[self.names.index(name)] += by


@register_jitable
def tx_take(pool, counters, b, c_bad_buf):
    """Every tx_burst's first step for the caller's buffer ``b``: its frame length, or -1
    when it cannot be sent - not an in-use buffer of the pool (counted under the driver's
    ``c_bad_buf``, left alone: not ours to free) or data outside its buffer (TX_TOO_LONG,
    freed: it was handed to us)."""
    length = owned_len(pool, b)
    if length == NOT_OWNED:
        counters[c_bad_buf] += 1
    elif length == BAD_SPAN:
        counters[TX_TOO_LONG] += 1
        pool_free(pool, b)
    return length if length >= 0 else np.int64(-1)

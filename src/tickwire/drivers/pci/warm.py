"""Compile every PCI hot-path kernel ahead of use, with the exact argument types the
drivers pass at run time, so a cached build is loaded instead of compiled.

Why: in a TCG guest a Numba compile is ~18x slower than on the host (notes
qemu-guest §4). The QEMU tests run this on the host with the guest's NUMBA_*
environment (a shared NUMBA_CACHE_DIR and NUMBA_CPU_NAME=generic), then the
guest loads the result. Usage: ``python -m tickwire.drivers.pci.warm``.
"""

from __future__ import annotations

import numpy as np

from ...mem.mempool import Mempool
from ..counters import Counters
from ..port import rx_burst, tx_burst
from . import e1000e
from .mmio import rd32, wr32


def _fake_bar(size=0x20000):
    return np.zeros(size, np.uint8)


def warm() -> None:
    pool = Mempool(64, 2048, 128)
    pool.free_burst(pool.alloc_burst(2))      # what open()/close() call from Python
    pool.check()
    bufs = np.zeros(32, np.int32)
    bar = _fake_bar()
    rd32(bar, 0)
    wr32(bar, 0, 0)
    q = np.zeros(e1000e.Q_LEN, np.int64)
    st = e1000e.E1000eState(bar, np.zeros(4096, np.uint8), np.zeros(1, np.uint64), q,
                            np.zeros(1, np.int32), np.zeros(1, np.int32),
                            Counters(e1000e.EXTRA_COUNTERS).array)
    # q[POOL_ADDR] does not match the pool: both calls return at once, after compiling.
    rx_burst(st, pool.arrays, bufs, 32)
    tx_burst(st, pool.arrays, bufs, 0)
    try:
        from . import virtio
    except ImportError:
        return
    virtio.warm(pool, bufs)


if __name__ == "__main__":
    warm()

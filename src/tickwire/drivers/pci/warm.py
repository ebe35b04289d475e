"""Compile every PCI hot-path kernel ahead of use, with the exact argument types the
drivers pass at run time, so a cached build is loaded instead of compiled.

Why: in a TCG guest a Numba compile is ~18x slower than on the host (notes
qemu-guest §4). The QEMU tests run this on the host with the guest's NUMBA_*
environment (a shared NUMBA_CACHE_DIR and NUMBA_CPU_NAME=generic), then the
guest loads the result. Usage: ``python -m tickwire.drivers.pci.warm``.
Tools that inline rx_burst/tx_burst into their own loops can warm those with
``fake_states()`` (a state whose pool address matches no pool returns at once).
"""

from __future__ import annotations

import numpy as np

from ...mem.mempool import Mempool
from ..port import rx_burst, tx_burst
from . import e1000e, virtio
from .mmio import rd8, rd16, rd32, wr8, wr16, wr32


def fake_states() -> list:
    return [e1000e.fake_state(), virtio.fake_state()]


def warm(pool: Mempool | None = None) -> None:
    pool = pool or Mempool(64, 2048 + 128, 128)
    pool.free_burst(pool.alloc_burst(2))      # what open()/close() call from Python
    pool.check()
    bufs = np.zeros(32, np.int32)
    bar = np.zeros(64, np.uint8)
    rd8(bar, 0), rd16(bar, 0), rd32(bar, 0)
    wr8(bar, 0, 0), wr16(bar, 0, 0), wr32(bar, 0, 0)
    for st in fake_states():
        rx_burst(st, pool.arrays, bufs, 32)
        tx_burst(st, pool.arrays, bufs, 0)
    virtio.virtio_fill_rx(virtio.fake_state(), pool.arrays, bufs[:0])


if __name__ == "__main__":
    warm()

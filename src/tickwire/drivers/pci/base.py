"""What every PCI port shares: taking the device, DMA memory that also backs the
mempool, an exclusive lock, and a close() that always runs.

Safety (issue 8): the device is reset and its DMA unmapped on close(), at
interpreter exit, on exceptions and on SIGTERM (turned into SystemExit so that
``with`` blocks unwind; SIGINT already raises KeyboardInterrupt). After SIGKILL
nothing of ours runs: with VFIO the kernel resets the device and drops the IOMMU
mappings when our fds close; without an IOMMU the next open() resets the device
before anything else (the hugepages it last knew are freed, so a sysfs-path NIC
can scribble on reused memory until then: one more reason to prefer VFIO).
"""

from __future__ import annotations

import atexit
import fcntl
import os
import signal
import threading
import time
import weakref

import numpy as np

from ..counters import Counters
from ..port import Port
from . import sysfs
from ...mem.shm import HUGEPAGE_2M
from .access import open_access

RINGS_BYTES = 64 * 1024       # descriptor rings live in the first 64 KiB of the DMA region
POOL_OFF = RINGS_BYTES        # pool buffers follow; POOL_OFF % buf_size == 0 keeps them inside 2 MiB pages
LOCK_DIR = "/run"

_open_ports: "weakref.WeakSet[PciPort]" = weakref.WeakSet()


def _close_all() -> None:
    for port in list(_open_ports):
        try:
            port.close()
        except Exception:
            pass


atexit.register(_close_all)


def _on_sigterm(signum, frame):
    raise SystemExit(128 + signum)


def _install_sigterm() -> None:
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _on_sigterm)


class PciPort(Port):
    """Base for the NIC drivers: subclasses implement ``_setup()``, ``_stop()`` and ``_ring_bufs()``."""

    driver_name = "?"

    def __init__(self, dev: sysfs.PciDevice, iommu: str, pool, spec: str, extra_counters: tuple[str, ...]):
        self.spec, self.dev, self.pool = spec, dev, pool
        self.counters = Counters(extra_counters)
        self.access = self.dma = None
        self._lock_fd = -1
        self._orig_data = None
        self._closed = False
        self._stall = None
        bs = pool.buf_size
        if bs > HUGEPAGE_2M:
            raise ValueError(f"pci: pool buffer size {bs} exceeds a 2 MiB DMA page")
        if pool.in_flight:
            raise ValueError("pci: the pool must be fresh (no buffers in flight): its memory is moved into DMA memory")
        self._lock(dev.bdf)
        try:
            self.access = open_access(dev, iommu)
            self.dma = self.access.dma(POOL_OFF + pool.size * bs)
            # The pool's buffers now live in DMA memory: buffer i has bus address
            # dma.addr(POOL_OFF + i*buf_size + data_off[i]) (DESIGN: Mempool(data=dma_view)).
            self._orig_data = pool.arrays.data
            pool.arrays = pool.arrays._replace(data=self.dma.buf[POOL_OFF:POOL_OFF + pool.size * bs])
            self._reserve_straddlers()
            _open_ports.add(self)
            _install_sigterm()
            self._setup()
        except BaseException:
            self.close()
            raise

    def _reserve_straddlers(self) -> None:
        """Without an IOMMU only each 2 MiB page is physically contiguous, so a buffer that
        crosses a page boundary cannot take one DMA transfer. Such buffers (about one per
        page unless buf_size divides 2 MiB) are held by the port and never handed out."""
        self._reserved = np.empty(0, np.int32)
        if self.dma.iommu != "none":
            return
        pool, bs = self.pool, self.pool.buf_size
        start = POOL_OFF + np.arange(pool.size, dtype=np.int64) * bs
        bad = (start >> 21) != ((start + bs - 1) >> 21)
        if not bad.any():
            return
        everything = pool.alloc_burst(pool.size)
        keep = everything[bad[everything]]
        pool.free_burst(everything[~bad[everything]])
        self._reserved = keep

    def _lock(self, bdf: str) -> None:
        """One process per device: a second opener gets a clear error, not a fight over the rings."""
        self._lock_fd = os.open(f"{LOCK_DIR}/tickwire-pci-{bdf}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            self._lock_fd = -1
            raise OSError(f"pci: {bdf} is in use by another tickwire process") from None

    @property
    def pool_addr(self) -> int:
        return int(self.pool.arrays.data.ctypes.data)

    # subclass hooks ---------------------------------------------------------------
    def _setup(self) -> None:
        raise NotImplementedError

    def _stop(self) -> None:
        """Stop all device DMA (disable queues, reset)."""

    def _ring_bufs(self) -> np.ndarray:
        """Pool buffers still held by the rings (freed on close): both drivers' states
        keep them in ``rx_bufs``/``tx_bufs``, -1 for an empty slot."""
        st = getattr(self, "state", None)
        if st is None:
            return np.empty(0, np.int32)
        return np.concatenate([st.rx_bufs, st.tx_bufs])

    def _alloc_rx_bufs(self, n: int) -> np.ndarray:
        """``n`` pool buffers to arm an RX ring with, or a clear error (nothing kept)."""
        bufs = self.pool.alloc_burst(n)
        if len(bufs) < n:
            self.pool.free_burst(bufs)
            raise MemoryError(f"pci: pool too small for a {n}-entry RX ring")
        return bufs

    link_timeout = 5.0

    @property
    def link_up(self) -> bool:
        return True

    def _wait_link(self) -> None:
        """Frames sent before the link is up are lost (QEMU: e1000e ~2 s after SLU, virtio
        0.3 s, notes qemu-guest §7); a link that stays down is not an error here: the
        tools wait for it themselves and say so."""
        deadline = time.monotonic() + self.link_timeout
        while not self.link_up and time.monotonic() < deadline:
            time.sleep(0.01)

    TX_STALL_SECONDS = 2.0

    def _watch_tx(self, oldest: int, stuck: bool) -> None:
        """Called by poll(): ``stuck`` says the oldest in-flight TX descriptor ``oldest`` is
        not done. A device that never completes one (DMA unreachable, e.g. intel_iommu=on
        without iommu=pt on the sysfs path, notes §5a) is a clear error, not a silent hang."""
        now = time.monotonic()
        if not stuck:
            self._stall = None
        elif self._stall is None or self._stall[0] != oldest:
            self._stall = (oldest, now)
        elif now - self._stall[1] > self.TX_STALL_SECONDS:
            raise TimeoutError(
                f"pci: {self.dev.bdf} ({self.driver_name}, iommu={self.access.iommu}) has not completed a TX "
                f"descriptor in {self.TX_STALL_SECONDS:.0f} s: the device cannot reach our DMA memory "
                "(without an IOMMU the kernel needs iommu=pt or no intel_iommu=on) or it is wedged")

    # ------------------------------------------------------------------------------
    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        _open_ports.discard(self)
        # Order matters: the device must stop DMA before the memory is unmapped and freed.
        if self.access is not None:
            try:
                self._stop()
            except Exception:
                pass
            try:
                self.access.config.disable_bus_master()
            except Exception:
                pass
            self.access.reset()
        if self._orig_data is not None:
            held = np.concatenate([self._ring_bufs(), getattr(self, "_reserved", np.empty(0, np.int32))])
            held = held[held >= 0]
            if len(held):
                self.pool.free_burst(held)
            # Give the pool ordinary memory again (contents copied) so it outlives the port.
            self.pool.arrays = self.pool.arrays._replace(data=np.array(self.pool.arrays.data))
        # Drop our views of the BARs and DMA memory first: an mmap with a live numpy view
        # cannot be unmapped, and a BAR mapping keeps the VFIO device (so its group) busy.
        self.state = None
        for attr in ("bar", "t"):
            if hasattr(self, attr):
                setattr(self, attr, None)
        if self.dma is not None:
            self.dma.close()
        if self.access is not None:
            self.access.close()
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

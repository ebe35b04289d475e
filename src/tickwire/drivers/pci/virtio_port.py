"""Control plane of the virtio-net driver: feature negotiation, virtqueues, link.

Initialisation follows virtio 1.2 §3.1.1 (reset, ACKNOWLEDGE, DRIVER, features,
FEATURES_OK, queues, DRIVER_OK). One receive and one transmit queue, no control
queue: the device filters with its defaults (QEMU's virtio-net starts
promiscuous), so ``promisc``/``allmulti`` change nothing here.
"""

from __future__ import annotations


import numpy as np

from . import virtio as hw
from .base import POOL_OFF, PciPort
from .mmio import rd16
from .virtio_transport import (ACKNOWLEDGE, DRIVER, DRIVER_OK, F_ACCESS_PLATFORM, F_MAC, F_STATUS, F_VERSION_1,
                               FAILED, FEATURES_OK, LEGACY_ALIGN, NET_S_LINK_UP, LegacyTransport, ModernTransport)

MAX_QUEUE = 256
QUEUE_AREA = 16 * 1024       # rx vring at 0, tx vring at 16 KiB (each <= 12 KiB for 256 entries)


def vring_layout(base: int, n: int) -> tuple[int, int, int]:
    """desc, avail, used offsets; the legacy layout (used ring page-aligned) suits both transports."""
    avail = base + 16 * n
    used = -(-(avail + 6 + 2 * n) // LEGACY_ALIGN) * LEGACY_ALIGN
    return base, avail, used


class VirtioPort(PciPort):
    driver_name = "virtio"

    def __init__(self, dev, iommu, pool, spec, *, mode="auto", promisc=False, allmulti=False, link_timeout=5.0):
        self.mode, self.link_timeout = mode, link_timeout
        self.state = None
        super().__init__(dev, iommu, pool, spec, hw.EXTRA_COUNTERS)

    def _transport(self):
        if self.mode == "legacy":
            return LegacyTransport(self.access)
        try:
            return ModernTransport(self.access)
        except OSError:
            if self.mode == "modern":
                raise
            return LegacyTransport(self.access)

    def _setup(self) -> None:
        a = self.access
        self.t = t = self._transport()
        a.config.enable(io=t.kind == "legacy")
        t.reset()
        t.set_status(ACKNOWLEDGE)
        t.set_status(DRIVER)
        offered = t.device_features()
        want = (1 << F_MAC) | (1 << F_STATUS)
        if t.kind == "modern":
            if not offered >> F_VERSION_1 & 1:
                raise OSError("virtio: device does not offer VERSION_1 on its modern interface")
            want |= 1 << F_VERSION_1
            # ACCESS_PLATFORM: the device's DMA goes through the IOMMU; it must be accepted when
            # offered (§6.1), and it is what makes VFIO IOVAs work (notes qemu-guest §6).
            want |= offered & (1 << F_ACCESS_PLATFORM)
        self.features = offered & want
        t.set_driver_features(self.features)
        if t.kind == "modern":
            t.set_status(FEATURES_OK)
            if not t.status() & FEATURES_OK:
                t.set_status(FAILED)
                raise OSError(f"virtio: device refused features {self.features:#x}")
        n = t.queue_max(hw.RX_QUEUE)
        if t.kind == "modern":
            n = min(n, MAX_QUEUE)
        if n == 0 or n & (n - 1) or n > MAX_QUEUE or t.queue_max(hw.TX_QUEUE) < n:
            raise OSError(f"virtio: unusable queue size {n} (need a power of two <= {MAX_QUEUE})")
        hdr = t.hdr_len
        if self.pool.headroom < hdr:
            raise ValueError(f"virtio: pool headroom {self.pool.headroom} < virtio-net header {hdr}")
        q = np.zeros(hw.Q_LEN, np.int64)
        q[hw.Q_N], q[hw.Q_HDR] = n, hdr
        q[hw.Q_RX_DESC], q[hw.Q_RX_AVAIL], q[hw.Q_RX_USED] = vring_layout(0, n)
        q[hw.Q_TX_DESC], q[hw.Q_TX_AVAIL], q[hw.Q_TX_USED] = vring_layout(QUEUE_AREA, n)
        q[hw.Q_POOL_OFF], q[hw.Q_POOL_ADDR] = POOL_OFF, self.pool_addr
        self.dma.buf[:POOL_OFF] = 0
        bar = t.notify_bar if t.kind == "modern" else np.zeros(8, np.uint8)
        self.state = hw.VirtioState(bar, self.dma.buf, self.dma.pages, q, np.full(n, -1, np.int32),
                                    np.full(n, -1, np.int32), self.counters.array)
        d = self.dma.addr
        q[hw.Q_RX_NOTIFY] = t.set_queue(hw.RX_QUEUE, n, d(q[hw.Q_RX_DESC]), d(q[hw.Q_RX_AVAIL]), d(q[hw.Q_RX_USED]))
        q[hw.Q_TX_NOTIFY] = t.set_queue(hw.TX_QUEUE, n, d(q[hw.Q_TX_DESC]), d(q[hw.Q_TX_AVAIL]), d(q[hw.Q_TX_USED]))
        if t.kind == "legacy":
            q[hw.Q_NOTIFY_PIO], q[hw.Q_NOTIFY_FD] = 1, t.io.fd
        self._fill_rx(n)
        t.set_status(DRIVER_OK)
        self.mac_bytes = t.mac()
        self.mac = ":".join(f"{x:02x}" for x in self.mac_bytes)
        self._kick_rx()
        self._wait_link()

    def _fill_rx(self, n: int) -> None:
        hw.virtio_fill_rx(self.state, self.pool.arrays, self._alloc_rx_bufs(n))

    def _kick_rx(self) -> None:
        q = self.state.q
        if q[hw.Q_NOTIFY_PIO]:
            self.t.io.write(q[hw.Q_RX_NOTIFY] - self.t.io.base, 2, hw.RX_QUEUE)
        else:
            from .mmio import wr16
            wr16(self.state.bar, int(q[hw.Q_RX_NOTIFY]), hw.RX_QUEUE)

    @property
    def link_up(self) -> bool:
        if not self.features & (1 << F_STATUS):
            return True
        return bool(self.t.net_status() & NET_S_LINK_UP)

    def poll(self) -> None:
        if self._closed or self.state is None:
            return
        q, st = self.state.q, self.state
        if q[hw.Q_BROKEN]:
            raise OSError(
                f"pci: {self.dev.bdf} (virtio) returned more used buffers than were made available "
                "(virtio 1.2 §2.7.14): its queues are no longer touched (counted bad_used_idx); "
                "close the port and open it again")
        last = int(q[hw.Q_TX_LAST_USED])
        used = int(rd16(self.dma.buf, int(q[hw.Q_TX_USED]) + 2))
        self._watch_tx(last, used == last and st.tx_bufs[last & (int(q[hw.Q_N]) - 1)] >= 0)

    def _stop(self) -> None:
        if getattr(self, "t", None) is not None:
            self.t.reset()          # status 0: the device stops using the queues (§2.1, §4.1.4.3.2)

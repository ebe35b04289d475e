"""The two ways to reach a virtio-net device's control registers.

* ``ModernTransport``: virtio 1.x PCI capabilities (virtio 1.2 §4.1.4): common,
  notify, ISR and device configuration structures inside memory BARs, found by
  walking the vendor-specific capabilities in config space.
* ``LegacyTransport``: the pre-1.0 I/O-port BAR0 layout (virtio 1.2 §4.1.4.8, the
  way ixy drives virtio), reached with 1/2/4-byte pread/pwrite (notes qemu-guest §6).

Both offer: reset, status, features, set_queue, mac, link_up, notify target.
"""

from __future__ import annotations

import struct
import time

from .config import CAP_VENDOR
from .mmio import rd8, rd16, rd32, wr8, wr16, wr32

# device status bits (§2.1)
ACKNOWLEDGE, DRIVER, DRIVER_OK, FEATURES_OK, FAILED = 1, 2, 4, 8, 128
# feature bits (§5.1.3, §6)
F_MAC, F_STATUS, F_VERSION_1, F_ACCESS_PLATFORM = 5, 16, 32, 33
NET_S_LINK_UP = 1

# virtio_pci_cap cfg_type (§4.1.4)
CAP_COMMON, CAP_NOTIFY, CAP_ISR, CAP_DEVICE = 1, 2, 3, 4

# virtio_pci_common_cfg offsets (§4.1.4.3)
C_DFSELECT, C_DF, C_GFSELECT, C_GF = 0x00, 0x04, 0x08, 0x0C
C_NUM_QUEUES, C_STATUS = 0x12, 0x14
C_Q_SELECT, C_Q_SIZE, C_Q_MSIX, C_Q_ENABLE, C_Q_NOTIFY_OFF = 0x16, 0x18, 0x1A, 0x1C, 0x1E
C_Q_DESC, C_Q_DRIVER, C_Q_DEVICE = 0x20, 0x28, 0x30
NO_VECTOR = 0xFFFF

# legacy I/O BAR layout (§4.1.4.8), without MSI-X
L_HOST_FEATURES, L_GUEST_FEATURES, L_Q_PFN, L_Q_SIZE, L_Q_SELECT, L_Q_NOTIFY, L_STATUS = (
    0x00, 0x04, 0x08, 0x0C, 0x0E, 0x10, 0x12)
L_CONFIG = 0x14
LEGACY_ALIGN = 4096     # legacy vring: used ring aligned to 4096 (§2.7 "Legacy Interfaces")


def _wait_reset(read_status, what: str) -> None:
    deadline = time.monotonic() + 1.0
    while read_status() != 0:
        if time.monotonic() > deadline:
            raise TimeoutError(f"virtio: {what} did not finish its reset within 1 s")
        time.sleep(0.001)


class ModernTransport:
    kind = "modern"
    hdr_len = 12                   # virtio_net_hdr_v1 incl. num_buffers: always with VERSION_1 (§5.1.6)

    def __init__(self, access):
        self.access = access
        caps = {}
        cfg = access.config
        for off, cap_id in cfg.capabilities():
            if cap_id != CAP_VENDOR:
                continue
            cap_len, cfg_type, bar = cfg.u8(off + 2), cfg.u8(off + 3), cfg.u8(off + 4)
            if cfg_type in caps or cap_len < 16 or bar > 5:
                continue          # the first of each type is the preferred one (§4.1.4)
            offset, length = cfg.u32(off + 8), cfg.u32(off + 12)
            mult = cfg.u32(off + 16) if cfg_type == CAP_NOTIFY and cap_len >= 20 else 0
            caps[cfg_type] = (bar, offset, length, mult)
        missing = [n for t, n in ((CAP_COMMON, "common"), (CAP_NOTIFY, "notify"), (CAP_DEVICE, "device"))
                   if t not in caps]
        if missing:
            raise OSError(f"virtio: no modern {'/'.join(missing)} capability (a legacy-only device? try virtio=legacy)")
        bars = {}
        for bar, offset, length, _ in (caps[CAP_COMMON], caps[CAP_NOTIFY], caps[CAP_DEVICE]):
            if bar not in bars:
                bars[bar] = access.map_bar(bar)
            if offset + length > bars[bar].size:
                raise OSError(f"virtio: capability window {offset:#x}+{length:#x} outside BAR{bar}")
        # the registers we touch must lie inside their windows: common config up to
        # queue_device (0x38, virtio 1.1 §4.1.4.3), device config mac + status (8 bytes, §5.1.4)
        for t, need, what in ((CAP_COMMON, C_Q_DEVICE + 8, "common"), (CAP_DEVICE, 8, "device")):
            if caps[t][2] < need:
                raise OSError(f"virtio: {what} configuration window of {caps[t][2]} bytes, {need} needed")
        self.common_bar, self.common, _, _ = (bars[caps[CAP_COMMON][0]], *caps[CAP_COMMON][1:])
        self.dev_bar, self.dev_off = bars[caps[CAP_DEVICE][0]], caps[CAP_DEVICE][1]
        nbar, self.notify_base, self.notify_len, self.notify_mult = caps[CAP_NOTIFY]
        self.notify_bar = bars[nbar]

    def _c(self, off):
        return self.common + off

    def reset(self) -> None:
        wr8(self.common_bar, self._c(C_STATUS), 0)
        _wait_reset(self.status, "device")

    def status(self) -> int:
        return rd8(self.common_bar, self._c(C_STATUS))

    def set_status(self, bits: int) -> None:
        wr8(self.common_bar, self._c(C_STATUS), self.status() | bits)

    def device_features(self) -> int:
        b = self.common_bar
        wr32(b, self._c(C_DFSELECT), 0)
        lo = rd32(b, self._c(C_DF))
        wr32(b, self._c(C_DFSELECT), 1)
        return lo | (rd32(b, self._c(C_DF)) << 32)

    def set_driver_features(self, f: int) -> None:
        b = self.common_bar
        wr32(b, self._c(C_GFSELECT), 0)
        wr32(b, self._c(C_GF), f & 0xFFFFFFFF)
        wr32(b, self._c(C_GFSELECT), 1)
        wr32(b, self._c(C_GF), f >> 32)

    def queue_max(self, q: int) -> int:
        wr16(self.common_bar, self._c(C_Q_SELECT), q)
        return rd16(self.common_bar, self._c(C_Q_SIZE))

    def set_queue(self, q: int, size: int, desc: int, avail: int, used: int) -> int:
        """Program queue ``q``; returns the byte offset of its doorbell in ``notify_bar``."""
        b = self.common_bar
        wr16(b, self._c(C_Q_SELECT), q)
        wr16(b, self._c(C_Q_SIZE), size)
        wr16(b, self._c(C_Q_MSIX), NO_VECTOR)     # we poll
        for reg, addr in ((C_Q_DESC, desc), (C_Q_DRIVER, avail), (C_Q_DEVICE, used)):
            wr32(b, self._c(reg), addr & 0xFFFFFFFF)
            wr32(b, self._c(reg) + 4, addr >> 32)
        off = rd16(b, self._c(C_Q_NOTIFY_OFF)) * self.notify_mult
        if off + 2 > self.notify_len:
            raise OSError(f"virtio: queue {q} doorbell {off:#x} outside the notify window")
        wr16(b, self._c(C_Q_ENABLE), 1)
        return self.notify_base + off

    def mac(self) -> bytes:
        return bytes(rd8(self.dev_bar, self.dev_off + i) for i in range(6))

    def net_status(self) -> int:
        return rd16(self.dev_bar, self.dev_off + 6)


class LegacyTransport:
    kind = "legacy"
    hdr_len = 10                   # struct virtio_net_hdr without num_buffers (no MRG_RXBUF)

    def __init__(self, access):
        self.access = access
        self.io = access.io_bar(0)
        if self.io.size < L_CONFIG + 8:
            raise OSError(f"virtio: BAR0 is {self.io.size} bytes, not a legacy virtio I/O BAR (try virtio=modern)")

    def reset(self) -> None:
        self.io.write(L_STATUS, 1, 0)
        _wait_reset(self.status, "device")

    def status(self) -> int:
        return self.io.read(L_STATUS, 1)

    def set_status(self, bits: int) -> None:
        self.io.write(L_STATUS, 1, self.status() | bits)

    def device_features(self) -> int:
        return self.io.read(L_HOST_FEATURES, 4)

    def set_driver_features(self, f: int) -> None:
        self.io.write(L_GUEST_FEATURES, 4, f & 0xFFFFFFFF)

    def queue_max(self, q: int) -> int:
        self.io.write(L_Q_SELECT, 2, q)
        return self.io.read(L_Q_SIZE, 2)

    def set_queue(self, q: int, size: int, desc: int, avail: int, used: int) -> int:
        # Legacy: one contiguous vring at a page frame; its size is the device's, not ours.
        self.io.write(L_Q_SELECT, 2, q)
        if self.io.read(L_Q_SIZE, 2) != size:
            raise OSError("virtio: legacy queue size is fixed by the device")
        if desc % LEGACY_ALIGN or desc >> 44:
            raise OSError(f"virtio: legacy vring at {desc:#x} is not a 32-bit page frame")
        self.io.write(L_Q_PFN, 4, desc // LEGACY_ALIGN)
        return self.io.base + L_Q_NOTIFY

    def mac(self) -> bytes:
        return bytes(self.io.read(L_CONFIG + i, 1) for i in range(6))   # 1-byte accesses only

    def net_status(self) -> int:
        return self.io.read(L_CONFIG + 6, 2)

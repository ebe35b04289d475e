"""How we reach a device: registers, config space, DMA memory, reset.

``VfioAccess`` (safe, needs an IOMMU) and ``SysfsAccess`` (ixy style, no IOMMU,
unsafe) offer the same methods so the NIC drivers do not care which one they got.
"""

from __future__ import annotations

import mmap
import os
import sys

import numpy as np

from . import sysfs
from .config import ConfigSpace
from .dma import DmaMemory
from .vfio import CONFIG_REGION, VfioDevice


class IoBar:
    """An I/O-port BAR through pread/pwrite: only 1-, 2- or 4-byte accesses work (notes §6)."""

    def __init__(self, fd: int, base: int, size: int):
        self.fd, self.base, self.size = fd, base, size

    def _off(self, off: int, n: int) -> int:
        if off < 0 or off + n > self.size:
            raise ValueError(f"I/O BAR access at {off:#x}+{n} outside {self.size} bytes")
        return self.base + off

    def read(self, off: int, n: int) -> int:
        data = os.pread(self.fd, n, self._off(int(off), n))
        return int.from_bytes(data, "little")

    def write(self, off: int, n: int, value: int) -> None:
        os.pwrite(self.fd, int(value).to_bytes(n, "little"), self._off(int(off), n))


class VfioAccess:
    iommu = "vfio"

    def __init__(self, dev: sysfs.PciDevice):
        if dev.iommu_group is None:
            raise OSError(f"pci: {dev.bdf} has no IOMMU group, so VFIO cannot take it (no IOMMU, or "
                          "intel_iommu=on missing on the kernel command line); iommu=none uses the unsafe sysfs path")
        sysfs.bind(dev, "vfio-pci")
        self.dev = dev
        self.vfio = VfioDevice(dev.bdf, dev.iommu_group)
        cfg = self.vfio.region(CONFIG_REGION)
        self.config = ConfigSpace(self.vfio.fd, cfg.offset, min(cfg.size, 4096))

    def map_bar(self, index: int) -> np.ndarray:
        return self.vfio.map_bar(index)

    def io_bar(self, index: int) -> IoBar:
        r = self.vfio.region(index)
        return IoBar(self.vfio.fd, r.offset, r.size)

    def dma(self, size: int) -> DmaMemory:
        return DmaMemory(size, vfio=self.vfio)

    def reset(self) -> None:
        self.vfio.reset()

    def close(self) -> None:
        self.vfio.close()


class SysfsAccess:
    iommu = "none"

    def __init__(self, dev: sysfs.PciDevice):
        sysfs.unbind(dev)
        self.dev = dev
        self._fds: list[int] = []
        self._maps: list[mmap.mmap] = []
        print(f"tickwire: WARNING: driving {dev.bdf} without an IOMMU (iommu=none): the NIC can DMA "
              "anywhere in RAM; use VFIO (iommu=vfio) wherever an IOMMU exists", file=sys.stderr)
        fd = self._open(f"{dev.path}/config")
        self.config = ConfigSpace(fd, 0, os.fstat(fd).st_size or 256)

    def _open(self, path: str) -> int:
        fd = os.open(path, os.O_RDWR | os.O_SYNC | os.O_CLOEXEC)
        self._fds.append(fd)
        return fd

    def map_bar(self, index: int) -> np.ndarray:
        fd = self._open(f"{self.dev.path}/resource{index}")
        size = os.fstat(fd).st_size
        m = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        self._maps.append(m)
        return np.frombuffer(m, np.uint8)

    def io_bar(self, index: int) -> IoBar:
        fd = self._open(f"{self.dev.path}/resource{index}")
        return IoBar(fd, 0, os.fstat(fd).st_size)

    def dma(self, size: int) -> DmaMemory:
        return DmaMemory(size, vfio=None)

    def reset(self) -> None:
        # Function-level reset if the device offers one; the NIC drivers also reset the MAC.
        try:
            with open(f"{self.dev.path}/reset", "w") as f:
                f.write("1")
        except OSError:
            pass

    def close(self) -> None:
        for m in self._maps:
            try:
                m.close()
            except BufferError:
                pass
        self._maps.clear()
        for fd in self._fds:
            os.close(fd)
        self._fds.clear()


def open_access(dev: sysfs.PciDevice, iommu: str):
    return VfioAccess(dev) if iommu == "vfio" else SysfsAccess(dev)

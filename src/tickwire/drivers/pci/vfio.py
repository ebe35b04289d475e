"""VFIO: container, group and device file descriptors, regions, DMA mappings.

ioctl numbers and structs: linux/include/uapi/linux/vfio.h (VFIO_TYPE ';' = 0x3B,
VFIO_BASE 100). Verified on the test guest: shared/notes/qemu-guest.md §5b.

Python ioctl pitfall: with an immutable ``bytes`` argument ``fcntl.ioctl`` returns
a copy of the buffer, not the ioctl's return value; every ioctl whose struct the
kernel fills, or whose return value we need, passes a ``bytearray`` (notes §5b).
"""

from __future__ import annotations

import fcntl
import mmap
import os
import struct

import numpy as np

GET_API_VERSION = 0x3B64
CHECK_EXTENSION = 0x3B65
SET_IOMMU = 0x3B66
GROUP_GET_STATUS = 0x3B67
GROUP_SET_CONTAINER = 0x3B68
GROUP_GET_DEVICE_FD = 0x3B6A
DEVICE_GET_REGION_INFO = 0x3B6C
DEVICE_RESET = 0x3B6F
IOMMU_MAP_DMA = 0x3B71
IOMMU_UNMAP_DMA = 0x3B72

API_VERSION = 0
TYPE1_IOMMU = 1
GROUP_VIABLE = 1
DMA_READ, DMA_WRITE = 1, 2
REGION_MMAP = 4
CONFIG_REGION = 7       # VFIO_PCI_CONFIG_REGION_INDEX; 0-5 are BARs


class Region:
    def __init__(self, index: int, flags: int, size: int, offset: int):
        self.index, self.flags, self.size, self.offset = index, flags, size, offset


class VfioDevice:
    """One PCI device bound to vfio-pci, in its own container (TYPE1 IOMMU)."""

    def __init__(self, bdf: str, group: int):
        self.bdf, self.group_no = bdf, group
        self.container = self.group = self.fd = -1
        self._maps: list[mmap.mmap] = []
        self._dma: list[tuple[int, int]] = []
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    def _open(self) -> None:
        self.container = os.open("/dev/vfio/vfio", os.O_RDWR | os.O_CLOEXEC)
        if fcntl.ioctl(self.container, GET_API_VERSION) != API_VERSION:
            raise OSError("vfio: unexpected API version")
        if fcntl.ioctl(self.container, CHECK_EXTENSION, TYPE1_IOMMU) != 1:
            raise OSError("vfio: the kernel offers no TYPE1 IOMMU (is an IOMMU enabled? intel_iommu=on)")
        try:
            self.group = os.open(f"/dev/vfio/{self.group_no}", os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            raise OSError(f"vfio: /dev/vfio/{self.group_no} missing (is {self.bdf} bound to vfio-pci?)") from None
        status = bytearray(struct.pack("<II", 8, 0))
        fcntl.ioctl(self.group, GROUP_GET_STATUS, status, True)
        if not struct.unpack("<II", status)[1] & GROUP_VIABLE:
            raise OSError(f"vfio: IOMMU group {self.group_no} is not viable: bind every device in "
                          f"/sys/kernel/iommu_groups/{self.group_no}/devices to vfio-pci")
        fcntl.ioctl(self.group, GROUP_SET_CONTAINER, struct.pack("<i", self.container))
        fcntl.ioctl(self.container, SET_IOMMU, TYPE1_IOMMU)
        self.fd = fcntl.ioctl(self.group, GROUP_GET_DEVICE_FD, bytearray(self.bdf.encode() + b"\0"), True)

    def region(self, index: int) -> Region:
        buf = bytearray(struct.pack("<IIIIQQ", 32, 0, index, 0, 0, 0))
        fcntl.ioctl(self.fd, DEVICE_GET_REGION_INFO, buf, True)
        _, flags, _, _, size, offset = struct.unpack("<IIIIQQ", buf)
        return Region(index, flags, size, offset)

    def map_bar(self, index: int) -> np.ndarray:
        """A memory BAR as a uint8 array over the device's registers (mmap of the device fd)."""
        r = self.region(index)
        if not r.flags & REGION_MMAP or r.size == 0:
            raise OSError(f"vfio: BAR{index} of {self.bdf} cannot be mmapped (flags {r.flags:#x})")
        m = mmap.mmap(self.fd, r.size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE, offset=r.offset)
        self._maps.append(m)
        return np.frombuffer(m, np.uint8)

    def map_dma(self, vaddr: int, iova: int, size: int) -> None:
        fcntl.ioctl(self.container, IOMMU_MAP_DMA,
                    struct.pack("<IIQQQ", 32, DMA_READ | DMA_WRITE, vaddr, iova, size))
        self._dma.append((iova, size))

    def unmap_dma_all(self) -> None:
        while self._dma:
            iova, size = self._dma.pop()
            try:
                fcntl.ioctl(self.container, IOMMU_UNMAP_DMA, bytearray(struct.pack("<IIQQ", 24, 0, iova, size)), True)
            except OSError:
                pass

    def reset(self) -> bool:
        """Function-level reset through vfio-pci (False when the device offers none)."""
        try:
            fcntl.ioctl(self.fd, DEVICE_RESET)
            return True
        except OSError:
            return False

    def close(self) -> None:
        self.unmap_dma_all()
        for m in self._maps:
            try:
                m.close()
            except BufferError:
                pass      # a numpy view still alive keeps the mapping; it goes with the view
        self._maps.clear()
        for attr in ("fd", "group", "container"):
            fd = getattr(self, attr)
            if fd >= 0:
                os.close(fd)
                setattr(self, attr, -1)

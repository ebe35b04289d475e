"""DMA memory: a hugepage region plus the bus addresses the device must use for it.

Two ways to learn the bus address (issue 8, notes §5):
* VFIO: we choose an IOVA and ask the IOMMU to map the region there
  (VFIO_IOMMU_MAP_DMA). The device can reach this region and nothing else.
* sysfs/pagemap (no IOMMU): the bus address is the physical address, read from
  /proc/self/pagemap. UNSAFE: the device can write anywhere in RAM, and a bug in
  a descriptor address corrupts the kernel. Each 2 MiB hugepage is physically
  contiguous, separate hugepages are not, so the translation is kept per page.

Translation for the hot path: ``dma_pages[off >> 21] + (off & 0x1FFFFF)``; a
buffer never crosses a 2 MiB boundary because buffer sizes divide 2 MiB.
"""

from __future__ import annotations

import numpy as np

from ...mem import pagemap
from ...mem.shm import HUGEPAGE_2M, SharedRegion, free_hugepages

PAGE_SHIFT = 21
IOVA_BASE = 0x40000000   # any IOVA outside the guest's reserved ranges works; notes §5b used this


class DmaMemory:
    def __init__(self, size: int, vfio=None, name: str = "tickwire-pci"):
        size = -(-size // HUGEPAGE_2M) * HUGEPAGE_2M
        need = size // HUGEPAGE_2M
        if vfio is None and free_hugepages() < need:
            raise OSError(f"pci: {need} free 2 MiB hugepages needed for DMA memory without an IOMMU, "
                          f"{free_hugepages()} free; reserve some: echo 64 > /proc/sys/vm/nr_hugepages")
        # With an IOMMU the pages need not be contiguous; still prefer hugepages (fewer IOTLB misses).
        self.region = SharedRegion.create(size, name=name, hugepages="on" if vfio is None else "auto")
        if not self.region.locked:
            self.region.close()
            raise OSError("pci: cannot mlock DMA memory (raise RLIMIT_MEMLOCK); an unlocked page could move under DMA")
        self.buf = self.region.buf
        self.size = size
        self.vfio = None            # set once the mapping exists, so close() undoes only what was done
        self.pages = np.zeros(need, np.uint64)
        try:
            self._translate(vfio, need)
        except BaseException:
            self.close()            # a failed open keeps no locked memory and no fd
            raise

    def _translate(self, vfio, need: int) -> None:
        if vfio is not None:
            vfio.map_dma(self.region.address, IOVA_BASE, self.size)
            self.vfio = vfio
            self.pages[:] = IOVA_BASE + np.arange(need, dtype=np.uint64) * np.uint64(HUGEPAGE_2M)
            self.iommu = "vfio"
        else:
            for i in range(need):
                va = self.region.address + i * HUGEPAGE_2M
                pa = pagemap.virt_to_phys(va)
                last = pagemap.virt_to_phys(va + HUGEPAGE_2M - pagemap.PAGE)
                if last - pa != HUGEPAGE_2M - pagemap.PAGE or pa % HUGEPAGE_2M:
                    raise OSError(f"pci: DMA page {i} is not one physically contiguous 2 MiB page")
                self.pages[i] = pa
            self.iommu = "none"

    def addr(self, off: int) -> int:
        return int(self.pages[off >> PAGE_SHIFT]) + (off & (HUGEPAGE_2M - 1))

    def close(self) -> None:
        if self.vfio is not None:
            self.vfio.unmap_dma_all()
        self.buf = None
        self.region.close()

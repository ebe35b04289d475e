"""Virtual -> physical address translation through /proc/self/pagemap.

Used by PCI drivers on hosts without an IOMMU (the ixy way). Each 8-byte entry
describes one 4 KiB virtual page: bit 63 present, bits 0-54 the page frame number
(Documentation/admin-guide/mm/pagemap.rst). PFNs read as 0 without CAP_SYS_ADMIN.
Inside a VM these are guest-physical addresses.
"""

from __future__ import annotations

import os
import struct

PAGE = 4096
_PRESENT = 1 << 63
_PFN_MASK = (1 << 55) - 1


def virt_to_phys(vaddr: int) -> int:
    """Physical address of ``vaddr``; the page must be faulted in (touch it first)."""
    fd = os.open("/proc/self/pagemap", os.O_RDONLY)
    try:
        entry = os.pread(fd, 8, (vaddr // PAGE) * 8)
    finally:
        os.close(fd)
    if len(entry) != 8:
        raise OSError(f"pagemap: short read for address {vaddr:#x}")
    (value,) = struct.unpack("<Q", entry)
    if not value & _PRESENT:
        raise OSError(f"pagemap: page at {vaddr:#x} is not present (touch it before translating)")
    pfn = value & _PFN_MASK
    if pfn == 0:
        raise PermissionError("pagemap: PFN reads as 0; CAP_SYS_ADMIN (root) is needed")
    return pfn * PAGE + (vaddr & (PAGE - 1))

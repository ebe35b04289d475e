"""Several shared-memory files mapped back to back into one address range.

Why: a memif peer may hand us several regions (DPDK's zero-copy client sends one
per hugepage segment) and every descriptor names (region, offset, length). The
Numba data path wants one flat ``uint8`` array, not a list. So we reserve one
PROT_NONE range, map each region with MAP_FIXED at a page-aligned base inside it,
and give the data path a table of (base, size). A descriptor is then checked with
``region < n and offset + length <= size[region]`` and accessed at
``base[region] + offset`` — the same checked translation for every region.

The gap between regions stays PROT_NONE, so even a bug in the check faults
instead of reading a neighbour's memory.
"""

from __future__ import annotations

import ctypes
import mmap
import os

import numpy as np

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
_libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
_libc.mlock.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
_libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
_MADV_POPULATE_WRITE = 23
_MAP_FAILED = ctypes.c_void_p(-1).value
_MAP_FIXED, _MAP_NORESERVE = 0x10, 0x4000
_HUGE_ALIGN = 2 * 1024 * 1024

MAX_TOTAL = 1 << 36  # 64 GiB of address space: far beyond any sane peer, bounded anyway
LOCK_LIMIT = 1 << 30  # lock at most 1 GiB of regions (a memif interface needs a few MiB)
# Regions a *peer* declares: locking faults in (allocates) every page, so a client that
# declares a large sparse region would make us pay for memory it never wrote. 32 MiB holds
# the default geometry (rsize=10, bsize=2048: 4.2 MiB per queue pair) up to 7 queues.
PEER_LOCK_LIMIT = 32 << 20


def _round_up(n: int, a: int) -> int:
    return -(-n // a) * a


class RegionMap:
    """Map ``[(fd, size), ...]``; ``.mem`` is the flat array, ``.table`` int64 [n, 2] (base, size)."""

    def __init__(self, regions: list[tuple[int, int]], lock_limit: int = LOCK_LIMIT):
        self.addr = None
        layout, total = [], 0
        for fd, size in regions:
            st = os.fstat(fd)
            if size <= 0 or size > st.st_size:
                raise ValueError(f"region of {size} bytes does not fit its file ({st.st_size} bytes)")
            base = _round_up(total, _HUGE_ALIGN)  # hugetlb files need 2 MiB-aligned maps
            layout.append((fd, base, size))
            total = base + _round_up(size, mmap.PAGESIZE)
        if total > MAX_TOTAL:
            raise ValueError(f"regions total {total} bytes, more than the {MAX_TOTAL}-byte limit")
        self.total = max(total, mmap.PAGESIZE)
        addr = _libc.mmap(None, self.total, 0,  # PROT_NONE
                          mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | _MAP_NORESERVE, -1, 0)
        if addr in (None, _MAP_FAILED):
            raise OSError(ctypes.get_errno(), "mmap: cannot reserve address space for memif regions")
        self.addr = addr
        try:
            for fd, base, size in layout:
                got = _libc.mmap(addr + base, _round_up(size, mmap.PAGESIZE), mmap.PROT_READ | mmap.PROT_WRITE,
                                 mmap.MAP_SHARED | _MAP_FIXED, fd, 0)
                if got != addr + base:
                    err = ctypes.get_errno()
                    raise OSError(err, f"mmap of a {size}-byte region failed: {os.strerror(err)}")
        except BaseException:
            self.close()
            raise
        # Lock, and so fault in, every page now: otherwise the first frame through each ring
        # slot pays a shmem page fault (2-5 us measured in the VM), and a 1024-slot ring at a
        # few hundred frames/s does not wrap for seconds. When RLIMIT_MEMLOCK says no
        # (`locked` tells), still fault the pages in, without touching their contents.
        # Nothing past lock_limit, so that a peer's oversized region cannot make us allocate it.
        self.locked = False
        if total <= lock_limit:
            spans = [(ctypes.c_void_p(addr + base), ctypes.c_size_t(_round_up(size, mmap.PAGESIZE)))
                     for _, base, size in layout]
            self.locked = all(_libc.mlock(a, n) == 0 for a, n in spans)
            if not self.locked:
                for a, n in spans:
                    _libc.madvise(a, n, _MADV_POPULATE_WRITE)  # best effort (Linux 5.14+)
        self.table = np.array([(base, size) for _, base, size in layout], np.int64).reshape(-1, 2)
        self.mem = np.ctypeslib.as_array((ctypes.c_uint8 * self.total).from_address(addr))

    def close(self) -> None:
        """Unmap everything. The caller must have stopped the data path first."""
        if self.addr is not None:
            self.mem = None
            _libc.munmap(ctypes.c_void_p(self.addr), self.total)
            self.addr = None

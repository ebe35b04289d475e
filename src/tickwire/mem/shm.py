"""Shared packet memory: memfd regions, optionally on 2 MiB hugepages, locked in RAM.

A region is a file descriptor plus a mapping, so it can be handed to another
process (memif ADD_REGION, AF_XDP UMEM, VFIO DMA map) and viewed as a numpy
``uint8`` array without copying.
"""

from __future__ import annotations

import ctypes
import fcntl
import logging
import mmap
import os

import numpy as np

HUGEPAGE_2M = 2 * 1024 * 1024
_MFD_HUGE_2MB = 21 << 26
_F_ADD_SEALS, _F_GET_SEALS, _F_SEAL_SHRINK = 1033, 1034, 0x0002

_log = logging.getLogger("tickwire.mem")
_libc = ctypes.CDLL(None, use_errno=True)
_libc.mlock.argtypes = [ctypes.c_void_p, ctypes.c_size_t]


def free_hugepages() -> int:
    """Number of free 2 MiB hugepages (0 when the kernel has none reserved)."""
    try:
        with open("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages") as f:
            return int(f.read())
    except OSError:
        return 0


def create_memfd(size: int, name: str = "tickwire", hugepages: str = "auto",
                 seal: bool = False) -> tuple[int, int, bool]:
    """A new memfd of at least ``size`` bytes: (fd, actual size, on hugepages).

    ``hugepages``: "auto" uses 2 MiB pages when enough are free, "on" requires them
    (OSError naming the fix otherwise), "off" never uses them. The size of a
    hugepage-backed file is rounded up to a whole number of 2 MiB pages.
    ``seal`` adds F_SEAL_SHRINK so a peer that maps it cannot be SIGBUSed by a shrink
    (what DPDK's memif client does).
    """
    if size <= 0:
        raise ValueError(f"region size must be positive, got {size}")
    pages_needed = -(-size // HUGEPAGE_2M)
    want_huge = hugepages == "on" or (hugepages == "auto" and free_hugepages() >= pages_needed)
    if hugepages == "auto" and not want_huge:
        _log.warning("no %d free 2 MiB hugepages for %s; using 4 KiB pages "
                     "(reserve with: echo %d > /proc/sys/vm/nr_hugepages)", pages_needed, name, pages_needed + 64)
    if want_huge:
        fd = -1
        try:
            fd = os.memfd_create(name, os.MFD_CLOEXEC | os.MFD_HUGETLB | _MFD_HUGE_2MB
                                 | (os.MFD_ALLOW_SEALING if seal else 0))
            huge_size = pages_needed * HUGEPAGE_2M
            os.ftruncate(fd, huge_size)
            if seal:  # hugetlbfs memfds take seals since Linux 4.16
                fcntl.fcntl(fd, _F_ADD_SEALS, _F_SEAL_SHRINK)
            return fd, huge_size, True
        except OSError as e:
            if fd >= 0:
                os.close(fd)
            if hugepages == "on":
                raise OSError(e.errno, f"2 MiB hugepages requested but unavailable: {e.strerror}; "
                              "reserve some with: echo 64 > /proc/sys/vm/nr_hugepages") from e
    fd = os.memfd_create(name, os.MFD_CLOEXEC | (os.MFD_ALLOW_SEALING if seal else 0))
    os.ftruncate(fd, size)
    if seal:
        fcntl.fcntl(fd, _F_ADD_SEALS, _F_SEAL_SHRINK)
    return fd, size, False


def sealed_against_shrink(fd: int) -> bool:
    """Whether ``fd`` carries F_SEAL_SHRINK. A peer's region without it can be truncated
    after we map it, and the next access to a page past the new end raises SIGBUS in
    this process (mlock does not prevent it): the server refuses such regions."""
    try:
        return bool(fcntl.fcntl(fd, _F_GET_SEALS) & _F_SEAL_SHRINK)
    except OSError:  # not a memfd/shmem/hugetlbfs file: cannot be sealed
        return False


class SharedRegion:
    """An mmap'ed memfd (or a peer's fd) with a zero-copy numpy view in ``.buf``."""

    def __init__(self, fd: int, size: int, *, hugepages: bool, owner: bool, name: str):
        self.fd, self.size, self.hugepages, self.name = fd, size, hugepages, name
        try:
            self._map = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        except BaseException:
            if owner:
                os.close(fd)    # the region would have owned it: not leaked with the error
            raise
        self.buf = np.frombuffer(self._map, dtype=np.uint8)
        self.locked = False
        self._owner = owner

    @property
    def address(self) -> int:
        return self.buf.ctypes.data

    @classmethod
    def create(cls, size: int, name: str = "tickwire", hugepages: str = "auto",
               seal: bool = False, lock: bool = True) -> "SharedRegion":
        """Create a new region of at least ``size`` bytes.

        ``hugepages``: "auto" uses 2 MiB pages when enough are free, "on" requires
        them (OSError otherwise), "off" never uses them.
        """
        fd, size, huge = create_memfd(size, name, hugepages, seal)
        region = cls(fd, size, hugepages=huge, owner=True, name=name)
        if lock:
            region.lock()
        return region

    @classmethod
    def attach(cls, fd: int, size: int, name: str = "peer") -> "SharedRegion":
        """Map a region a peer created. The size is checked against the file first."""
        st = os.fstat(fd)
        if size <= 0 or size > st.st_size:
            raise ValueError(f"region {name}: declared size {size} exceeds the file size {st.st_size}")
        return cls(fd, size, hugepages=False, owner=False, name=name)

    def lock(self) -> bool:
        """mlock the region so it never pages out; False (not fatal) if RLIMIT_MEMLOCK says no."""
        self.buf[:: mmap.PAGESIZE] = self.buf[:: mmap.PAGESIZE]  # fault every page in
        self.locked = _libc.mlock(ctypes.c_void_p(self.address), ctypes.c_size_t(self.size)) == 0
        return self.locked

    def close(self) -> None:
        if self._map is None:
            return
        self.buf = None
        try:
            self._map.close()
        except BufferError:
            # A numpy view still exported elsewhere; the mapping goes when that view dies.
            pass
        self._map = None
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

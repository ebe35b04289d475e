"""An AF_XDP socket: UMEM registration, the four rings mapped into numpy, bind.

Setup order follows include/uapi/linux/if_xdp.h and net/xdp/xsk.c (and
shared/notes/af_xdp.md §5): socket -> XDP_UMEM_REG -> ring sizes -> read
XDP_MMAP_OFFSETS -> mmap each ring -> (caller pre-fills the FILL ring) -> bind.
Ring memory is handed to Numba as flat uint8 arrays; ``RingLayout`` holds the
byte offsets of producer, consumer, flags and descriptors the kernel reported
(never hard-coded: they differ between kernel versions).
"""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
import socket
import struct
import time
from dataclasses import dataclass

import numpy as np

AF_XDP, SOL_XDP = 44, 283
XDP_MMAP_OFFSETS, XDP_RX_RING, XDP_TX_RING, XDP_UMEM_REG = 1, 2, 3, 4
XDP_UMEM_FILL_RING, XDP_UMEM_COMPLETION_RING, XDP_STATISTICS, XDP_OPTIONS = 5, 6, 7, 8
XDP_SHARED_UMEM, XDP_COPY, XDP_ZEROCOPY, XDP_USE_NEED_WAKEUP = 1, 2, 4, 8
XDP_RING_NEED_WAKEUP = 1
XDP_OPTIONS_ZEROCOPY = 1
PGOFF_RX, PGOFF_TX, PGOFF_FILL, PGOFF_COMP = 0, 0x80000000, 0x100000000, 0x180000000
MAP_POPULATE = 0x8000

STAT_NAMES = ("xdp_rx_dropped", "xdp_rx_invalid_descs", "xdp_tx_invalid_descs",
              "xdp_rx_ring_full", "xdp_rx_fill_ring_empty", "xdp_tx_ring_empty")

_libc = ctypes.CDLL(None, use_errno=True)
_libc.bind.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint32]


@dataclass
class RingLayout:
    producer: int
    consumer: int
    flags: int
    desc: int
    size: int


class XskSocket:
    """Owns the socket fd and the four ring mappings. ``close()`` releases all of them."""

    def __init__(self, umem_addr: int, umem_len: int, chunk: int,
                 rx_size: int, tx_size: int, fill_size: int, comp_size: int):
        self._maps: list[mmap.mmap] = []
        self.sock = socket.socket(AF_XDP, socket.SOCK_RAW, 0)
        try:
            # struct xdp_umem_reg: addr u64, len u64, chunk_size u32, headroom u32, flags u32, tx_metadata_len u32
            self.sock.setsockopt(SOL_XDP, XDP_UMEM_REG, struct.pack("<QQIIII", umem_addr, umem_len, chunk, 0, 0, 0))
            for opt, n in ((XDP_UMEM_FILL_RING, fill_size), (XDP_UMEM_COMPLETION_RING, comp_size),
                           (XDP_RX_RING, rx_size), (XDP_TX_RING, tx_size)):
                self.sock.setsockopt(SOL_XDP, opt, struct.pack("<I", n))
            offs = struct.unpack("<16Q", self.sock.getsockopt(SOL_XDP, XDP_MMAP_OFFSETS, 128))
            # order in struct xdp_mmap_offsets: rx, tx, fr (fill), cr (completion); each {producer, consumer, desc, flags}
            def layout(i, n):
                p, c, d, f = offs[4 * i:4 * i + 4]
                return RingLayout(p, c, f, d, n)
            self.rx_l, self.tx_l = layout(0, rx_size), layout(1, tx_size)
            self.fill_l, self.comp_l = layout(2, fill_size), layout(3, comp_size)
            self.rx = self._map(PGOFF_RX, self.rx_l, 16)
            self.tx = self._map(PGOFF_TX, self.tx_l, 16)
            self.fill = self._map(PGOFF_FILL, self.fill_l, 8)
            self.comp = self._map(PGOFF_COMP, self.comp_l, 8)
        except BaseException:
            self.close()
            raise

    def _map(self, pgoff: int, lay: RingLayout, entry: int) -> np.ndarray:
        m = mmap.mmap(self.sock.fileno(), lay.desc + lay.size * entry, mmap.MAP_SHARED | MAP_POPULATE,
                      mmap.PROT_READ | mmap.PROT_WRITE, offset=pgoff)
        self._maps.append(m)
        return np.frombuffer(m, np.uint8)

    def fileno(self) -> int:
        return self.sock.fileno()

    def bind(self, ifindex: int, queue: int, flags: int) -> None:
        # struct sockaddr_xdp: family u16, flags u16, ifindex u32, queue_id u32, shared_umem_fd u32.
        # Python's socket.bind cannot encode it, hence libc.
        sa = ctypes.create_string_buffer(struct.pack("<HHIII", AF_XDP, flags, ifindex, queue, 0), 16)
        if _libc.bind(self.sock.fileno(), sa, 16) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))

    def zerocopy_active(self) -> bool:
        return bool(struct.unpack("<I", self.sock.getsockopt(SOL_XDP, XDP_OPTIONS, 4))[0] & XDP_OPTIONS_ZEROCOPY)

    def statistics(self) -> dict[str, int]:
        raw = self.sock.getsockopt(SOL_XDP, XDP_STATISTICS, 48)
        vals = struct.unpack("<6Q", raw.ljust(48, b"\0"))
        return dict(zip(STAT_NAMES, vals))

    def close(self) -> None:
        # numpy views keep the mmap exported; drop ours, then unmap (or leave it to GC).
        self.rx = self.tx = self.fill = self.comp = None
        for m in self._maps:
            try:
                m.close()
            except BufferError:
                pass
        self._maps = []
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def bind_when_released(xsk: XskSocket, ifindex: int, queue: int, flags: int, wait_s: float) -> int:
    """Bind, waiting up to ``wait_s`` for the queue's previous AF_XDP socket to be released.

    The kernel frees a closed socket's claim on its queue asynchronously: the socket is
    SOCK_RCU_FREE, its destructor drops the buffer pool with xp_put_pool(), which
    schedules xp_release_deferred() on a workqueue, and only that work clears the queue's
    pool slot (xp_clear_dev(), under rtnl_lock) -- net/xdp/xsk.c, net/xdp/xsk_buff_pool.c.
    Until then bind() fails with EBUSY, even though the previous owner (this process, or
    a process already reaped) is gone; measured up to 0.7 s on a loaded VM, longer when
    other rtnl users (namespace deletion) are busy. A failed bind leaves the socket
    unbound with its UMEM and rings intact, so the same socket is simply bound again.
    The wait polls the condition (the bind itself) with growing pauses, bounded by
    ``wait_s``; a queue still held after that is reported as EBUSY (a live owner).
    Returns the number of EBUSY retries."""
    deadline = time.monotonic() + wait_s
    pause = 0.001
    retries = 0
    while True:
        try:
            xsk.bind(ifindex, queue, flags)
            return retries
        except OSError as e:
            if e.errno != errno.EBUSY or time.monotonic() + pause > deadline:
                raise
        retries += 1
        time.sleep(pause)
        pause = min(pause * 2, 0.05)

"""memif client (DPDK role=client, VPP "slave"): creates all shared memory.

Handshake (shared/notes/memif.md §2), lock-step, one reply per message:
    server: HELLO            client: INIT                 server: ACK
    client: ADD_REGION+memfd server: ACK
    client: ADD_RING+eventfd server: ACK   (all C2S rings, then all S2C rings)
    client: CONNECT          server: CONNECTED  -> link up
Region 0 layout: [C2S rings][S2C rings][buffers], ring_bytes = 128 + 16 * 2^rsize.
If the server is not there (yet) or goes away, poll() retries every RETRY_S.
"""

from __future__ import annotations

import os
import socket
import time

import numpy as np

from ...mem.regionmap import RegionMap
from ...mem.shm import create_memfd
from . import proto
from .channel import unix_address
from .port import MemifPort

RETRY_S = 0.2


class MemifClient(MemifPort):
    def __init__(self, cfg, pool, spec):
        super().__init__(cfg, pool, spec)
        self._map = None
        self._fd = -1
        self._efds: list[int] = []
        self._pending: list[tuple[bytes, int | None]] = []
        self._phase = "idle"
        self._next_try = 0.0
        self._try_connect()

    # --- connection -----------------------------------------------------------------
    def _try_connect(self) -> None:
        self._next_try = time.monotonic() + RETRY_S
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            sock.connect(unix_address(self.cfg.socket, self.cfg.abstract))
        except OSError as e:
            sock.close()
            if self._phase != "waiting":
                self._event(f"server not reachable at {self.cfg.socket} ({e.strerror}); retrying")
            self._phase = "waiting"
            return
        self._open_channel(sock)
        self._phase = "hello"

    def _poll_control(self) -> None:
        if self._closed:
            return
        if self.chan is None:
            if time.monotonic() >= self._next_try:
                self._try_connect()
            if self.chan is None:
                return
        self._pump(self._on_message)

    def _send_next(self) -> None:
        msg, fd = self._pending.pop(0)
        self.chan.send(msg, fd)

    def _on_message(self, msg_type, payload, fd) -> None:
        if fd is not None:
            os.close(fd)
            raise proto.ProtocolError(f"unexpected file descriptor with {proto.TYPE_NAMES[msg_type]}")
        if self._phase == "hello" and msg_type == proto.HELLO:
            self._on_hello(payload)
        elif self._phase == "handshake" and msg_type == proto.ACK:
            self._send_next()
            if not self._pending:
                self._phase = "connect"
        elif self._phase == "connect" and msg_type == proto.CONNECTED:
            self.peer_name = payload
            self._link()
        else:
            raise proto.ProtocolError(f"unexpected {proto.TYPE_NAMES[msg_type]} during {self._phase}")

    def _on_hello(self, h: proto.Hello) -> None:
        q, cfg = self.cfg.queues, self.cfg
        if not (h.min_version <= proto.VERSION <= h.max_version):
            raise proto.ProtocolError(f"Unsupported version {h.min_version:#x}..{h.max_version:#x}")
        if q > h.max_c2s_ring + 1 or q > h.max_s2c_ring + 1:
            raise proto.ProtocolError(f"server allows {h.max_c2s_ring + 1} queues, {q} requested")
        if cfg.rsize > h.max_log2_ring_size:
            raise proto.ProtocolError(f"server allows ring log2 {h.max_log2_ring_size}, {cfg.rsize} requested")
        self.peer_name = h.name
        self._build_region()
        rb = proto.ring_bytes(cfg.rsize)
        self._pending = [(proto.add_region(0, self._region_size), self._fd)]
        for g in range(2 * q):  # C2S rings 0..q-1 first, then S2C (DPDK's order)
            self._pending.append((proto.add_ring(g < q, g % q, 0, g * rb, cfg.rsize), self._efds[g]))
        self._pending.append((proto.connect(cfg.name), None))
        self._phase = "handshake"
        self.chan.send(proto.init(cfg.id, cfg.name, cfg.secret))

    # --- shared memory ------------------------------------------------------------------
    def _build_region(self) -> None:
        cfg, q = self.cfg, self.cfg.queues
        n = 1 << cfg.rsize
        rb = proto.ring_bytes(cfg.rsize)
        self._buf_offset = 2 * q * rb
        size = cfg.region_bytes()  # at most 2^32 (MemifConfig): offsets fit memif's u32
        self._fd, self._region_size, _ = create_memfd(size, "memif_region_0", cfg.hugepages, seal=True)
        self._map = RegionMap([(self._fd, self._region_size)])
        mem = self._map.mem
        self._efds = [os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC) for _ in range(2 * q)]
        for g in range(2 * q):
            ring = proto.RingView(mem, g * rb, cfg.rsize)
            ring.cookie = proto.COOKIE
            # initial descriptors: slot j of global ring g owns buffer g*n + j (notes §3)
            ring.desc["length"] = cfg.bsize
            ring.desc["offset"] = self._buf_offset + (g * n + np.arange(n)) * cfg.bsize

    def _link(self) -> None:
        cfg, q = self.cfg, self.cfg.queues
        rb, n = proto.ring_bytes(cfg.rsize), 1 << cfg.rsize
        mem = self._map.mem
        for g in range(2 * q):
            ring = proto.RingView(mem, g * rb, cfg.rsize)
            ring.tail = 0
            rx_ring = g >= q
            # Post every S2C buffer at once, so the server can send before our first rx_burst;
            # MASK_INT on the rings we receive on tells the server not to kick us.
            ring.head = n if rx_ring else 0
            if rx_ring:  # the flags of our TX rings belong to the server
                ring.flags = 0 if cfg.interrupt else proto.RING_FLAG_MASK_INT
        tx = [(g * rb, cfg.rsize) for g in range(q)]
        rx = [((q + i) * rb, cfg.rsize) for i in range(q)]
        buf0 = [self._buf_offset + g * n * cfg.bsize for g in range(2 * q)]
        self._phase = "up"
        self._bring_up(mem, self._map.table, rx, tx, self._efds[q:], self._efds[:q], buf0[q:], buf0[:q])

    def _teardown_session(self) -> None:
        self._close_channel_and_map()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        for fd in self._efds:
            os.close(fd)
        self._efds, self._pending = [], []
        self._phase = "waiting"
        self._next_try = time.monotonic() + RETRY_S

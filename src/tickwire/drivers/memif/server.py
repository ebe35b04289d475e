"""memif server (DPDK role=server, VPP "master"): listens, allocates nothing,
maps what the client sends.

Every value in the client's messages is checked before use (region index order,
region size against the file, ring index against our queue count, ring placement
inside its region, log2 size, the cookie of every ring at CONNECT). A violation
answers DISCONNECT with the reason, closes every fd received, and the server goes
back to listening (notes §2, step 7: reconnect works).
"""

from __future__ import annotations

import fcntl
import os
import socket
import stat

from ...mem.regionmap import PEER_LOCK_LIMIT, RegionMap
from ...mem.shm import sealed_against_shrink
from . import proto
from .channel import Channel, PeerGone, unix_address
from .port import MemifPort


class MemifServer(MemifPort):
    def __init__(self, cfg, pool, spec):
        super().__init__(cfg, pool, spec)
        addr = unix_address(cfg.socket, cfg.abstract)
        if not cfg.abstract and os.path.exists(cfg.socket):
            if not stat.S_ISSOCK(os.stat(cfg.socket).st_mode):
                raise ValueError(f"memif: {cfg.socket} exists and is not a socket")
            if _someone_listens(cfg.socket):
                # unlinking it would leave that server up but unreachable
                raise ValueError(f"memif: a server already listens on {cfg.socket}")
            os.unlink(cfg.socket)  # stale socket from an earlier run
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.listener.bind(addr)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.listener.listen(1)
        self.listener.setblocking(False)
        self._reset_session()

    def _reset_session(self) -> None:
        self._phase = "idle"
        self._regions: list[tuple[int, int]] = []   # (fd, size)
        self._rings: dict[tuple[bool, int], tuple[proto.AddRing, int]] = {}  # (c2s, index) -> (msg, eventfd)
        self._map = None

    # --- control ---------------------------------------------------------------------
    def _poll_control(self) -> None:
        if self._closed:
            return
        while True:
            try:
                sock, _ = self.listener.accept()
            except BlockingIOError:
                break
            if self.chan is not None:
                extra = Channel(sock)
                extra.say_goodbye("Connection already established")
                extra.close()
                self._event("refused a second client: already connected")
                continue
            self._open_channel(sock)
            self._phase = "init"
            q = self.cfg.queues - 1
            try:
                self.chan.send(proto.hello(f"tickwire {self.cfg.name}", proto.MAX_REGIONS - 1, q, q,
                                           proto.MAX_LOG2_RING))
            except PeerGone as e:  # connected and closed before we answered: listen again
                self._disconnect(str(e), tell_peer=False)
        if self.chan is not None:
            self._pump(self._on_message)

    def _on_message(self, msg_type, payload, fd) -> None:
        expects_fd = msg_type in (proto.ADD_REGION, proto.ADD_RING)
        if fd is not None and not expects_fd:
            os.close(fd)
            raise proto.ProtocolError(f"unexpected file descriptor with {proto.TYPE_NAMES[msg_type]}")
        try:
            if self._phase == "init" and msg_type == proto.INIT:
                self._on_init(payload)
            elif self._phase == "setup" and msg_type == proto.ADD_REGION:
                self._on_add_region(payload, fd)
                fd = None
            elif self._phase == "setup" and msg_type == proto.ADD_RING:
                self._on_add_ring(payload, fd)
                fd = None
            elif self._phase == "setup" and msg_type == proto.CONNECT:
                self.peer_name = payload
                self._on_connect()
                return
            else:
                raise proto.ProtocolError(f"unexpected {proto.TYPE_NAMES[msg_type]} during {self._phase}")
        finally:
            if fd is not None:  # refused, or not ours to keep: handlers never close fds themselves
                os.close(fd)
        self.chan.send(proto.ack())

    def _on_init(self, m: proto.Init) -> None:
        if m.version != proto.VERSION:
            raise proto.ProtocolError(f"Unsupported version {m.version:#x}")
        if m.id != self.cfg.id:
            raise proto.ProtocolError("ID not found")
        if m.mode != proto.MODE_ETHERNET:
            raise proto.ProtocolError("Only ethernet mode supported")
        if self.cfg.secret and m.secret != self.cfg.secret:
            raise proto.ProtocolError("Incorrect secret" if m.secret else "Secret required")
        self.peer_name = m.name
        self._phase = "setup"

    def _on_add_region(self, m: proto.AddRegion, fd: int | None) -> None:
        if fd is None:
            raise proto.ProtocolError("Missing region fd")
        if m.index != len(self._regions) or m.index >= proto.MAX_REGIONS:
            raise proto.ProtocolError(f"Invalid region index {m.index} (expected {len(self._regions)})")
        try:
            file_size = os.fstat(fd).st_size
        except OSError:
            file_size = -1
        if m.size == 0 or m.size > file_size:
            raise proto.ProtocolError(f"Invalid region size {m.size} (file holds {file_size})")
        if not self.cfg.allow_unsealed and not sealed_against_shrink(fd):
            raise proto.ProtocolError("Region not sealed against shrinking (F_SEAL_SHRINK): the peer could "
                                      "truncate it under the data path (SIGBUS); unsealed=allow accepts it")
        self._regions.append((fd, m.size))

    def _on_add_ring(self, m: proto.AddRing, fd: int | None) -> None:
        if fd is None:
            raise proto.ProtocolError("Missing interrupt fd")
        problem = None
        if m.index >= self.cfg.queues:
            problem = "Invalid ring index"
        elif (m.c2s, m.index) in self._rings:
            problem = f"Ring {m.index} added twice"
        elif m.region >= len(self._regions):
            problem = f"Invalid region {m.region}"
        elif not 1 <= m.log2_size <= proto.MAX_LOG2_RING:
            problem = f"Invalid ring size log2 {m.log2_size}"
        elif m.private_hdr_size != 0:
            problem = "Private headers not supported"
        elif m.offset + proto.ring_bytes(m.log2_size) > self._regions[m.region][1]:
            problem = "Ring outside its region"
        elif not _is_eventfd(fd):
            # our TX burst writes its kick to this fd with the GIL held: a pipe or socket
            # would block it once full (memif.h: the interrupt fd is an eventfd)
            problem = "Interrupt fd is not an eventfd"
        if problem:
            raise proto.ProtocolError(problem)
        # non-blocking, so a kick to an eventfd the peer left at its maximum fails (counted
        # as irq_failed) instead of blocking (eventfd(2): write blocks or fails with EAGAIN)
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_NONBLOCK)
        self._rings[(m.c2s, m.index)] = (m, fd)

    def _on_connect(self) -> None:
        counts = []
        for c2s in (True, False):
            k = 0
            while (c2s, k) in self._rings:
                k += 1
            if k == 0 or k != sum(1 for key in self._rings if key[0] == c2s):
                raise proto.ProtocolError("Missing rings")
            counts.append(k)
        try:
            self._map = RegionMap(self._regions, PEER_LOCK_LIMIT)  # not the client's whole declared size
        except (OSError, ValueError) as e:
            raise proto.ProtocolError(f"Cannot map regions: {e}") from None
        mem, table = self._map.mem, self._map.table

        def placed(c2s, i):
            m, efd = self._rings[(c2s, i)]
            off = int(table[m.region, 0]) + m.offset
            ring = proto.RingView(mem, off, m.log2_size)
            if ring.cookie != proto.COOKIE:
                raise proto.ProtocolError("Wrong cookie")
            ring.head = ring.tail = 0
            if c2s:  # we receive on C2S rings: MASK_INT asks the client not to kick us
                ring.flags = 0 if self.cfg.interrupt else proto.RING_FLAG_MASK_INT
            return off, m.log2_size, efd

        rx = [placed(True, i) for i in range(counts[0])]
        tx = [placed(False, i) for i in range(counts[1])]
        self.chan.send(proto.connected(self.cfg.name))
        self._phase = "up"
        zeros = [0] * max(len(rx), len(tx))
        self._bring_up(mem, table, [(o, l) for o, l, _ in rx], [(o, l) for o, l, _ in tx],
                       [e for _, _, e in rx], [e for _, _, e in tx], zeros, zeros)

    def _teardown_session(self) -> None:
        self._close_channel_and_map()
        for fd, _ in self._regions:
            os.close(fd)
        for _, fd in self._rings.values():
            os.close(fd)
        self._reset_session()

    def _close_role(self) -> None:
        self.listener.close()
        if not self.cfg.abstract:
            try:
                os.unlink(self.cfg.socket)
            except FileNotFoundError:
                pass


def _is_eventfd(fd: int) -> bool:
    """True if ``fd`` is an eventfd (its /proc/self/fd link names the anon inode, proc(5))."""
    try:
        return os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:[eventfd]"
    except OSError:
        return False


def _someone_listens(path: str) -> bool:
    """True if a process accepts connections on the socket file ``path``. Non-blocking, so
    a live server whose backlog is full answers EAGAIN instead of blocking us; only
    ECONNREFUSED (nobody bound: a stale file, unix(7)) means the path is free to reuse."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    probe.setblocking(False)
    try:
        probe.connect(path)
    except (ConnectionRefusedError, FileNotFoundError):
        return False
    except OSError:
        return True  # EAGAIN (backlog full), EPROTOTYPE (a stream server): someone is there
    finally:
        probe.close()
    return True

"""MemifPort: what both roles share — link state, teardown, events, the data-path
state handed to Numba, and turning a data-path violation into a DISCONNECT.

The role-specific handshakes live in client.py and server.py.
"""

from __future__ import annotations

import collections
import os
import select
import time

import numpy as np

from ..counters import Counters
from ..port import Port
from ..spec import SpecError
from . import proto
from .channel import Channel, PeerGone
from .datapath import (BSIZE, CFG_LEN, ERROR, ERROR_REASONS, EXTRA_COUNTERS, LINK, N_REGIONS, ROLE, SERVER, Q_BUF0, Q_EFD, Q_FIELDS,
                       Q_LAST, Q_RING, Q_SIZE, MemifState, empty_state)


class MemifConfig:
    def __init__(self, args):
        self.socket = args.str("socket", "/run/memif.sock")
        self.role = args.choice("role", ("client", "server"), "client")
        self.id = args.int("id", 0, 0, 2**32 - 1)
        self.rsize = args.int("rsize", 10, 1, proto.MAX_LOG2_RING)
        self.bsize = args.int("bsize", 2048, 64, 65535)
        self.secret = args.str("secret", "").encode()
        if len(self.secret) > proto.SECRET_LEN:
            raise ValueError(f"memif: secret longer than {proto.SECRET_LEN} bytes")
        self.queues = args.int("queues", 1, 1, proto.MAX_QUEUES)
        self.abstract = args.bool("abstract", False)
        self.interrupt = args.choice("rx", ("poll", "interrupt"), "poll") == "interrupt"
        self.hugepages = args.choice("hugepages", ("auto", "on", "off"), "off")
        self.name = args.str("name", "tickwire")
        # server: a client region without F_SEAL_SHRINK can be truncated under us (SIGBUS);
        # DPDK's copy-mode client seals its memfds, its zero-copy client hands hugepage
        # files that it does not seal: unsealed=allow trusts such a peer
        self.allow_unsealed = args.choice("unsealed", ("refuse", "allow"), "refuse") == "allow"
        args.finish()
        if self.role == "client" and self.region_bytes() > 2**32:
            # descriptor offsets are u32 (memif.h memif_desc_t): past 4 GiB they would wrap
            # and the buffers of later rings would alias the first ones
            raise SpecError(f"memif: queues={self.queues},rsize={self.rsize},bsize={self.bsize} makes a "
                            f"{self.region_bytes()}-byte region; descriptor offsets are 32-bit (max 2^32)")

    def region_bytes(self) -> int:
        """The client's region 0: [C2S rings][S2C rings][buffers] (client.py)."""
        return 2 * self.queues * (proto.ring_bytes(self.rsize) + self.bsize * (1 << self.rsize))


class MemifPort(Port):
    # A peer must finish the handshake within this many seconds of connecting: the server
    # serves one client at a time, so a silent one would hold the slot forever, and a
    # client whose server never answers would never retry.
    handshake_timeout = 10.0

    def __init__(self, cfg: MemifConfig, pool, spec: str):
        self.cfg, self.pool, self.spec = cfg, pool, spec
        self.counters = Counters(EXTRA_COUNTERS)
        self._cfg = np.zeros(CFG_LEN, np.int64)
        self._cfg[ROLE] = SERVER if cfg.role == "server" else 0
        self._cfg[BSIZE] = cfg.bsize
        self._sel = np.zeros(2, np.int64)   # (rx queue, tx queue) used by rx_burst/tx_burst
        self.rx_queues = self.tx_queues = 0
        self.state = empty_state(self._cfg, self.counters.array)
        self.events: collections.deque[str] = collections.deque(maxlen=64)
        self.last_error = ""
        self.peer_name = ""
        self.chan: Channel | None = None
        self._map = None  # the role's RegionMap while a session is mapped
        self._closed = False
        self._handshake_deadline = 0.0
        self._last_poll = time.monotonic()

    # --- link state --------------------------------------------------------------
    @property
    def link_up(self) -> bool:
        return bool(self._cfg[LINK])

    def wait_link(self, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while not self.link_up and time.monotonic() < deadline:
            self.poll()
            if not self.link_up:
                time.sleep(0.001)
        return self.link_up

    def _event(self, text: str) -> None:
        self.events.append(f"{time.strftime('%H:%M:%S')} {text}")

    def _bring_up(self, mem, regions_table, rx_rings, tx_rings, efds_rx, efds_tx, buf0_rx, buf0_tx) -> None:
        """Publish a new data-path state. rings: lists of (flat offset, log2 size)."""
        def table(rings, efds, buf0):
            t = np.zeros((len(rings), Q_FIELDS), np.int64)
            for i, (off, log2) in enumerate(rings):
                t[i, Q_RING], t[i, Q_SIZE], t[i, Q_LAST] = off, 1 << log2, 0
                t[i, Q_BUF0], t[i, Q_EFD] = buf0[i], efds[i]
            return t
        self._cfg[ERROR] = 0
        self._cfg[N_REGIONS] = len(regions_table)
        self.state = MemifState(mem, regions_table, table(rx_rings, efds_rx, buf0_rx),
                                table(tx_rings, efds_tx, buf0_tx), self._cfg, self.counters.array,
                                self._sel, np.zeros(1, np.uint64))
        self._sel[:] = 0
        self.rx_queues, self.tx_queues = len(rx_rings), len(tx_rings)
        self._cfg[LINK] = 1
        self.counters.bump("connects")
        self._event(f"connected to {self.peer_name!r}")

    def _bring_down(self) -> None:
        """Stop the data path *before* any memory it uses goes away."""
        self._cfg[LINK] = 0
        self.state = empty_state(self._cfg, self.counters.array)

    # --- errors --------------------------------------------------------------------
    def _disconnect(self, reason: str, tell_peer: bool = True, protocol_error: bool = False) -> None:
        was_up = self.link_up
        if self.chan is not None and tell_peer:
            self.chan.say_goodbye(reason)      # the reason stays in last_error either way
        self.last_error = reason
        if protocol_error:
            self.counters.bump("protocol_errors")
        if was_up or self.chan is not None:
            self.counters.bump("disconnects")
        self._event(f"disconnected: {reason}")
        self._bring_down()
        self._teardown_session()

    def _teardown_session(self) -> None:
        raise NotImplementedError

    def _close_channel_and_map(self) -> None:
        """What both roles' teardowns release first: the control socket and the mapping
        (the data path was stopped before, in _bring_down)."""
        if self.chan is not None:
            self.chan.close()
            self.chan = None
        if self._map is not None:
            self._map.close()
            self._map = None

    def _check_datapath(self) -> None:
        code = int(self._cfg[ERROR])
        if code and self.link_up:
            self._disconnect(f"peer violated the ring protocol: {ERROR_REASONS.get(code, code)}",
                             protocol_error=True)

    def _open_channel(self, sock) -> None:
        """A new control connection: the handshake on it must finish in handshake_timeout."""
        self.chan = Channel(sock)
        self._handshake_deadline = time.monotonic() + self.handshake_timeout

    def _check_handshake(self, since_last_poll: float) -> None:
        if self.chan is None or self.link_up:
            return
        if since_last_poll > 0.1:
            # we were away (compiling, another loop): the peer's answer may be waiting
            # unread; our own absence is not the peer's silence
            self._handshake_deadline += since_last_poll
        if time.monotonic() > self._handshake_deadline:
            self.counters.bump("handshake_timeouts")
            self._disconnect(f"handshake timeout ({self.handshake_timeout:g} s)")

    def poll(self) -> None:
        now = time.monotonic()
        self._check_datapath()
        self._check_handshake(now - self._last_poll)
        self._last_poll = now
        self._poll_control()

    def _poll_control(self) -> None:
        raise NotImplementedError

    def _pump(self, handle) -> None:
        """Deliver every pending control message to ``handle(type, payload, fd)``."""
        while self.chan is not None:
            try:
                got = self.chan.recv()
            except PeerGone as e:
                self._disconnect(str(e), tell_peer=False)
                return
            except proto.ProtocolError as e:
                self._disconnect(str(e), protocol_error=True)
                return
            if got is None:
                return
            msg_type, payload, fd = got
            if msg_type == proto.DISCONNECT:
                if fd is not None:
                    os.close(fd)
                self._disconnect(f"peer disconnected: {payload.reason or 'no reason given'}", tell_peer=False)
                return
            try:
                handle(msg_type, payload, fd)
            except PeerGone as e:  # our reply found the socket closed
                self._disconnect(str(e), tell_peer=False)
                return
            except proto.ProtocolError as e:
                self._disconnect(str(e), protocol_error=True)
                return

    # --- interrupts -------------------------------------------------------------------
    def rx_eventfds(self) -> list[int]:
        return [int(fd) for fd in self.state.rxq[:, Q_EFD] if fd >= 0] if self.link_up else []

    def wait_rx(self, timeout: float) -> bool:
        """Sleep until the peer signals an RX ring (interrupt mode) or timeout; True if signalled."""
        fds = self.rx_eventfds()
        if not fds:
            time.sleep(timeout)
            return False
        ready, _, _ = select.select(fds, [], [], timeout)
        for fd in ready:
            try:
                os.read(fd, 8)
            except BlockingIOError:
                pass
        return bool(ready)

    # --- multi-queue ------------------------------------------------------------------
    def select_queue(self, rx: int, tx: int | None = None) -> None:
        """Make rx_burst/tx_burst use queue ``rx`` / ``tx`` (DPDK's queue_id)."""
        tx = rx if tx is None else tx
        if not (0 <= rx < self.rx_queues and 0 <= tx < self.tx_queues):
            raise ValueError(f"memif: queue ({rx}, {tx}) not connected ({self.rx_queues} rx, {self.tx_queues} tx)")
        self._sel[0], self._sel[1] = rx, tx

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.chan is not None:
            self._disconnect("interface closed")
        self._bring_down()
        self._teardown_session()
        self._close_role()

    def _close_role(self) -> None:
        pass

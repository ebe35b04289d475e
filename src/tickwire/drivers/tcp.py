"""``tcp:`` port: a kernel TCP connection behind the Port contract (the baseline).

    tcp:connect=HOST:PORT[,nodelay=on][,timeout=5][,sndbuf=BYTES][,rcvbuf=BYTES][,busy_poll=USEC]
    tcp:listen=IP:PORT[,nodelay=on][,sndbuf=BYTES][,rcvbuf=BYTES][,busy_poll=USEC]

* A buffer holds one **chunk of the byte stream** (whatever one recv() returned),
  not a frame and not a message: framing is the protocol layer's job, exactly as
  with a kernel socket.
* ``listen=`` accepts one connection; ``poll()`` accepts it without blocking, and
  ``link_up`` says whether a connection exists.
* tx_burst writes each buffer; when the kernel takes only part of one (socket
  buffer full), the buffer is trimmed to the unsent rest (``data_off``/``data_len``
  advanced), counted as ``tx_partial``, and stays with the caller, so the stream
  never loses or reorders a byte.
* The peer closing (recv() == 0) or resetting sets ``peer_closed``; ``link_up``
  becomes False and later sends are dropped and counted (``tx_errors``).
"""

from __future__ import annotations

import socket
from collections import namedtuple

import numpy as np

from ..mem.hotpath import hot
from ..mem.mempool import BUF_SIZE
from .counters import Counters, RX_BYTES, RX_PACKETS
from .libc_calls import EAGAIN, EINTR, MSG_DONTWAIT, MSG_NOSIGNAL, sys_errno
from .port import Port, register_burst
from .sock_common import (PEER_CLOSED, RX_ERRORS, SO_BUSY_POLL, SOCK_EXTRA, parse_hostport, sock_recv_into_new_buf,
                          sock_tx_burst)
from .spec import SpecArgs, SpecError

TcpState = namedtuple("TcpState", "cfg counters scratch")
C_FD, C_CLOSED = 0, 1             # sock_tx_burst reads cfg[1] as C_CLOSED


@hot
def tcp_rx_burst(st, pool, bufs, n):
    cfg, cnt = st.cfg, st.counters
    if cfg[C_FD] < 0 or cfg[C_CLOSED] != 0:
        return 0
    got = 0
    nbytes = 0
    limit = min(np.int64(n), np.int64(bufs.shape[0]))
    while got < limit:
        st.scratch[16] = 0                 # addrlen 0: a connected stream has no source address to report
        b, r = sock_recv_into_new_buf(cfg[C_FD], pool, cnt, MSG_DONTWAIT, st.scratch)
        if b < 0:
            break
        if r == 0:
            cfg[C_CLOSED] = 1
            cnt[PEER_CLOSED] += 1
            break
        if r < 0:
            e = sys_errno()
            if e != EAGAIN and e != EINTR:
                cfg[C_CLOSED] = 1          # ECONNRESET, ETIMEDOUT, ...: the stream is over
                cnt[RX_ERRORS] += 1
            break
        pool.data_len[b] = r
        bufs[got] = b
        got += 1
        nbytes += r
    cnt[RX_PACKETS] += got
    cnt[RX_BYTES] += nbytes
    return got


@hot
def tcp_tx_burst(st, pool, bufs, n):
    # scratch as the (unused, length 0) address: a connected stream
    return sock_tx_burst(st.cfg, st.counters, pool, bufs, n, MSG_DONTWAIT | MSG_NOSIGNAL, st.scratch, 0,
                         pool.meta[BUF_SIZE], True)


register_burst(TcpState, tcp_rx_burst, tcp_tx_burst)


class TcpPort(Port):
    def __init__(self, args: SpecArgs, pool, spec: str):
        self.spec, self.pool = spec, pool
        has_c, has_l = "connect" in args._args, "listen" in args._args
        if has_c == has_l:
            raise SpecError("tcp: give exactly one of connect=HOST:PORT or listen=IP:PORT")
        target = parse_hostport("tcp", "connect" if has_c else "listen", args.str("connect" if has_c else "listen"))
        self.nodelay = args.bool("nodelay", True)
        timeout = args.int("timeout", 5, lo=0, hi=3600)
        busy = args.int("busy_poll", 0, lo=0, hi=1_000_000)
        self._bufs = (args.int("sndbuf", 0, lo=0), args.int("rcvbuf", 0, lo=0))
        args.finish()
        self.counters = Counters(SOCK_EXTRA)
        self._busy = busy
        self.listener = self.conn = None
        cfg = np.zeros(4, np.int64)
        cfg[C_FD] = -1
        self.state = TcpState(cfg, self.counters.array, np.zeros(32, np.uint8))
        if has_c:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.settimeout(timeout or None)
            try:
                s.connect(target)
            except OSError as e:
                s.close()
                raise OSError(e.errno, f"tcp: cannot connect to {target[0]}:{target[1]}: {e.strerror or e} "
                              f"(is the peer listening, and reachable from this namespace?)") from None
            self._adopt(s)
        else:
            ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                ls.bind(target)
            except OSError as e:
                ls.close()
                raise OSError(e.errno, f"tcp: cannot listen on {target[0]}:{target[1]}: {e.strerror}") from None
            ls.listen(1)
            ls.setblocking(False)
            self.listener = ls
        self.local = (self.conn or self.listener).getsockname()

    def _adopt(self, s: socket.socket) -> None:
        try:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, int(self.nodelay))
            if self._busy:      # EPERM without CAP_NET_ADMIN
                s.setsockopt(socket.SOL_SOCKET, SO_BUSY_POLL, self._busy)
            if self._bufs[0]:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self._bufs[0])
            if self._bufs[1]:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self._bufs[1])
            s.setblocking(False)
        except OSError as e:
            s.close()           # not leaked with the error
            raise OSError(e.errno, f"tcp: cannot set up the connection: {e.strerror}") from None
        self.conn = s
        self.state.cfg[C_CLOSED] = 0
        self.state.cfg[C_FD] = s.fileno()

    def poll(self) -> None:
        """Accept the pending connection (listen mode); release a connection the peer closed."""
        if self.conn is not None and self.state.cfg[C_CLOSED]:
            self.state.cfg[C_FD] = -1
            self.conn.close()
            self.conn = None
        if self.conn is None and self.listener is not None:
            try:
                s, _ = self.listener.accept()
            except (BlockingIOError, ConnectionAbortedError):   # nothing, or the peer gave up first
                return
            self._adopt(s)

    def wait_connected(self, timeout: float = 5.0) -> bool:
        import time
        t_end = time.monotonic() + timeout
        while not self.link_up and time.monotonic() < t_end:
            self.poll()
            time.sleep(0.001)
        return self.link_up

    @property
    def link_up(self) -> bool:
        return self.conn is not None and not self.state.cfg[C_CLOSED]

    def close(self) -> None:
        for attr in ("conn", "listener"):
            s = getattr(self, attr, None)
            if s is not None:
                s.close()
                setattr(self, attr, None)
        if getattr(self, "state", None) is not None:
            self.state.cfg[C_FD] = -1


def open(args: SpecArgs, pool, spec: str) -> TcpPort:  # noqa: A001
    return TcpPort(args, pool, spec)

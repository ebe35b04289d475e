"""``udp:`` port: a kernel UDP socket behind the Port contract (the baseline).

    udp:bind=IP:PORT[,group=239.1.1.1][,iface=IP][,connect=IP:PORT][,busy_poll=USEC][,rcvbuf=BYTES]

* A buffer holds one UDP **payload** (no Ethernet/IP/UDP headers): rx_burst gives
  datagram payloads, tx_burst sends each buffer's bytes as one datagram.
* ``group=`` joins an IPv4 multicast group on the interface that owns ``iface=``
  (default: any); bind to the group's port.
* Destination of tx_burst: ``connect=`` if given (sent with sendto(); the socket
  is not connect(2)ed, so it keeps receiving from everyone) (multicast allowed: set ``iface=``
  for the outgoing interface), otherwise the sender of the latest received
  datagram (echo/reply semantics); with neither, the datagram is dropped and counted
  as ``tx_no_dest``.
* A datagram larger than the buffer room is dropped and counted (``rx_too_long``),
  never truncated silently (MSG_TRUNC reports the real length).
"""

from __future__ import annotations

import socket
from collections import namedtuple

import numpy as np

from ..mem.atomics import load_u32
from ..mem.hotpath import hot
from ..mem.mempool import BUF_SIZE, pool_free
from .counters import Counters, RX_BYTES, RX_PACKETS, RX_TOO_LONG
from .libc_calls import EAGAIN, MSG_DONTWAIT, sys_errno
from .port import Port, register_burst
from .sock_common import (RX_ERRORS, SO_BUSY_POLL, SOCK_EXTRA, TX_NO_DEST, parse_hostport, sock_recv_into_new_buf,
                          sock_tx_buf_len, sock_tx_burst, sockaddr_in)
from .spec import SpecArgs, SpecError

UdpState = namedtuple("UdpState", "cfg counters peer rxaddr")
C_FD, C_CONNECTED, C_HAVE_PEER = 0, 1, 2   # C_CONNECTED: fixed destination from connect=
MSG_TRUNC = 0x20


@hot
def udp_rx_burst(st, pool, bufs, n):
    cfg, cnt = st.cfg, st.counters
    got = 0
    nbytes = 0
    limit = min(np.int64(n), np.int64(bufs.shape[0]))
    while got < limit:
        st.rxaddr[16] = 16                  # socklen_t in/out: room for a sockaddr_in
        st.rxaddr[17] = 0
        b, r = sock_recv_into_new_buf(cfg[C_FD], pool, cnt, MSG_DONTWAIT | MSG_TRUNC, st.rxaddr)
        if b < 0:
            break
        if r < 0:
            if sys_errno() != EAGAIN:
                cnt[RX_ERRORS] += 1
            break
        if r > pool.meta[BUF_SIZE] - pool.data_off[b]:
            cnt[RX_TOO_LONG] += 1          # MSG_TRUNC gave the real length: never deliver a cut datagram
            pool_free(pool, b)
            continue
        pool.data_len[b] = r
        bufs[got] = b
        got += 1
        nbytes += r
    if got > 0 and cfg[C_CONNECTED] == 0 and load_u32(st.rxaddr, 16) == 16:
        for i in range(16):                 # reply to the latest sender
            st.peer[i] = st.rxaddr[i]
        cfg[C_HAVE_PEER] = 1
    cnt[RX_PACKETS] += got
    cnt[RX_BYTES] += nbytes
    return got


@hot
def udp_tx_burst(st, pool, bufs, n):
    cfg = st.cfg
    if cfg[C_CONNECTED] == 0 and cfg[C_HAVE_PEER] == 0:
        # nobody to send to yet: drop (counted) the buffers the caller owns
        taken = 0
        limit = min(np.int64(n), np.int64(bufs.shape[0]))
        while taken < limit:
            b = np.int64(bufs[taken])
            if sock_tx_buf_len(pool, st.counters, b, 65507) >= 0:
                st.counters[TX_NO_DEST] += 1
                pool_free(pool, b)
            taken += 1
        return taken
    # 65507: the largest IPv4 UDP payload
    return sock_tx_burst(cfg, st.counters, pool, bufs, n, MSG_DONTWAIT, st.peer, 16, 65507, False)


register_burst(UdpState, udp_rx_burst, udp_tx_burst)


class UdpPort(Port):
    def __init__(self, args: SpecArgs, pool, spec: str):
        self.spec, self.pool = spec, pool
        bind_host, bind_port = parse_hostport("udp", "bind", args.str("bind"))
        group = args.str("group") if "group" in args._args else None
        iface = args.str("iface") if "iface" in args._args else "0.0.0.0"
        connect = parse_hostport("udp", "connect", args.str("connect")) if "connect" in args._args else None
        busy = args.int("busy_poll", 0, lo=0, hi=1_000_000)
        rcvbuf = args.int("rcvbuf", 0, lo=0)
        args.finish()
        self.counters = Counters(SOCK_EXTRA)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if rcvbuf:
                try:   # SO_RCVBUFFORCE (CAP_NET_ADMIN) passes net.core.rmem_max; else the capped SO_RCVBUF
                    self.sock.setsockopt(socket.SOL_SOCKET, 33, rcvbuf)
                except PermissionError:
                    self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            if busy:
                self.sock.setsockopt(socket.SOL_SOCKET, SO_BUSY_POLL, busy)
            try:
                self.sock.bind((bind_host, bind_port))
            except OSError as e:
                raise OSError(e.errno, f"udp: cannot bind {bind_host}:{bind_port}: {e.strerror} "
                              f"(address in use, or not an address of this host/namespace)") from None
            if group is not None:
                try:
                    mreq = socket.inet_aton(group) + socket.inet_aton(iface)
                    self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
                except OSError as e:
                    raise OSError(e.errno, f"udp: cannot join group {group} on {iface}: {e.strerror} (is {group} "
                                  f"multicast, and is there a route/interface for it?)") from None
            if iface != "0.0.0.0":
                self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(iface))
            peer = np.zeros(32, np.uint8)
            if connect is not None:
                # sendto() a fixed address rather than connect(2): a connected UDP socket
                # would discard datagrams from anyone else (e.g. the multicast feed we joined).
                peer = sockaddr_in(*connect)
            self.sock.setblocking(False)
            cfg = np.zeros(4, np.int64)
            cfg[C_FD], cfg[C_CONNECTED] = self.sock.fileno(), int(connect is not None)
            self.state = UdpState(cfg, self.counters.array, peer, np.zeros(32, np.uint8))
        except BaseException:
            self.sock.close()
            raise
        self.local = self.sock.getsockname()

    @property
    def link_up(self) -> bool:
        return self.sock is not None

    def close(self) -> None:
        if getattr(self, "sock", None) is not None:
            self.sock.close()
            self.sock = None


def open(args: SpecArgs, pool, spec: str) -> UdpPort:  # noqa: A001
    return UdpPort(args, pool, spec)


__all__ = ["UdpPort", "UdpState", "open", "SpecError"]

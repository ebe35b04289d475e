"""Shared pieces of the kernel-socket ports (``udp:``, ``tcp:``).

These ports carry *payloads*, not Ethernet frames: a buffer holds one UDP
datagram's payload, or one chunk of a TCP byte stream, starting at ``data_off``.
They are the honest kernel baseline every tickwire benchmark is compared against,
and the fallback where kernel bypass is impossible. The data path is njit
(libc ``recvfrom``/``sendto`` called by symbol name, see ``libc_calls``), busy-polling
a non-blocking socket: the same loop shape as a bypass driver.
"""

from __future__ import annotations

import socket
import struct

import numpy as np
from numba.extending import register_jitable

from ..mem.mempool import BUF_SIZE, pool_alloc, pool_free
from .counters import COMMON, RX_NOBUF, TX_BYTES, TX_PACKETS, TX_RING_FULL, TX_TOO_LONG, tx_take
from .libc_calls import EAGAIN, EINTR, ENOBUFS, sys_errno, sys_recvfrom, sys_sendto

SOCK_EXTRA = ("rx_errors", "tx_errors", "tx_no_dest", "tx_bad_buf", "tx_partial", "peer_closed")
RX_ERRORS, TX_ERRORS, TX_NO_DEST, TX_BAD_BUF, TX_PARTIAL, PEER_CLOSED = range(len(COMMON), len(COMMON) + 6)
SO_BUSY_POLL = 46
# cfg[] slots both ports' states share; slots 1.. are each port's own
C_FD = 0


# The per-buffer steps both socket ports share, compiled into their (runtime-free) bursts.

@register_jitable
def sock_recv_into_new_buf(fd, pool, cnt, flags, addr):
    """Take a pool buffer and recvfrom() one datagram / stream chunk into it.
    Returns (buffer, r): r > 0 bytes received (the buffer is the caller's); r <= 0
    nothing (the buffer went back to the pool; read errno for why, r == 0 is EOF on a
    stream). (-1, -1) when the pool is empty (counted as rx_nobuf)."""
    b = pool_alloc(pool)
    if b < 0:
        cnt[RX_NOBUF] += 1
        return np.int64(-1), np.int64(-1)
    bsize = pool.meta[BUF_SIZE]
    off = pool.data_off[b]
    r = np.int64(sys_recvfrom(fd, pool.data, b * bsize + off, bsize - off, flags, addr))
    if r <= 0:
        pool_free(pool, b)
    return np.int64(b), r


@register_jitable
def sock_tx_buf_len(pool, cnt, b, max_len):
    """The length to send from buffer ``b``, or -1 when it cannot be sent: not a buffer
    the caller owns (tx_bad_buf, left alone), or offset/length outside the buffer or
    above ``max_len`` (tx_too_long, freed)."""
    ln = tx_take(pool, cnt, b, TX_BAD_BUF)
    if ln > max_len:
        cnt[TX_TOO_LONG] += 1
        pool_free(pool, b)
        return np.int64(-1)
    return ln


def sockaddr_in(host: str, port: int) -> np.ndarray:
    """struct sockaddr_in (16 B) + socklen_t at 16, in a 32-byte array for the njit calls."""
    a = np.zeros(32, np.uint8)
    a[:16] = np.frombuffer(struct.pack("<H", socket.AF_INET) + struct.pack(">H", port)
                           + socket.inet_aton(host) + b"\0" * 8, np.uint8)
    a[16:20] = np.frombuffer(struct.pack("<I", 16), np.uint8)
    return a


def parse_hostport(scheme: str, key: str, value: str) -> tuple[str, int]:
    from .spec import SpecError
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise SpecError(f"{scheme}: {key}={value!r}; expected IP:PORT, e.g. {key}=10.0.0.1:14310")
    try:
        host = socket.gethostbyname(host or "0.0.0.0")
    except OSError:
        raise SpecError(f"{scheme}: {key}={value!r}: cannot resolve host {host!r}") from None
    return host, int(port)


@register_jitable
def sock_tx_burst(cfg, cnt, pool, bufs, n, flags, addr, addrlen, max_len, stream):
    """Send each buffer with one sendto(); the loop both socket ports share.

    Datagrams (``stream`` False, udp:): a send error other than a full socket buffer
    drops that datagram (tx_errors) and goes on. Streams (True, tcp:): the error ends the
    connection (``cfg[1]``, C_CLOSED, is set; later buffers are dropped as tx_errors), and
    a partial write trims the buffer to its unsent tail, which stays with the caller
    (tx_partial), so the byte stream is never cut or reordered. The caller checks that
    there is a destination before calling. Returns how many buffers were taken."""
    bsize = pool.meta[BUF_SIZE]
    taken = 0
    limit = min(np.int64(n), np.int64(bufs.shape[0]))
    while taken < limit:
        b = np.int64(bufs[taken])
        ln = sock_tx_buf_len(pool, cnt, b, max_len)
        if ln < 0:
            taken += 1
            continue
        if stream and (cfg[C_FD] < 0 or cfg[1] != 0):
            cnt[TX_ERRORS] += 1            # no connection: drop rather than stall the caller forever
            pool_free(pool, b)
            taken += 1
            continue
        off = pool.data_off[b]
        r = np.int64(sys_sendto(cfg[C_FD], pool.data, b * bsize + off, ln, flags, addr, addrlen))
        if r < 0:
            e = sys_errno()
            if e == EAGAIN or e == ENOBUFS or e == EINTR:
                cnt[TX_RING_FULL] += 1     # socket buffer full: the caller keeps the rest
                break
            cnt[TX_ERRORS] += 1            # udp: e.g. ECONNREFUSED from an earlier ICMP; tcp: EPIPE, ECONNRESET
            if stream:
                cfg[1] = 1
            pool_free(pool, b)
            taken += 1
            continue
        cnt[TX_BYTES] += r
        if r < ln:
            pool.data_off[b] = off + r     # keep the unsent tail with the caller, in order
            pool.data_len[b] = ln - r
            cnt[TX_PARTIAL] += 1
            break
        cnt[TX_PACKETS] += 1
        pool_free(pool, b)
        taken += 1
    return taken

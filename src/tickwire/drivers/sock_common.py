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

from ..mem.mempool import IN_USE, N_BUFS, BUF_SIZE

SOCK_EXTRA = ("rx_errors", "tx_errors", "tx_no_dest", "tx_bad_buf", "tx_partial", "peer_closed")
SO_BUSY_POLL = 46


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


def valid_tx_buf(pool, b):
    """Python mirror of the njit check (documentation of the rule)."""
    a = pool.arrays
    return 0 <= b < a.meta[N_BUFS] and a.state[b] == IN_USE and 0 < a.data_len[b] <= a.meta[BUF_SIZE] - a.data_off[b]

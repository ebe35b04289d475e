"""ICMP echo request/reply (RFC 792): type @0, code @1, checksum @2, identifier @4,
sequence @6, data @8. The checksum covers the whole ICMP message."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from ..mem.hotpath import hot

from .bytes import as_array, rd16, rd8, wr16, wr8
from .causes import BAD_CHECKSUM, OK, TRUNCATED
from .checksum import csum_add, csum_finish, csum_update16

ICMP_HLEN = 8
ICMP_ECHO_REPLY, ICMP_DEST_UNREACH, ICMP_ECHO_REQUEST, ICMP_TIME_EXCEEDED = 0, 3, 8, 11
ICMP_TYPE, ICMP_CODE, ICMP_CSUM, ICMP_ID, ICMP_SEQ = 0, 1, 2, 4, 6
PROTO_ICMP = 1


@hot(inline="always")
def icmp_check(buf, off, l4_len):
    if l4_len < ICMP_HLEN:
        return TRUNCATED
    if csum_finish(csum_add(buf, off, l4_len, np.int64(0))) != 0:
        return BAD_CHECKSUM
    return OK


@njit(cache=True, inline="always")
def icmp_type(buf, off):
    return rd8(buf, off + ICMP_TYPE)


@njit(cache=True, inline="always")
def icmp_code(buf, off):
    return rd8(buf, off + ICMP_CODE)


@njit(cache=True, inline="always")
def icmp_echo_id(buf, off):
    return rd16(buf, off + ICMP_ID)


@njit(cache=True, inline="always")
def icmp_echo_seq(buf, off):
    return rd16(buf, off + ICMP_SEQ)


@hot
def icmp_echo_to_reply(buf, off):
    """Turn an echo request into a reply in place: type 8 -> 0, checksum updated
    incrementally (RFC 1624) since the type/code word is the only change."""
    old = rd16(buf, off)
    new = old & 0x00FF   # type 0, same code
    wr8(buf, off + ICMP_TYPE, ICMP_ECHO_REPLY)
    wr16(buf, off + ICMP_CSUM, csum_update16(rd16(buf, off + ICMP_CSUM), old, new))


@hot
def icmp_write_echo(buf, off, typ, ident, seq, data_len):
    """Write the header for ``data_len`` bytes already at ``off + 8``; returns the end."""
    wr8(buf, off + ICMP_TYPE, typ)
    wr8(buf, off + ICMP_CODE, 0)
    wr16(buf, off + ICMP_CSUM, 0)
    wr16(buf, off + ICMP_ID, ident)
    wr16(buf, off + ICMP_SEQ, seq)
    wr16(buf, off + ICMP_CSUM, csum_finish(csum_add(buf, off, ICMP_HLEN + data_len, np.int64(0))))
    return off + ICMP_HLEN + data_len


@dataclass
class IcmpEchoRepr:
    type: int
    ident: int
    seq: int
    data: bytes = b""

    @classmethod
    def parse(cls, data: bytes) -> "IcmpEchoRepr":
        a = as_array(data)
        cause = icmp_check(a, 0, len(a))
        if cause != OK:
            raise ValueError(f"bad ICMP message (cause {cause})")
        return cls(int(icmp_type(a, 0)), int(icmp_echo_id(a, 0)), int(icmp_echo_seq(a, 0)), bytes(data[8:]))

    def emit(self) -> bytes:
        a = np.zeros(ICMP_HLEN + len(self.data), np.uint8)
        a[ICMP_HLEN:] = np.frombuffer(self.data, np.uint8)
        icmp_write_echo(a, 0, self.type, self.ident, self.seq, len(self.data))
        return a.tobytes()

"""UDP header (RFC 768): source port @0, destination port @2, length @4, checksum @6.

A zero checksum means "not computed" (legal for IPv4); a computed zero is sent as
0xFFFF (RFC 768, "If the computed checksum is zero, it is transmitted as all ones").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from ..mem.hotpath import hot

from .bytes import as_array, ip_to_int, rd16, wr16
from .causes import BAD_CHECKSUM, BAD_HEADER, OK, TRUNCATED
from .checksum import csum_add, csum_finish, csum_pseudo_ipv4

UDP_HLEN = 8
UDP_SPORT, UDP_DPORT, UDP_LEN, UDP_CSUM = 0, 2, 4, 6
PROTO_UDP = 17


@hot(inline="always")
def udp_check(buf, off, l4_len, src, dst):
    """Validate a datagram in ``buf[off:off+l4_len]`` (the IP payload).

    Returns (cause, udp_len); the UDP length may be shorter than the IP payload."""
    if l4_len < UDP_HLEN:
        return TRUNCATED, 0
    ulen = rd16(buf, off + UDP_LEN)
    if ulen < UDP_HLEN:
        return BAD_HEADER, 0
    if ulen > l4_len:
        return TRUNCATED, 0
    if rd16(buf, off + UDP_CSUM) != 0:
        s = csum_add(buf, off, ulen, csum_pseudo_ipv4(src, dst, PROTO_UDP, ulen))
        if csum_finish(s) != 0:
            return BAD_CHECKSUM, 0
    return OK, ulen


@njit(cache=True, inline="always")
def udp_sport(buf, off):
    return rd16(buf, off + UDP_SPORT)


@njit(cache=True, inline="always")
def udp_dport(buf, off):
    return rd16(buf, off + UDP_DPORT)


@hot
def udp_fill_checksum(buf, off, src, dst):
    """Compute the checksum over the datagram whose length field is already set."""
    ulen = rd16(buf, off + UDP_LEN)
    wr16(buf, off + UDP_CSUM, 0)
    c = csum_finish(csum_add(buf, off, ulen, csum_pseudo_ipv4(src, dst, PROTO_UDP, ulen)))
    wr16(buf, off + UDP_CSUM, 0xFFFF if c == 0 else c)


@hot
def udp_write(buf, off, src, dst, sport, dport, payload_len, with_checksum):
    """Write the header for a payload already at ``off + 8``; returns the payload offset."""
    wr16(buf, off + UDP_SPORT, sport)
    wr16(buf, off + UDP_DPORT, dport)
    wr16(buf, off + UDP_LEN, UDP_HLEN + payload_len)
    wr16(buf, off + UDP_CSUM, 0)
    if with_checksum:
        udp_fill_checksum(buf, off, src, dst)
    return off + UDP_HLEN


@dataclass
class UdpRepr:
    sport: int
    dport: int
    payload: bytes

    @classmethod
    def parse(cls, data: bytes, src: str, dst: str) -> "UdpRepr":
        a = as_array(data)
        cause, ulen = udp_check(a, 0, len(a), ip_to_int(src), ip_to_int(dst))
        if cause != OK:
            raise ValueError(f"bad UDP datagram (cause {cause})")
        return cls(int(udp_sport(a, 0)), int(udp_dport(a, 0)), bytes(data[UDP_HLEN:ulen]))

    def emit(self, src: str, dst: str, checksum: bool = True) -> bytes:
        a = np.zeros(UDP_HLEN + len(self.payload), np.uint8)
        a[UDP_HLEN:] = np.frombuffer(self.payload, np.uint8)
        udp_write(a, 0, ip_to_int(src), ip_to_int(dst), self.sport, self.dport, len(self.payload), checksum)
        return a.tobytes()

"""IPv4 header (RFC 791 §3.1), options recognised and validated, fragments recognised.

Layout: version/IHL @0, TOS @1, total length @2, identification @4, flags +
fragment offset @6 (bit 0x4000 DF, 0x2000 MF, low 13 bits offset in 8-byte
units), TTL @8, protocol @9, header checksum @10, source @12, destination @16,
options @20 up to IHL*4 (≤ 60 bytes). Addresses travel as int64.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numba import njit

from ..mem.hotpath import hot

from .bytes import as_array, int_to_ip, ip_to_int, rd16, rd32, rd8, wr16, wr32, wr8
from .causes import BAD_CHECKSUM, BAD_HEADER, OK, TRUNCATED
from .checksum import csum_add, csum_finish

IPV4_HLEN = 20
IP_TOS, IP_LEN, IP_ID, IP_FRAG, IP_TTL, IP_PROTO, IP_CSUM, IP_SRC, IP_DST = 1, 2, 4, 6, 8, 9, 10, 12, 16
IP_DF, IP_MF, IP_OFFMASK = 0x4000, 0x2000, 0x1FFF
PROTO_ICMP, PROTO_IGMP, PROTO_TCP, PROTO_UDP = 1, 2, 6, 17
OPT_EOL, OPT_NOP, OPT_ROUTER_ALERT = 0, 1, 148   # RFC 2113: 0x94 0x04 0x00 0x00
BROADCAST = 0xFFFFFFFF


@hot
def ipv4_options_ok(buf, off, end):
    """RFC 791 option walk: EOL, NOP, or type-length-value with 2 <= length <= remaining."""
    p = off
    while p < end:
        t = rd8(buf, p)
        if t == OPT_EOL:
            return True
        if t == OPT_NOP:
            p += 1
            continue
        if p + 1 >= end:
            return False
        n = rd8(buf, p + 1)
        if n < 2 or p + n > end:
            return False
        p += n
    return True


@hot(inline="always")
def ipv4_check(buf, off, end):
    """Validate the header against the frame end ``end``.

    Returns (cause, header_len, total_len). ``total_len`` may be less than the
    frame (Ethernet pads to 60 bytes); the datagram ends at ``off + total_len``.
    """
    if end - off < IPV4_HLEN:
        return TRUNCATED, 0, 0
    vi = rd8(buf, off)
    hlen = (vi & 0xF) * 4
    if vi >> 4 != 4 or hlen < IPV4_HLEN:
        return BAD_HEADER, 0, 0
    total = rd16(buf, off + IP_LEN)
    if hlen > end - off or total > end - off:
        return TRUNCATED, 0, 0
    if total < hlen:
        return BAD_HEADER, 0, 0
    if csum_finish(csum_add(buf, off, hlen, np.int64(0))) != 0:
        return BAD_CHECKSUM, 0, 0
    if hlen > IPV4_HLEN and not ipv4_options_ok(buf, off + IPV4_HLEN, off + hlen):
        return BAD_HEADER, 0, 0
    return OK, hlen, total


@njit(cache=True, inline="always")
def ipv4_is_fragment(buf, off):
    return rd16(buf, off + IP_FRAG) & (IP_MF | IP_OFFMASK) != 0


@njit(cache=True, inline="always")
def ipv4_src(buf, off):
    return rd32(buf, off + IP_SRC)


@njit(cache=True, inline="always")
def ipv4_dst(buf, off):
    return rd32(buf, off + IP_DST)


@njit(cache=True, inline="always")
def ipv4_proto(buf, off):
    return rd8(buf, off + IP_PROTO)


@njit(cache=True, inline="always")
def ipv4_ttl(buf, off):
    return rd8(buf, off + IP_TTL)


@njit(cache=True, inline="always")
def ipv4_is_multicast(addr):
    return (addr >> 28) == 0xE


@hot
def ipv4_fill_checksum(buf, off):
    hlen = (rd8(buf, off) & 0xF) * 4
    wr16(buf, off + IP_CSUM, 0)
    wr16(buf, off + IP_CSUM, csum_finish(csum_add(buf, off, hlen, np.int64(0))))


@hot
def ipv4_write(buf, off, src, dst, proto, payload_len, ttl, ident, tos, df, router_alert):
    """Write a header (with the RFC 2113 Router Alert option if asked, as IGMP needs)
    and its checksum; returns the L4 offset."""
    hlen = IPV4_HLEN + (4 if router_alert else 0)
    wr8(buf, off, 0x40 | (hlen >> 2))
    wr8(buf, off + IP_TOS, tos)
    wr16(buf, off + IP_LEN, hlen + payload_len)
    wr16(buf, off + IP_ID, ident)
    wr16(buf, off + IP_FRAG, IP_DF if df else 0)
    wr8(buf, off + IP_TTL, ttl)
    wr8(buf, off + IP_PROTO, proto)
    wr32(buf, off + IP_SRC, src)
    wr32(buf, off + IP_DST, dst)
    if router_alert:
        wr32(buf, off + IPV4_HLEN, 0x94040000)
    ipv4_fill_checksum(buf, off)
    return off + hlen


@dataclass
class Ipv4Repr:
    src: str
    dst: str
    proto: int
    payload_len: int
    ttl: int = 64
    ident: int = 0
    tos: int = 0
    df: bool = True
    mf: bool = False
    frag_offset: int = 0
    options: bytes = field(default=b"")

    @classmethod
    def parse(cls, data: bytes) -> tuple["Ipv4Repr", int]:
        """Returns the header and its length; ValueError on any invalid header."""
        a = as_array(data)
        cause, hlen, total = ipv4_check(a, 0, len(a))
        if cause != OK:
            raise ValueError(f"bad IPv4 header (cause {cause})")
        frag = int(rd16(a, IP_FRAG))
        return cls(int_to_ip(int(ipv4_src(a, 0))), int_to_ip(int(ipv4_dst(a, 0))), int(ipv4_proto(a, 0)),
                   int(total - hlen), int(ipv4_ttl(a, 0)), int(rd16(a, IP_ID)), int(rd8(a, IP_TOS)),
                   bool(frag & IP_DF), bool(frag & IP_MF), frag & IP_OFFMASK,
                   bytes(data[IPV4_HLEN:hlen])), int(hlen)

    def emit(self) -> bytes:
        """Header only. Options other than Router Alert are not emitted by the njit writer."""
        ra = self.options == b"\x94\x04\x00\x00"
        if self.options and not ra:
            raise ValueError("only the Router Alert option can be emitted")
        a = np.zeros(24, np.uint8)
        l4 = ipv4_write(a, 0, ip_to_int(self.src), ip_to_int(self.dst), self.proto, self.payload_len,
                        self.ttl, self.ident, self.tos, self.df, ra)
        return a[:l4].tobytes()

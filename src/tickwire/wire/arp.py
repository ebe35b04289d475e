"""ARP for IPv4 over Ethernet (RFC 826).

Layout (28 bytes): htype @0 (1 = Ethernet), ptype @2 (0x0800), hlen @4 (6), plen @5 (4),
oper @6 (1 request, 2 reply), sha @8, spa @14, tha @18, tpa @24.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from ..mem.hotpath import hot

from .bytes import as_array, int_to_ip, int_to_mac, ip_to_int, mac_to_int, rd16, rd32, rd48, rd8, wr16, wr32, wr48, wr8
from .causes import BAD_HEADER, OK, TRUNCATED

ARP_LEN = 28
ARP_REQUEST, ARP_REPLY = 1, 2
ARP_OPER, ARP_SHA, ARP_SPA, ARP_THA, ARP_TPA = 6, 8, 14, 18, 24


@hot(inline="always")
def arp_check(buf, off, end):
    """OK for an Ethernet/IPv4 request or reply that fits in the frame."""
    if end - off < ARP_LEN:
        return TRUNCATED
    if (rd16(buf, off) != 1 or rd16(buf, off + 2) != 0x0800 or rd8(buf, off + 4) != 6
            or rd8(buf, off + 5) != 4):
        return BAD_HEADER
    op = rd16(buf, off + ARP_OPER)
    if op != ARP_REQUEST and op != ARP_REPLY:
        return BAD_HEADER
    return OK


@njit(cache=True, inline="always")
def arp_oper(buf, off):
    return rd16(buf, off + ARP_OPER)


@njit(cache=True, inline="always")
def arp_sha(buf, off):
    return rd48(buf, off + ARP_SHA)


@njit(cache=True, inline="always")
def arp_spa(buf, off):
    return rd32(buf, off + ARP_SPA)


@njit(cache=True, inline="always")
def arp_tha(buf, off):
    return rd48(buf, off + ARP_THA)


@njit(cache=True, inline="always")
def arp_tpa(buf, off):
    return rd32(buf, off + ARP_TPA)


@hot
def arp_write(buf, off, oper, sha, spa, tha, tpa):
    """Write a complete Ethernet/IPv4 ARP packet; returns its end offset."""
    wr16(buf, off, 1)
    wr16(buf, off + 2, 0x0800)
    wr8(buf, off + 4, 6)
    wr8(buf, off + 5, 4)
    wr16(buf, off + ARP_OPER, oper)
    wr48(buf, off + ARP_SHA, sha)
    wr32(buf, off + ARP_SPA, spa)
    wr48(buf, off + ARP_THA, tha)
    wr32(buf, off + ARP_TPA, tpa)
    return off + ARP_LEN


@dataclass
class ArpRepr:
    oper: int
    sha: str
    spa: str
    tha: str
    tpa: str

    @classmethod
    def parse(cls, data: bytes) -> "ArpRepr":
        a = as_array(data)
        cause = arp_check(a, 0, len(a))
        if cause != OK:
            raise ValueError(f"bad ARP packet (cause {cause})")
        return cls(int(arp_oper(a, 0)), int_to_mac(int(arp_sha(a, 0))), int_to_ip(int(arp_spa(a, 0))),
                   int_to_mac(int(arp_tha(a, 0))), int_to_ip(int(arp_tpa(a, 0))))

    def emit(self) -> bytes:
        a = np.zeros(ARP_LEN, np.uint8)
        arp_write(a, 0, self.oper, mac_to_int(self.sha), ip_to_int(self.spa), mac_to_int(self.tha),
                  ip_to_int(self.tpa))
        return a.tobytes()

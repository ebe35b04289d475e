"""Ethernet II header (IEEE 802.3 §3.1.1) and 802.1Q / 802.1ad VLAN tags (IEEE 802.1Q §9.3).

Layout: dst MAC @0 (6), src MAC @6 (6), EtherType @12 (2); a VLAN tag inserts
TPID (0x8100, or 0x88A8 for an 802.1ad S-tag) + TCI (PCP 3 bits, DEI 1, VID 12)
before the EtherType. MACs travel as int64 (first octet most significant).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from ..mem.hotpath import hot

from .bytes import as_array, int_to_mac, mac_to_int, rd16, rd48, wr16, wr48
from .causes import OK, TRUNCATED

ETH_HLEN = 14
ETH_DST, ETH_SRC, ETH_TYPE = 0, 6, 12
VLAN_HLEN = 4
ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_ARP = 0x0806
ETHERTYPE_VLAN = 0x8100   # 802.1Q C-tag
ETHERTYPE_QINQ = 0x88A8   # 802.1ad S-tag
MAX_VLAN_TAGS = 2
BROADCAST = 0xFFFFFFFFFFFF


@njit(cache=True, inline="always")
def mac_is_multicast(mac):
    """I/G bit: least significant bit of the first octet (IEEE 802 §8.2)."""
    return (mac >> 40) & 1 == 1


@njit(cache=True, inline="always")
def ipv4_multicast_mac(group):
    """RFC 1112 §6.4: 01:00:5e + low 23 bits of the group address."""
    return 0x01005E000000 | (group & 0x7FFFFF)


@hot(inline="always")
def eth_decode(buf, off, end):
    """Parse Ethernet and up to two VLAN tags.

    Returns (cause, ethertype, l3_off, outer_tci); ``outer_tci`` is -1 when untagged.
    """
    if end - off < ETH_HLEN:
        return TRUNCATED, -1, off, -1
    etype = rd16(buf, off + ETH_TYPE)
    p = off + ETH_TYPE
    tci = np.int64(-1)
    tags = 0
    while (etype == ETHERTYPE_VLAN or etype == ETHERTYPE_QINQ) and tags < MAX_VLAN_TAGS:
        if end - p < 2 + VLAN_HLEN:
            return TRUNCATED, -1, off, -1
        if tags == 0:
            tci = rd16(buf, p + 2)
        etype = rd16(buf, p + 4)
        p += VLAN_HLEN
        tags += 1
    return OK, etype, p + 2, tci


@njit(cache=True, inline="always")
def eth_write(buf, off, dst, src, ethertype):
    """Write an untagged header; returns the L3 offset."""
    wr48(buf, off + ETH_DST, dst)
    wr48(buf, off + ETH_SRC, src)
    wr16(buf, off + ETH_TYPE, ethertype)
    return off + ETH_HLEN


@njit(cache=True, inline="always")
def eth_write_vlan(buf, off, dst, src, tci, ethertype):
    """Write a header with one 802.1Q tag; returns the L3 offset."""
    wr48(buf, off + ETH_DST, dst)
    wr48(buf, off + ETH_SRC, src)
    wr16(buf, off + 12, ETHERTYPE_VLAN)
    wr16(buf, off + 14, tci)
    wr16(buf, off + 16, ethertype)
    return off + ETH_HLEN + VLAN_HLEN


@njit(cache=True, inline="always")
def eth_dst(buf, off):
    return rd48(buf, off + ETH_DST)


@njit(cache=True, inline="always")
def eth_src(buf, off):
    return rd48(buf, off + ETH_SRC)


@njit(cache=True, inline="always")
def vlan_tci(pcp, dei, vid):
    return ((pcp & 7) << 13) | ((dei & 1) << 12) | (vid & 0xFFF)


@dataclass
class EthernetRepr:
    """Plain representation (tools, tests). ``vlan`` is the outer TCI or None."""
    dst: str
    src: str
    ethertype: int
    vlan: int | None = None

    @classmethod
    def parse(cls, frame: bytes) -> tuple["EthernetRepr", int]:
        """Returns the header and the L3 offset; ValueError if truncated."""
        a = as_array(frame)
        cause, etype, l3, tci = eth_decode(a, 0, len(a))
        if cause != OK:
            raise ValueError("truncated Ethernet/VLAN header")
        return cls(int_to_mac(int(eth_dst(a, 0))), int_to_mac(int(eth_src(a, 0))), int(etype),
                   None if tci < 0 else int(tci)), int(l3)

    def emit(self) -> bytes:
        a = np.zeros(ETH_HLEN + VLAN_HLEN, np.uint8)
        if self.vlan is None:
            n = eth_write(a, 0, mac_to_int(self.dst), mac_to_int(self.src), self.ethertype)
        else:
            n = eth_write_vlan(a, 0, mac_to_int(self.dst), mac_to_int(self.src), self.vlan, self.ethertype)
        return a[:n].tobytes()

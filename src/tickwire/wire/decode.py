"""One-pass decode of a whole frame into an int64 "packet info" array.

``decode_frame(buf, off, length, info)`` walks Ethernet -> VLAN -> ARP | IPv4 ->
UDP | TCP | ICMP | IGMP, validating every length against the frame end and every
checksum, and writes the offsets and fields the layers above need into ``info``
(slots ``I_*``). It returns a cause from ``wire.causes`` (OK = 0). Nothing is read
beyond ``buf[off:off+length]``. This is what the stack's demux and the wire
benchmark run per packet.

Fields of an OK frame: always I_ETHERTYPE, I_TCI (-1 untagged), I_DST_MAC,
I_SRC_MAC, I_L3. IPv4: I_IPHL, I_IPLEN, I_PROTO, I_SRC, I_DST, I_TTL, I_L4,
I_L4LEN. UDP: I_SPORT, I_DPORT, I_PAYLOAD, I_PAYLEN (UDP length - 8).
TCP: I_SPORT, I_DPORT, I_PAYLOAD (after options), I_PAYLEN, I_TCPHL.
ICMP/IGMP: I_PAYLOAD = I_L4, I_PAYLEN = I_L4LEN.
"""

from __future__ import annotations

import numpy as np

from ..mem.hotpath import hot

from .arp import arp_check
from .bytes import rd16, rd48, rd8
from .causes import FRAGMENT, OK, TTL_EXPIRED, UNKNOWN_ETHERTYPE, UNKNOWN_PROTOCOL, NAMES
from .ethernet import ETHERTYPE_ARP, ETHERTYPE_IPV4, eth_decode
from .icmp import icmp_check
from .igmp import igmp_check
from .ipv4 import IP_FRAG, IP_MF, IP_OFFMASK, PROTO_ICMP, PROTO_IGMP, PROTO_TCP, PROTO_UDP, ipv4_check, ipv4_dst, ipv4_src
from .tcp import tcp_check
from .udp import udp_check

(I_CAUSE, I_ETHERTYPE, I_TCI, I_DST_MAC, I_SRC_MAC, I_L3, I_IPHL, I_IPLEN, I_PROTO, I_SRC, I_DST, I_TTL,
 I_L4, I_L4LEN, I_SPORT, I_DPORT, I_PAYLOAD, I_PAYLEN, I_TCPHL) = range(19)
INFO_SLOTS = 20


def new_info() -> np.ndarray:
    return np.zeros(INFO_SLOTS, np.int64)


@hot(inline="always")
def decode_frame(buf, off, length, info):
    end = off + length
    cause, etype, l3, tci = eth_decode(buf, off, end)
    info[I_CAUSE] = cause
    if cause != OK:
        return cause
    info[I_ETHERTYPE] = etype
    info[I_TCI] = tci
    info[I_DST_MAC] = rd48(buf, off)
    info[I_SRC_MAC] = rd48(buf, off + 6)
    info[I_L3] = l3
    info[I_PROTO] = -1
    if etype == ETHERTYPE_ARP:
        cause = arp_check(buf, l3, end)
        info[I_CAUSE] = cause
        return cause
    if etype != ETHERTYPE_IPV4:
        info[I_CAUSE] = UNKNOWN_ETHERTYPE
        return UNKNOWN_ETHERTYPE
    cause, hl, total = ipv4_check(buf, l3, end)
    if cause != OK:
        info[I_CAUSE] = cause
        return cause
    proto = rd8(buf, l3 + 9)
    src = ipv4_src(buf, l3)
    dst = ipv4_dst(buf, l3)
    l4 = l3 + hl
    l4len = total - hl
    info[I_IPHL] = hl
    info[I_IPLEN] = total
    info[I_PROTO] = proto
    info[I_SRC] = src
    info[I_DST] = dst
    info[I_TTL] = rd8(buf, l3 + 8)
    info[I_L4] = l4
    info[I_L4LEN] = l4len
    if rd16(buf, l3 + IP_FRAG) & (IP_MF | IP_OFFMASK) != 0:
        info[I_CAUSE] = FRAGMENT
        return FRAGMENT
    if info[I_TTL] == 0:
        info[I_CAUSE] = TTL_EXPIRED
        return TTL_EXPIRED
    if proto == PROTO_UDP:
        cause, ulen = udp_check(buf, l4, l4len, src, dst)
        if cause == OK:
            info[I_SPORT] = rd16(buf, l4)
            info[I_DPORT] = rd16(buf, l4 + 2)
            info[I_PAYLOAD] = l4 + 8
            info[I_PAYLEN] = ulen - 8
    elif proto == PROTO_TCP:
        cause, thl = tcp_check(buf, l4, l4len, src, dst, True)
        if cause == OK:
            info[I_SPORT] = rd16(buf, l4)
            info[I_DPORT] = rd16(buf, l4 + 2)
            info[I_TCPHL] = thl
            info[I_PAYLOAD] = l4 + thl
            info[I_PAYLEN] = l4len - thl
    elif proto == PROTO_ICMP or proto == PROTO_IGMP:
        cause = icmp_check(buf, l4, l4len) if proto == PROTO_ICMP else igmp_check(buf, l4, l4len)
        info[I_PAYLOAD] = l4
        info[I_PAYLEN] = l4len
    else:
        cause = UNKNOWN_PROTOCOL
    info[I_CAUSE] = cause
    return cause


def decode(frame: bytes) -> dict:
    """Python face: decode one frame; returns the cause name and the fields."""
    a = np.frombuffer(bytes(frame), np.uint8)
    info = new_info()
    cause = decode_frame(a, 0, len(a), info)
    names = ("cause", "ethertype", "tci", "dst_mac", "src_mac", "l3", "ip_hlen", "ip_len", "proto", "src", "dst",
             "ttl", "l4", "l4_len", "sport", "dport", "payload", "payload_len", "tcp_hlen")
    out = {n: int(v) for n, v in zip(names, info)}
    out["cause"] = NAMES[int(cause)]
    return out

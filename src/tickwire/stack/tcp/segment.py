"""Decode one received Ethernet/IPv4/TCP frame into an int64 field vector (Numba).

Both paths use it: the fast path reads the vector to decide whether the segment
is the next in-order one; the slow path turns it into the RFC 9293 event
processing. Every length comes from the frame and is checked against the frame
end before use: the IPv4 header by ``wire.ipv4.ipv4_check``; the TCP data
offset (RFC 9293 §3.1: 5..15 words, inside the IP datagram); every option's
length byte (RFC 9293 §3.2: kind-length-value, length >= 2 and inside the
header). The checksum covers the pseudo-header, header and data (§3.1).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ...mem.hotpath import hot
from ...wire.bytes import rd16, rd32, rd48, rd8
from ...wire.causes import OK
from ...wire.ethernet import ETHERTYPE_IPV4, eth_decode
from ...wire.causes import BAD_CHECKSUM, TRUNCATED
from ...wire.ipv4 import IP_FRAG, IP_MF, IP_OFFMASK, PROTO_TCP, ipv4_check
from ...wire.tcp import (OPT_MSS, OPT_SACK0, OPT_SACK_N, OPT_SACK_PERM, OPT_TS_ECR, OPT_TS_VAL,
                         OPT_WSCALE, TCP_OPT_SLOTS, tcp_check, tcp_parse_options)

# field vector slots; the option slots are wire.tcp's options array embedded at SG_OPTS
(SG_CAUSE, SG_SRC, SG_DST, SG_SPORT, SG_DPORT, SG_SEQ, SG_ACK, SG_FLAGS, SG_WND,
 SG_DATA_OFF, SG_DATA_LEN, SG_SRC_MAC, SG_L3, SG_TS, SG_OPTS) = range(15)
SG_MSS = SG_OPTS + OPT_MSS                 # -1 when absent
SG_WSCALE = SG_OPTS + OPT_WSCALE           # -1 when absent
SG_SACK_PERM = SG_OPTS + OPT_SACK_PERM     # 0/1
SG_TSVAL = SG_OPTS + OPT_TS_VAL            # valid when SG_TS == 1
SG_TSECR = SG_OPTS + OPT_TS_ECR
SG_NSACK = SG_OPTS + OPT_SACK_N
SG_SACK = SG_OPTS + OPT_SACK0
SG_LEN = SG_OPTS + TCP_OPT_SLOTS

# decode causes (counted by the TCP layer under these names)
C_OK, C_NOT_TCP, C_TRUNCATED, C_BAD_IP, C_BAD_CHECKSUM, C_BAD_DOFF, C_BAD_OPTIONS, \
    C_BAD_FLAGS, C_FRAGMENT = range(9)
CAUSE_NAMES = ("ok", "not_tcp", "truncated", "bad_ip_header", "bad_checksum",
               "bad_data_offset", "bad_options", "bad_flags", "fragment")


@hot
def tcp_decode(buf, off, length, sg):
    """Fill ``sg`` from the frame at ``buf[off:off+length]``; returns the cause (C_OK = usable)."""
    sg[:] = 0
    end = off + length
    cause, etype, l3, tci = eth_decode(buf, off, end)
    if cause != OK:
        sg[SG_CAUSE] = C_TRUNCATED
        return C_TRUNCATED
    if etype != ETHERTYPE_IPV4:
        sg[SG_CAUSE] = C_NOT_TCP
        return C_NOT_TCP
    cause, hlen, total = ipv4_check(buf, l3, end)
    if cause != OK:
        sg[SG_CAUSE] = C_BAD_IP
        return C_BAD_IP
    if buf[l3 + 9] != PROTO_TCP:
        sg[SG_CAUSE] = C_NOT_TCP
        return C_NOT_TCP
    if rd16(buf, l3 + IP_FRAG) & (IP_MF | IP_OFFMASK) != 0:
        sg[SG_CAUSE] = C_FRAGMENT
        return C_FRAGMENT
    t = l3 + hlen
    tlen = total - hlen
    src = rd32(buf, l3 + 12)
    dst = rd32(buf, l3 + 16)
    cause, doff = tcp_check(buf, t, tlen, src, dst, True)
    if cause != OK:
        c = C_TRUNCATED if cause == TRUNCATED else (C_BAD_CHECKSUM if cause == BAD_CHECKSUM else C_BAD_DOFF)
        sg[SG_CAUSE] = c
        return c
    if tcp_parse_options(buf, t, doff, sg[SG_OPTS:]) != OK:
        sg[SG_CAUSE] = C_BAD_OPTIONS
        return C_BAD_OPTIONS
    sg[SG_TS] = 1 if sg[SG_TSVAL] >= 0 else 0
    flags = rd8(buf, t + 13)
    # RFC 9293 leaves no meaning to SYN+FIN or SYN+RST; both are scanner fingerprints.
    if (flags & 0x02) != 0 and (flags & 0x05) != 0:
        sg[SG_CAUSE] = C_BAD_FLAGS
        return C_BAD_FLAGS
    sg[SG_SRC] = src
    sg[SG_DST] = dst
    sg[SG_SPORT] = rd16(buf, t)
    sg[SG_DPORT] = rd16(buf, t + 2)
    sg[SG_SEQ] = rd32(buf, t + 4)
    sg[SG_ACK] = rd32(buf, t + 8)
    sg[SG_FLAGS] = flags
    sg[SG_WND] = rd16(buf, t + 14)
    sg[SG_DATA_OFF] = t + doff
    sg[SG_DATA_LEN] = tlen - doff
    sg[SG_SRC_MAC] = rd48(buf, off + 6)
    sg[SG_L3] = l3
    return C_OK


def new_fields() -> np.ndarray:
    return np.zeros(SG_LEN, np.int64)

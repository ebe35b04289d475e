"""UDP endpoints: demultiplexing by (destination address, port) and sending.

``st.udp_head[port]`` is the first endpoint row bound to ``port``; rows chain
through U_NEXT. An endpoint bound to address 0 takes any of our addresses
(unicast, broadcast, joined groups); one bound to a group or our unicast address
takes only that. Lookup is one array read plus a short chain walk.

Sending (``udp_prepare``): the caller writes the payload at
``buf_start + UDP_PAYLOAD_OFF`` and calls ``udp_prepare``, which writes Ethernet,
IPv4 and UDP headers (checksum computed in software: the frame may go through a
port without offloads) and resolves the next hop's MAC (multicast maps directly,
RFC 1112 §6.4; unicast through the ARP cache, via the gateway when off-link).
"""

from __future__ import annotations

from numba import njit

from ..mem.hotpath import hot

from ..mem.mempool import BUF_SIZE, buf_start
from ..wire.bytes import wr16, wr32, wr48, wr8
from ..wire.decode import I_DPORT, I_L3, I_L4, I_PAYLOAD, I_SPORT, I_SRC, I_SRC_MAC
from ..wire.ethernet import ETH_HLEN, eth_write, ipv4_multicast_mac
from ..wire.ipv4 import IP_ID, IP_LEN, IP_TTL, IP_DST, IP_SRC, IPV4_HLEN, ipv4_fill_checksum, ipv4_is_multicast, ipv4_write
from ..wire.udp import UDP_HLEN, UDP_LEN, udp_fill_checksum
from .arp import arp_lookup
from .state import (C_GW, C_IP, C_IP_ID, C_MAC, C_MASK, C_MCAST_TTL, C_TTL, I_EP, K_ARP_MISS, K_NO_ENDPOINT,
                    K_UDP_RX, K_UDP_TX, U_BIND_IP, U_NEXT, U_PORT, U_TAG, U_USED)

UDP_PAYLOAD_OFF = ETH_HLEN + IPV4_HLEN + UDP_HLEN   # 42: where udp_prepare expects the payload
SEND_OK, SEND_NO_ARP, SEND_TOO_LONG = 0, 1, 2


@njit(cache=True, inline="always")
def udp_demux(udp_head, udp_ep, cnt, dst, dport, info):
    """Endpoint row for a datagram to (dst, dport) or -1 (counted as no_endpoint)."""
    e = udp_head[dport]
    while e >= 0:
        b = udp_ep[e, U_BIND_IP]
        if b == 0 or b == dst:
            info[I_EP] = e
            cnt[K_UDP_RX] += 1
            return e
        e = udp_ep[e, U_NEXT]
    cnt[K_NO_ENDPOINT] += 1
    return -1


def udp_bind(st, port: int, bind_ip: int = 0, tag: int = 0) -> int:
    """Python (control plane): add an endpoint; returns its row. Most specific first."""
    if not 0 < port < 65536:
        raise ValueError(f"bad UDP port {port}")
    free = [i for i in range(st.udp_ep.shape[0]) if not st.udp_ep[i, U_USED]]
    if not free:
        raise ValueError("UDP endpoint table full")
    r = free[0]
    st.udp_ep[r] = 0
    st.udp_ep[r, U_BIND_IP], st.udp_ep[r, U_PORT], st.udp_ep[r, U_TAG], st.udp_ep[r, U_USED] = bind_ip, port, tag, 1
    # specific bindings go in front of wildcard ones
    head = int(st.udp_head[port])
    if bind_ip != 0 or head < 0:
        st.udp_ep[r, U_NEXT] = head
        st.udp_head[port] = r
    else:
        e = head
        while st.udp_ep[e, U_NEXT] >= 0:
            e = int(st.udp_ep[e, U_NEXT])
        st.udp_ep[r, U_NEXT] = -1
        st.udp_ep[e, U_NEXT] = r
    return r


def udp_unbind(st, row: int) -> None:
    port = int(st.udp_ep[row, U_PORT])
    prev, e = -1, int(st.udp_head[port])
    while e >= 0 and e != row:
        prev, e = e, int(st.udp_ep[e, U_NEXT])
    if e < 0:
        raise ValueError(f"UDP endpoint {row} is not bound")
    nxt = int(st.udp_ep[row, U_NEXT])
    if prev < 0:
        st.udp_head[port] = nxt
    else:
        st.udp_ep[prev, U_NEXT] = nxt
    st.udp_ep[row] = 0


@hot
def next_hop_mac(st, dst):
    """Destination MAC for an IPv4 destination, or -1 while ARP resolves it."""
    if ipv4_is_multicast(dst):
        return ipv4_multicast_mac(dst)
    me = st.cfg[C_IP]
    mask = st.cfg[C_MASK]
    if dst == 0xFFFFFFFF or (mask != 0xFFFFFFFF and dst == (me & mask) | (~mask & 0xFFFFFFFF)):
        return 0xFFFFFFFFFFFF
    hop = dst
    if (dst & mask) != (me & mask) and st.cfg[C_GW] != 0:
        hop = st.cfg[C_GW]
    mac = arp_lookup(st, hop)
    if mac < 0:
        st.cnt[K_ARP_MISS] += 1
    return mac


@hot
def udp_prepare(st, pool, b, dst, sport, dport, payload_len):
    """Write Ethernet/IPv4/UDP headers in front of a payload at UDP_PAYLOAD_OFF; sets data_len.
    Returns SEND_OK, SEND_NO_ARP (retry after stack_poll resolved it) or SEND_TOO_LONG."""
    data = pool.data
    start = buf_start(pool, b)
    # the frame is padded to Ethernet's 60-byte minimum below: that must fit too
    if payload_len < 0 or max(UDP_PAYLOAD_OFF + payload_len, 60) > pool.meta[BUF_SIZE] - pool.data_off[b]:
        return SEND_TOO_LONG
    mac = next_hop_mac(st, dst)
    if mac < 0:
        return SEND_NO_ARP
    cfg = st.cfg
    l3 = eth_write(data, start, mac, cfg[C_MAC], 0x0800)
    cfg[C_IP_ID] = (cfg[C_IP_ID] + 1) & 0xFFFF
    ttl = cfg[C_MCAST_TTL] if ipv4_is_multicast(dst) else cfg[C_TTL]
    l4 = ipv4_write(data, l3, cfg[C_IP], dst, 17, UDP_HLEN + payload_len, ttl, cfg[C_IP_ID], 0, True, False)
    wr16(data, l4, sport)
    wr16(data, l4 + 2, dport)
    wr16(data, l4 + UDP_LEN, UDP_HLEN + payload_len)
    udp_fill_checksum(data, l4, cfg[C_IP], dst)
    n = UDP_PAYLOAD_OFF + payload_len
    if n < 60:
        for i in range(start + n, start + 60):
            data[i] = 0
        n = 60
    pool.data_len[b] = n
    st.cnt[K_UDP_TX] += 1
    return SEND_OK


@hot
def udp_reply_in_place(st, pool, b, info, payload_len):
    """Turn a received datagram (decoded into ``info``) into a reply to its sender
    carrying ``payload_len`` bytes at info[I_PAYLOAD] (the caller may have rewritten them).
    Swaps MACs, addresses and ports; our unicast address answers even a datagram sent to
    a group; TTL, length, ID and both checksums are rewritten (the UDP checksum in full:
    the payload may have changed, and frames from a veth peer carry partial checksums)."""
    data = pool.data
    start = buf_start(pool, b)
    l3 = info[I_L3]
    l4 = info[I_L4]
    hl = l4 - l3
    if max(info[I_PAYLOAD] + payload_len, start + 60) > start + pool.meta[BUF_SIZE] - pool.data_off[b]:
        return SEND_TOO_LONG      # (60: the padded minimum frame, written below)
    cfg = st.cfg
    src = info[I_SRC]
    wr48(data, start, info[I_SRC_MAC])
    wr48(data, start + 6, cfg[C_MAC])
    wr16(data, l3 + IP_LEN, hl + UDP_HLEN + payload_len)
    cfg[C_IP_ID] = (cfg[C_IP_ID] + 1) & 0xFFFF
    wr16(data, l3 + IP_ID, cfg[C_IP_ID])
    wr8(data, l3 + IP_TTL, cfg[C_TTL])
    wr32(data, l3 + IP_SRC, cfg[C_IP])
    wr32(data, l3 + IP_DST, src)
    ipv4_fill_checksum(data, l3)
    wr16(data, l4, info[I_DPORT])
    wr16(data, l4 + 2, info[I_SPORT])
    wr16(data, l4 + UDP_LEN, UDP_HLEN + payload_len)
    udp_fill_checksum(data, l4, cfg[C_IP], src)
    n = l4 + UDP_HLEN + payload_len - start
    if n < 60:
        for i in range(start + n, start + 60):
            data[i] = 0
        n = 60
    pool.data_len[b] = n
    st.cnt[K_UDP_TX] += 1
    return SEND_OK

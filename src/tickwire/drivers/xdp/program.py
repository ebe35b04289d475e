"""The XDP filter: redirect only tickwire's traffic to the AF_XDP socket, pass the rest.

What is "ours" (the issue's rule, so the host keeps working while we own a queue):
  * IPv4/UDP whose destination port is in ``udp_ports``, or whose destination
    address is one of ``groups`` (multicast feeds);
  * when ``ip`` (our address) is given: ARP whose target protocol address is ``ip``,
    ICMP or TCP addressed to ``ip``, and every IGMP message (queries go to 224.0.0.1
    or the group, never to our address; the stack must answer them for its groups);
  * if nothing at all is configured: every frame on the queue (libxdp's default).
Everything else -- IP options (IHL != 5), fragments, VLAN tags, IPv6, frames too short
to hold the headers we test -- returns XDP_PASS to the kernel stack.

The match ends in ``bpf_redirect_map(xskmap, ctx->rx_queue_index, miss)``; the third
argument is the action when the queue has no socket (kernel >= 5.3), normally
XDP_PASS. Tests build the program with ``miss=XDP_TX`` so that BPF_PROG_TEST_RUN
can tell "matched" (3) from "passed" (2) without a socket in the map.

Register use: r6 = ctx, r2 = data, r3 = data_end, r4 = scratch pointer,
r5 = scratch value, r7 = IPv4 destination address (raw, as loaded little-endian).
Offsets: Ethernet 14 B (EtherType @12), IPv4 @14 (ver/IHL @14, flags+frag @20,
protocol @23, dst @30), UDP dport @36, ARP target IP @38 (RFC 826 for 1+4 sizes).
"""

from __future__ import annotations

import ipaddress
import struct

from .asm import Asm
from .bpf import XDP_PASS

_HELPER_REDIRECT_MAP = 51
_ETH_P_IP_LE = 0x0008      # htons(0x0800) seen by a little-endian u16 load
_ETH_P_ARP_LE = 0x0608     # htons(0x0806)
_FRAG_MASK_LE = 0xff3f     # MF bit + 13-bit fragment offset of bytes 20..21, as a LE u16


def _ip_le(addr: str) -> int:
    """IPv4 address as the u32 a little-endian load of the network-order bytes yields."""
    return struct.unpack("<I", ipaddress.IPv4Address(addr).packed)[0]


def _htons(port: int) -> int:
    return ((port & 0xff) << 8) | (port >> 8)


def build_filter(map_fd: int, udp_ports=(), groups=(), ip: str | None = None,
                 miss_action: int = XDP_PASS) -> bytes:
    udp_ports = [int(p) for p in udp_ports]
    for p in udp_ports:
        if not 0 < p < 65536:
            raise ValueError(f"UDP port {p} out of range 1..65535")
    groups = [str(g) for g in groups]
    for g in groups:
        if not ipaddress.IPv4Address(g).is_multicast:
            raise ValueError(f"group {g} is not an IPv4 multicast address (224.0.0.0/4)")
    everything = not udp_ports and not groups and ip is None

    a = Asm()
    a.mov_reg(6, 1)                       # r6 = ctx (r1 is clobbered by the helper call)
    if not everything:
        a.ldx(4, 2, 1, 0)                 # r2 = ctx->data
        a.ldx(4, 3, 1, 4)                 # r3 = ctx->data_end
        a.mov_reg(4, 2)
        a.alu64_imm("add", 4, 14)
        a.jmp_reg("jgt", 4, 3, "pass")    # need the Ethernet header
        a.ldx(2, 5, 2, 12)                # EtherType
        if ip is not None:
            a.jmp_imm("jeq", 5, _ETH_P_ARP_LE, "arp")
        a.jmp_imm("jne", 5, _ETH_P_IP_LE, "pass")
        # IPv4, no options: everything up to the UDP checksum (offset 42) must be there.
        # ICMP echo (8 B header) and TCP (20 B) are at least as long.
        a.mov_reg(4, 2)
        a.alu64_imm("add", 4, 42)
        a.jmp_reg("jgt", 4, 3, "pass")
        a.ldx(1, 5, 2, 14)
        a.jmp_imm("jne", 5, 0x45, "pass")         # version 4, IHL 5
        a.ldx(2, 5, 2, 20)
        a.alu64_imm("and", 5, _FRAG_MASK_LE)
        a.jmp_imm("jne", 5, 0, "pass")            # fragments go to the kernel (it reassembles)
        a.ldx(4, 7, 2, 30)                        # r7 = destination address
        a.ldx(1, 5, 2, 23)                        # r5 = protocol
        a.jmp_imm("jne", 5, 17, "not_udp")
        for g in groups:
            a.jmp_imm("jeq", 7, _ip_le(g), "redirect", wide32=True)
        if udp_ports:
            a.ldx(2, 5, 2, 36)                    # destination port
            for p in udp_ports:
                a.jmp_imm("jeq", 5, _htons(p), "redirect")
        a.ja("pass")
        a.label("not_udp")
        if ip is not None:
            a.jmp_imm("jeq", 5, 2, "redirect")    # IGMP (RFC 3376 §4: queries are not sent to us)
            a.jmp_imm("jne", 7, _ip_le(ip), "pass", wide32=True)
            a.jmp_imm("jeq", 5, 1, "redirect")    # ICMP
            a.jmp_imm("jeq", 5, 6, "redirect")    # TCP
        a.ja("pass")
        if ip is not None:
            a.label("arp")
            a.mov_reg(4, 2)
            a.alu64_imm("add", 4, 42)
            a.jmp_reg("jgt", 4, 3, "pass")
            a.ldx(4, 7, 2, 38)                    # target protocol address
            a.jmp_imm("jeq", 7, _ip_le(ip), "redirect", wide32=True)
            a.ja("pass")
    a.label("redirect")
    a.ldx(4, 2, 6, 16)                            # key = ctx->rx_queue_index
    a.ld_map_fd(1, map_fd)
    a.alu64_imm("mov", 3, miss_action)
    a.call(_HELPER_REDIRECT_MAP)
    a.exit()
    if not everything:
        a.label("pass")
        a.alu64_imm("mov", 0, XDP_PASS)
        a.exit()
    return a.assemble()

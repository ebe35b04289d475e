"""``Stack``: the Python face of one interface's stack (configuration, groups,
endpoints, counters) around the Numba state that loops receive as ``stack.state``."""

from __future__ import annotations

import time

import numpy as np

from ..wire.bytes import int_to_ip, int_to_mac, ip_to_int, mac_to_int
from ..wire.decode import new_info
from . import state as S
from .igmp import igmp_change
from .input import stack_input
from .poll import stack_poll
from .udp import udp_bind, udp_prepare, udp_unbind


def parse_cidr(text: str) -> tuple[int, int]:
    addr, _, prefix = text.partition("/")
    p = int(prefix) if prefix else 32
    if not 0 <= p <= 32:
        raise ValueError(f"bad prefix in {text!r}")
    return ip_to_int(addr), p


class Stack:
    def __init__(self, mac: str | int, ip: str, gateway: str | None = None, vlan: int | None = None,
                 igmp_version: int = 3, **sizes):
        if igmp_version not in (1, 2, 3):
            raise ValueError("igmp_version must be 1, 2 or 3")
        addr, prefix = parse_cidr(ip)
        self.state = S.make_state(mac if isinstance(mac, int) else mac_to_int(mac), addr, prefix,
                                  ip_to_int(gateway) if gateway else 0, -1 if vlan is None else vlan,
                                  igmp_version=igmp_version, **sizes)
        self.info = new_info()
        self.set_now()

    # --- clock ---------------------------------------------------------------------------------
    def set_now(self, ns: int | None = None) -> None:
        self.state.cfg[S.C_NOW] = time.monotonic_ns() if ns is None else ns

    # --- configuration -------------------------------------------------------------------------
    @property
    def mac(self) -> str:
        return int_to_mac(int(self.state.cfg[S.C_MAC]))

    @property
    def ip(self) -> str:
        return int_to_ip(int(self.state.cfg[S.C_IP]))

    def join(self, group: str) -> None:
        g = ip_to_int(group)
        if g >> 28 != 0xE:
            raise ValueError(f"{group} is not an IPv4 multicast address")
        if not igmp_change(self.state, g, True):
            raise ValueError("multicast group table full")

    def leave(self, group: str) -> None:
        igmp_change(self.state, ip_to_int(group), False)

    def groups(self) -> list[str]:
        g = self.state.groups
        return [int_to_ip(int(g[i, S.G_ADDR])) for i in range(g.shape[0]) if g[i, S.G_STATE] == S.GROUP_JOINED]

    def bind_udp(self, port: int, addr: str | None = None, echo: bool = False) -> int:
        return udp_bind(self.state, port, ip_to_int(addr) if addr else 0, S.TAG_ECHO if echo else S.TAG_SINK)

    def unbind_udp(self, row: int) -> None:
        udp_unbind(self.state, row)

    def add_static_arp(self, ip: str, mac: str) -> None:
        from .arp import arp_insert
        r = arp_insert(self.state.arp, ip_to_int(ip))
        if r == -1:
            raise ValueError("ARP table full (every row static or being resolved)")
        if r <= -2:                             # a learned entry made room
            r = -2 - r
            self.state.cnt[S.K_ARP_EVICTED] += 1
        self.state.arp[r, S.A_MAC] = mac_to_int(mac)
        self.state.arp[r, S.A_STATE] = S.ARP_STATIC

    def arp_entries(self) -> dict[str, tuple[str, str]]:
        names = {S.ARP_INCOMPLETE: "incomplete", S.ARP_REACHABLE: "reachable", S.ARP_STATIC: "static"}
        a = self.state.arp
        return {int_to_ip(int(a[i, S.A_IP])): (int_to_mac(int(a[i, S.A_MAC])), names[int(a[i, S.A_STATE])])
                for i in range(a.shape[0]) if int(a[i, S.A_STATE]) in names}

    # --- counters ------------------------------------------------------------------------------
    def counters(self) -> dict[str, int]:
        return {n: int(v) for n, v in zip(S.COUNTER_NAMES, self.state.cnt) if n != "ok"}

    def drops(self) -> dict[str, int]:
        c = self.counters()
        return {n: c[n] for n in S.DROP_CAUSES if c[n]}

    # --- Python face of the hot functions (tools, tests) ---------------------------------------
    def input(self, pool, b: int) -> int:
        return int(stack_input(self.state, pool.arrays, np.int32(b), self.info))

    def poll(self, pool, max_frames: int = 32) -> np.ndarray:
        out = np.empty(max_frames, np.int32)
        n = stack_poll(self.state, pool.arrays, out, 0, max_frames)
        return out[:n]

    def udp_frame(self, pool, dst: str, sport: int, dport: int, payload: bytes) -> int:
        """A buffer holding a complete datagram, or raises (no ARP entry yet: LookupError)."""
        from .udp import SEND_NO_ARP, SEND_OK, UDP_PAYLOAD_OFF
        (b,) = pool.alloc_burst(1)
        start = int(b) * pool.buf_size + int(pool.arrays.data_off[b])
        if int(pool.arrays.data_off[b]) + UDP_PAYLOAD_OFF + len(payload) > pool.buf_size:
            pool.free_burst([b])            # checked before the copy: it would run into the next buffer
            raise ValueError("datagram too long for a buffer")
        pool.arrays.data[start + UDP_PAYLOAD_OFF:start + UDP_PAYLOAD_OFF + len(payload)] = \
            np.frombuffer(payload, np.uint8)
        r = udp_prepare(self.state, pool.arrays, np.int32(b), ip_to_int(dst), sport, dport, len(payload))
        if r != SEND_OK:
            pool.free_burst([b])
            raise (LookupError(f"no ARP entry for the next hop to {dst} yet") if r == SEND_NO_ARP
                   else ValueError("datagram too long for a buffer"))
        return int(b)

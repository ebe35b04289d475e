"""A recorded capture as the simulator's market-data feed (`tickwire sim --replay FILE.pcap`).

The capture's UDP payloads (MDP 3.0 packets, e.g. a `tickwire capture` of a feed or a
venue's certification pcap) are sent again, byte for byte and in capture order, on feeds
A and B (with the usual --impair-a/--impair-b), paced by the capture's own timestamps
scaled by ``speed``. The synthetic participants are off in replay mode, and market data
the matching engine would publish for the client's own orders is dropped (counted): one
sequence-numbered stream per channel, the recorded one.

Every frame is checked before its payload is used (Ethernet, optional 802.1Q tag, IPv4
header length / total length / fragments, UDP length); frames that are not UDP over IPv4,
truncated, fragmented or larger than a simulator packet are skipped and counted by cause.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from ..wire.pcapfile import LINKTYPE_ETHERNET, PcapError, PcapReader

MAX_PAYLOAD = 1472          # UDP payload in a 1500-byte IPv4 MTU (RFC 791 + RFC 768 headers)

SKIP_CAUSES = ("not_ethernet_ipv4", "not_udp", "truncated", "bad_ip_header", "fragment", "bad_udp_length",
               "port_filtered", "too_long")


@dataclass
class Replay:
    """Payloads and their capture times (ns, relative to the first kept packet)."""
    payloads: list = field(default_factory=list)
    times_ns: list = field(default_factory=list)
    skipped: dict = field(default_factory=lambda: dict.fromkeys(SKIP_CAUSES, 0))
    next: int = 0

    def due(self, elapsed_ns: int, speed: float, limit: int = 64) -> list:
        """Payloads whose (scaled) capture time has come, at most ``limit``."""
        out = []
        while self.next < len(self.payloads) and len(out) < limit and \
                self.times_ns[self.next] <= elapsed_ns * speed:
            out.append(self.payloads[self.next])
            self.next += 1
        return out

    @property
    def done(self) -> bool:
        return self.next >= len(self.payloads)


def udp_payload(frame: bytes):
    """(dst port, payload) of an Ethernet/IPv4/UDP frame, or (None, skip cause)."""
    if len(frame) < 14:
        return None, "truncated"
    eth_type = struct.unpack_from("!H", frame, 12)[0]
    ip = 14
    if eth_type == 0x8100:                      # IEEE 802.1Q tag
        if len(frame) < 18:
            return None, "truncated"
        eth_type = struct.unpack_from("!H", frame, 16)[0]
        ip = 18
    if eth_type != 0x0800:
        return None, "not_ethernet_ipv4"
    if len(frame) < ip + 20:
        return None, "truncated"
    vihl = frame[ip]
    ihl = (vihl & 0x0F) * 4
    total = struct.unpack_from("!H", frame, ip + 2)[0]
    if vihl >> 4 != 4 or ihl < 20 or total < ihl:       # RFC 791 §3.1
        return None, "bad_ip_header"
    if ip + total > len(frame):
        return None, "truncated"
    if frame[ip + 9] != 17:
        return None, "not_udp"
    if struct.unpack_from("!H", frame, ip + 6)[0] & 0x3FFF:   # MF flag or a fragment offset
        return None, "fragment"
    u = ip + ihl
    if total < ihl + 8:
        return None, "truncated"
    dport, ulen = struct.unpack_from("!HH", frame, u + 2)   # RFC 768
    if ulen < 8 or ulen > total - ihl:
        return None, "bad_udp_length"
    return dport, frame[u + 8:u + ulen]


def load_replay(path, ports=None) -> Replay:
    """Read a pcap (Ethernet link type). ``ports``: keep only UDP packets to these
    destination ports (None: every UDP packet)."""
    r = Replay()
    t0 = None
    with PcapReader(path) as rd:
        if rd.linktype != LINKTYPE_ETHERNET:
            raise PcapError(f"{path}: link type {rd.linktype}, only Ethernet (1) captures can be replayed")
        for rec in rd:
            dport, p = udp_payload(rec.data)
            if dport is None:
                r.skipped[p] += 1
                continue
            if ports is not None and dport not in ports:
                r.skipped["port_filtered"] += 1
                continue
            if len(p) > MAX_PAYLOAD:
                r.skipped["too_long"] += 1
                continue
            if t0 is None:
                t0 = rec.ts_ns
            r.payloads.append(bytes(p))
            r.times_ns.append(max(0, rec.ts_ns - t0))
    return r

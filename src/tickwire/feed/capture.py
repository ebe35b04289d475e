"""UDP payloads out of a pcap capture, for the feed CLI commands and the benchmark.

Frames are decoded by ``wire.decode.decode_frame`` (Ethernet/VLAN/IPv4/UDP with every
length and checksum checked); a frame it rejects is counted under its cause and
skipped. Yields (frame number, ts_ns, dst ip, dst port, payload bytes).
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from ..wire.bytes import int_to_ip
from ..wire.causes import NAMES, OK
from ..wire.decode import I_DPORT, I_DST, I_PAYLEN, I_PAYLOAD, I_PROTO, decode_frame, new_info
from ..wire.ipv4 import PROTO_UDP
from ..wire.pcapfile import LINKTYPE_ETHERNET, PcapError, PcapReader


def udp_payloads(path, drops: Counter, ports=None):
    info = new_info()
    with PcapReader(path) as r:
        if r.linktype != LINKTYPE_ETHERNET:
            raise PcapError(f"{path}: link type {r.linktype} is not Ethernet")
        for n, rec in enumerate(r, 1):
            a = np.frombuffer(rec.data, np.uint8)
            cause = decode_frame(a, 0, a.size, info)
            if cause != OK:
                drops["frame_" + NAMES[int(cause)]] += 1
                continue
            if info[I_PROTO] != PROTO_UDP:
                drops["frame_not_udp"] += 1
                continue
            if ports and int(info[I_DPORT]) not in ports:
                drops["frame_other_port"] += 1
                continue
            off, ln = int(info[I_PAYLOAD]), int(info[I_PAYLEN])
            yield n, rec.ts_ns, int_to_ip(int(info[I_DST])), int(info[I_DPORT]), rec.data[off:off + ln]

"""`tickwire sim --replay FILE.pcap`: a capture written by scapy (an independent writer)
is replayed byte for byte, in order, on feeds A and B over kernel UDP; frames that are not
usable UDP payloads are skipped and counted by cause; malformed frames never crash."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

from hypothesis import given, settings, strategies as st

from tickwire.sim.replay import udp_payload
from tickwire.sim.server import DEFAULT_INSTRUMENTS
from tickwire.sim.venue import build_venue, take_md, venue_flow


def _mdp_packets(n):
    V = build_venue(DEFAULT_INSTRUMENTS, seed=5)
    out, now = [], 10**15
    while len(out) < n:
        now += 1_000_000
        venue_flow(V, now, 4)
        out += take_md(V)
    return out[:n]


def _free_port(kind=socket.SOCK_DGRAM):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def _write_capture(path, payloads, dport):
    from scapy.all import IP, TCP, UDP, Ether, Raw, wrpcap
    frames = []
    t = 1_700_000_000.0
    for k, p in enumerate(payloads):
        f = Ether(dst="01:00:5e:4d:00:01") / IP(src="10.77.0.1", dst="239.77.0.1") / UDP(sport=14000, dport=dport) / Raw(p)
        f.time = t + k * 0.001
        frames.append(f)
        if k == 3:      # noise a feed capture may hold: order entry, a fragment, another port
            x = Ether() / IP(src="10.77.0.1", dst="10.77.0.2") / TCP(dport=9310) / Raw(b"x" * 20)
            x.time = f.time
            frag = Ether() / IP(dst="239.77.0.1", flags="MF") / UDP(dport=dport) / Raw(b"y" * 30)
            frag.time = f.time
            other = Ether() / IP(dst="239.77.0.9") / UDP(dport=dport + 1) / Raw(b"z" * 30)
            other.time = f.time
            frames += [x, frag, other]
    wrpcap(str(path), frames)


def test_replay_sends_the_captured_payloads_in_order_on_both_feeds(tmp_path):
    payloads = _mdp_packets(40)
    pa, pb, ps, oe = _free_port(), _free_port(), _free_port(), _free_port(socket.SOCK_STREAM)
    cap = tmp_path / "feed.pcap"
    _write_capture(cap, payloads, 14310)
    socks = []
    for p in (pa, pb):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        s.bind(("127.0.0.1", p))
        s.settimeout(0.2)
        socks.append(s)
    sim = subprocess.Popen([sys.executable, "-m", "tickwire.cli", "sim", "--port", "socket", "--replay", str(cap),
                            "--replay-ports", "14310", "--replay-speed", "4", "--start", "now",
                            "--udp-ports", f"{pa},{pb},{ps}", "--oe-port", str(oe), "--duration", "60", "--json"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    got = [[], []]
    try:
        deadline = time.monotonic() + 600      # a cold Numba cache compiles the venue first
        while time.monotonic() < deadline and (len(got[0]) < 40 or len(got[1]) < 40):
            assert sim.poll() is None, sim.stderr.read()
            for f, s in enumerate(socks):
                try:
                    got[f].append(s.recv(65536))
                except socket.timeout:
                    pass
    finally:
        sim.terminate()
        out, err = sim.communicate(timeout=60)
        for s in socks:
            s.close()
    assert got[0] == payloads, "feed A: the capture's payloads, byte for byte, in capture order"
    assert got[1] == payloads, "feed B"
    stats = json.loads([x for x in out.splitlines() if x.startswith("{")][-1])
    assert stats["replay_packets"] == 40 and stats["replay_sent"] == 40
    assert stats["replay_skipped_not_udp"] == 1
    assert stats["replay_skipped_fragment"] == 1
    assert stats["replay_skipped_port_filtered"] == 1
    assert stats["flow_steps"] == 0, "synthetic participants are off in replay mode"


def test_udp_payload_causes():
    from scapy.all import IP, UDP, Dot1Q, Ether, Raw
    ok = bytes(Ether() / Dot1Q(vlan=7) / IP() / UDP(dport=5) / Raw(b"abc"))
    assert udp_payload(ok) == (5, b"abc")
    assert udp_payload(ok[:20]) == (None, "truncated")
    bad_len = bytearray(bytes(Ether() / IP() / UDP(dport=5) / Raw(b"abc")))
    bad_len[14 + 20 + 4:14 + 20 + 6] = (200).to_bytes(2, "big")     # UDP length past the datagram
    assert udp_payload(bytes(bad_len)) == (None, "bad_udp_length")
    assert udp_payload(bytes(Ether(type=0x86DD) / Raw(b"\x60" + b"\0" * 60))) == (None, "not_ethernet_ipv4")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=120))
def test_udp_payload_never_fails_on_garbage(data):
    base = bytes(Ether_IP_UDP())
    for frame in (data, base[:14] + data, base[:34] + data):
        port, p = udp_payload(frame)
        if port is not None:
            assert len(p) <= len(frame)


def Ether_IP_UDP():
    from scapy.all import IP, UDP, Ether
    return Ether() / IP() / UDP(dport=1)

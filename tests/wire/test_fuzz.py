"""Hypothesis: truncated, oversized and malformed frames at every layer.

Numba does not bounds-check, so "never reads past the frame" is tested
differentially: each frame sits at the end of its region followed by guard bytes,
and is decoded twice, with guards of 0x00 and of 0xFF. Any read past the frame
would make the two results differ. Writers (the stack's in-place replies, the packet
port's checksum completion) must leave the guards untouched.
"""

import warnings

import numpy as np
from hypothesis import HealthCheck, given, settings, strategies as st
from scapy.all import ARP, ICMP, IP, TCP, UDP, Dot1Q, Ether, raw

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from scapy.layers.igmp import IGMP, IGMPv3_MQ, IGMPv3_MR, IGMPv3_MR_Group

from tickwire.drivers.packet import _complete_l4_checksum
from tickwire.mem.mempool import Mempool
from tickwire.stack import ACT_FREE, Stack
from tickwire.stack.state import COUNTER_NAMES
from tickwire.wire import causes
from tickwire.wire.decode import decode_frame, new_info
from tickwire.wire.igmp import igmp_query_decode, igmpv3_report_check
from tickwire.wire.ipv4 import ipv4_options_ok
from tickwire.wire.tcp import new_options, tcp_parse_options

ME, PEER, MY_IP, PEER_IP = "02:00:00:00:00:01", "02:00:00:00:00:02", "10.9.0.1", "10.9.0.2"
RA = b"\x94\x04\x00\x00"
CORPUS = [raw(p) for p in (
    Ether(dst="ff:ff:ff:ff:ff:ff", src=PEER) / ARP(op=1, hwsrc=PEER, psrc=PEER_IP, pdst=MY_IP),
    Ether(dst=ME, src=PEER) / IP(src=PEER_IP, dst=MY_IP) / ICMP(type=8) / (b"p" * 40),
    Ether(dst=ME, src=PEER) / IP(src=PEER_IP, dst=MY_IP) / UDP(sport=1, dport=7) / b"echo",
    Ether(dst=ME, src=PEER) / Dot1Q(vlan=5) / IP(src=PEER_IP, dst=MY_IP, options=b"\x01\x01\x01\x00") / UDP(dport=7),
    Ether(dst="01:00:5e:01:01:01", src=PEER) / IP(src=PEER_IP, dst="239.1.1.1") / UDP(dport=7, chksum=0) / b"md",
    Ether(dst=ME, src=PEER) / IP(src=PEER_IP, dst=MY_IP) / TCP(flags="S", options=[
        ("MSS", 1460), ("SAckOK", b""), ("Timestamp", (1, 2)), ("NOP", None), ("WScale", 7)]),
    Ether(dst=ME, src=PEER) / IP(src=PEER_IP, dst=MY_IP) / TCP(flags="A", options=[("SAck", (1, 2, 3, 4))]) / b"d",
    Ether(dst="01:00:5e:00:00:01", src=PEER) / IP(src=PEER_IP, dst="224.0.0.1", ttl=1, options=RA) / IGMP(
        type=0x11, mrcode=100),
    Ether(dst="01:00:5e:00:00:01", src=PEER) / IP(src=PEER_IP, dst="224.0.0.1", ttl=1, options=RA) / IGMPv3_MQ(
        mrcode=150, srcaddrs=["1.2.3.4"]),
    Ether(dst="01:00:5e:00:00:16", src=PEER) / IP(src=PEER_IP, dst="224.0.0.22", ttl=1, options=RA) / IGMPv3_MR(
        records=[IGMPv3_MR_Group(rtype=4, maddr="239.1.1.1", srcaddrs=["1.1.1.1"])]),
)]

GUARD = 64


def _placed(frame, guard):
    a = np.full(8 + len(frame) + GUARD, guard, np.uint8)
    a[8:8 + len(frame)] = np.frombuffer(frame, np.uint8)
    return a


def _decode_both(frame):
    outs = []
    for g in (0x00, 0xFF):
        info = new_info()
        c = decode_frame(_placed(frame, g), 8, len(frame), info)
        outs.append((int(c), info.tolist()))
    return outs


def mutated():
    """A corpus frame, then truncated/extended/byte-flipped/length-field-forged."""
    @st.composite
    def strat(draw):
        f = bytearray(draw(st.sampled_from(CORPUS)))
        for _ in range(draw(st.integers(0, 4))):
            kind = draw(st.integers(0, 3))
            if kind == 0 and f:
                f = f[:draw(st.integers(0, len(f)))]                           # truncate
            elif kind == 1:
                f += draw(st.binary(max_size=64))                              # oversize / trailing junk
            elif kind == 2 and f:
                i = draw(st.integers(0, len(f) - 1))
                f[i] = draw(st.integers(0, 255))                               # flip a byte
            elif kind == 3 and len(f) > 2:
                # forge a 16-bit length-like field at a header-ish offset
                i = draw(st.sampled_from([14, 16, 18, 20, 24, 34, 36, 38, 40, 46, 48, 50])) % (len(f) - 1)
                v = draw(st.integers(0, 0xFFFF))
                f[i], f[i + 1] = v >> 8, v & 0xFF
        return bytes(f)
    return strat()


frames = st.one_of(mutated(), st.binary(max_size=1600))


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames)
def test_decode_never_reads_past_the_frame(frame):
    a, b = _decode_both(frame)
    assert a[0] == b[0]
    if a[0] == causes.OK:
        assert a[1] == b[1]
    assert 0 <= a[0] < causes.N_WIRE_CAUSES


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames)
def test_stack_counts_every_frame_and_writes_inside_it(frame):
    pool = Mempool(4, 2048, 128)
    s = Stack(ME, MY_IP + "/24")
    s.bind_udp(7, echo=True)
    s.join("239.1.1.1")
    if len(frame) > 2048 - 128 - GUARD:
        frame = frame[:2048 - 128 - GUARD]
    (b,) = pool.alloc_frames([frame])
    start = int(b) * 2048 + 128
    pool.arrays.data[start + len(frame):start + len(frame) + GUARD] = 0xA5
    before = s.state.cnt.copy()
    act = s.input(pool, int(b))
    assert (pool.arrays.data[start + len(frame):start + len(frame) + GUARD] == 0xA5).all()
    if act == ACT_FREE:
        grew = [n for n, x, y in zip(COUNTER_NAMES, before, s.state.cnt) if y > x and n != "rx_frames"]
        assert grew, "a freed frame must be counted under some cause"
    pool.free_burst([b])
    assert pool.check() == 0


@settings(max_examples=800, deadline=None)
@given(st.binary(max_size=40))
def test_tcp_options_parser(opts):
    opts = opts + bytes(-len(opts) % 4)
    seg = np.zeros(8 + 20 + len(opts) + GUARD, np.uint8)
    seg[8 + 20:8 + 20 + len(opts)] = np.frombuffer(opts, np.uint8)
    results = []
    for g in (0, 0xFF):
        seg[8 + 20 + len(opts):] = g
        o = new_options()
        results.append((tcp_parse_options(seg, 8, 20 + len(opts), o), o.tolist()))
    assert results[0] == results[1]


@settings(max_examples=800, deadline=None)
@given(st.binary(max_size=80))
def test_igmp_and_ip_option_walkers(data):
    res = []
    for g in (0, 0xFF):
        a = _placed(data, g)
        res.append((igmpv3_report_check(a, 8, len(data)),
                    igmp_query_decode(a, 8, len(data)) if len(data) >= 8 else None,
                    ipv4_options_ok(a, 8, 8 + min(len(data), 40))))
    assert res[0] == res[1]


@settings(max_examples=1000, deadline=None)
@given(frames)
def test_packet_port_checksum_completion_stays_inside(frame):
    outs = []
    for g in (0, 0xFF):
        a = _placed(frame, g)
        done = _complete_l4_checksum(a, 8, len(frame))
        assert (a[8 + len(frame):] == g).all() and (a[:8] == g).all()
        outs.append((done, a[8:8 + len(frame)].tobytes()))
    assert outs[0] == outs[1]

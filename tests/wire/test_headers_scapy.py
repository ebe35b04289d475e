"""Every encoder checked by scapy's parser; every decoder fed frames scapy built."""

import numpy as np
import pytest
from scapy.all import ARP, Dot1AD, Dot1Q, ICMP, IP, TCP, UDP, Ether, Raw, raw
from scapy.layers.igmp import IGMP, IGMPv3, IGMPv3_MQ, IGMPv3_MR, IGMPv3_MR_Group

from tickwire.wire import (ArpRepr, EthernetRepr, IcmpEchoRepr, IgmpRepr, Ipv4Repr, TcpRepr, UdpRepr, causes,
                           decode)
from tickwire.wire.igmp import CHANGE_TO_EXCLUDE, IGMPV2_REPORT, IGMPV3_REPORT, IGMP_QUERY, MODE_IS_EXCLUDE
from tickwire.wire.tcp import ACK, SYN

MAC1, MAC2 = "02:00:00:00:00:01", "02:00:00:00:00:02"


# ---- encoders, parsed by scapy ---------------------------------------------------------------

def test_ethernet_encoder():
    e = Ether(EthernetRepr(MAC2, MAC1, 0x0800).emit() + bytes(20))
    assert (e.dst, e.src, e.type) == (MAC2, MAC1, 0x0800)
    v = Ether(EthernetRepr(MAC2, MAC1, 0x0806, vlan=(5 << 13) | 100).emit() + bytes(28))
    assert v[Dot1Q].vlan == 100 and v[Dot1Q].prio == 5 and v[Dot1Q].type == 0x0806


def test_arp_encoder():
    a = ARP(ArpRepr(1, MAC1, "10.0.0.1", "00:00:00:00:00:00", "10.0.0.2").emit())
    assert (a.op, a.hwsrc, a.psrc, a.pdst) == (1, MAC1, "10.0.0.1", "10.0.0.2")


def test_ipv4_udp_encoder_checksums_verified_by_scapy():
    payload = b"tickwire!"
    udp = UdpRepr(1234, 5678, payload).emit("10.0.0.1", "239.1.2.3")
    ip = Ipv4Repr("10.0.0.1", "239.1.2.3", 17, len(udp), ttl=1, ident=77).emit()
    p = IP(ip + udp)
    ref = IP(raw(p.copy().__class__(raw(p))))  # round trip
    q = IP(src="10.0.0.1", dst="239.1.2.3", ttl=1, id=77, flags="DF") / UDP(sport=1234, dport=5678) / payload
    assert raw(q) == ip + udp
    assert p[UDP].chksum == IP(raw(q))[UDP].chksum and ref.chksum == p.chksum


def test_udp_computed_zero_checksum_sent_as_ffff():
    # find a payload whose checksum computes to 0 -> must be sent as 0xFFFF (RFC 768)
    for i in range(70000):
        pl = i.to_bytes(4, "big")
        u = UdpRepr(1, 2, pl).emit("1.2.3.4", "5.6.7.8")
        c = int.from_bytes(u[6:8], "big")
        assert c != 0
        if c == 0xFFFF:
            assert IP(raw(IP(src="1.2.3.4", dst="5.6.7.8") / UDP(sport=1, dport=2) / pl))[UDP].chksum == 0xFFFF
            return
    pytest.fail("no zero-sum payload found")


def test_router_alert_option_encoder():
    h = Ipv4Repr("10.0.0.1", "224.0.0.22", 2, 16, ttl=1, options=b"\x94\x04\x00\x00").emit()
    p = IP(h + bytes(16))
    assert p.ihl == 6 and p.options[0].option == 20 and p.ttl == 1
    assert IP(raw(IP(h + bytes(16)))).chksum == p.chksum


def test_tcp_encoder_with_all_options():
    t = TcpRepr(40000, 443, 0x12345678, 0x9ABCDEF0, SYN | ACK, 65535, mss=1460, wscale=7, sack_perm=True,
                ts_val=1000, ts_ecr=2000, payload=b"xyz")
    seg = TCP(t.emit("10.0.0.1", "10.0.0.2"))
    opts = dict(seg.options)
    assert opts["MSS"] == 1460 and opts["WScale"] == 7 and "SAckOK" in opts and opts["Timestamp"] == (1000, 2000)
    assert (seg.sport, seg.dport, seg.seq, seg.ack, seg.flags, seg.window) == (40000, 443, 0x12345678, 0x9ABCDEF0,
                                                                              "SA", 65535)
    full = IP(src="10.0.0.1", dst="10.0.0.2") / seg.copy()
    del full[TCP].chksum
    assert IP(raw(full))[TCP].chksum == seg.chksum and bytes(seg[TCP].payload) == b"xyz"


def test_tcp_sack_encoder():
    t = TcpRepr(1, 2, 3, 4, ACK, 100, sack=[(10, 20), (30, 40)])
    seg = TCP(t.emit("1.1.1.1", "2.2.2.2"))
    assert dict(seg.options)["SAck"] == (10, 20, 30, 40)


def test_icmp_encoder():
    m = ICMP(IcmpEchoRepr(8, 0x1234, 7, b"ping-data").emit())
    assert (m.type, m.id, m.seq, bytes(m.payload)) == (8, 0x1234, 7, b"ping-data")
    assert ICMP(raw(ICMP(type=8, id=0x1234, seq=7) / b"ping-data")).chksum == m.chksum


def test_igmp_encoders():
    v2 = IGMP(IgmpRepr(IGMPV2_REPORT, 0, "239.1.1.1").emit())
    assert v2.type == 0x16 and v2.gaddr == "239.1.1.1"
    assert IGMP(raw(IGMP(type=0x16, gaddr="239.1.1.1"))).chksum == v2.chksum
    v3 = IGMPv3(IgmpRepr(IGMPV3_REPORT, records=[(CHANGE_TO_EXCLUDE, "239.1.1.1", []),
                                                (MODE_IS_EXCLUDE, "239.2.2.2", [])]).emit())
    mr = v3[IGMPv3_MR]
    assert v3.type == 0x22 and mr.numgrp == 2 and IGMPv3(raw(v3)).chksum == v3.chksum
    assert [(r.rtype, r.maddr) for r in mr.records] == [(4, "239.1.1.1"), (2, "239.2.2.2")]
    q = IGMPv3(IgmpRepr(IGMP_QUERY, max_resp=100, group="0.0.0.0", version=3).emit())
    assert q.type == 0x11 and q.mrcode == 100


# ---- decoders, fed scapy-built frames (including odd ones) -----------------------------------

def _d(pkt):
    return decode(raw(pkt))


def test_decode_udp_multicast_over_vlan():
    d = _d(Ether(dst="01:00:5e:01:02:03", src=MAC1) / Dot1Q(vlan=42, prio=3) / IP(src="10.1.1.1", dst="239.1.2.3")
           / UDP(sport=5000, dport=14310) / b"payload!")
    assert d["cause"] == "ok" and d["tci"] == (3 << 13) | 42 and d["proto"] == 17
    assert (d["sport"], d["dport"], d["payload_len"], d["payload"]) == (5000, 14310, 8, 14 + 4 + 20 + 8)


def test_decode_qinq_two_tags():
    d = _d(Ether(src=MAC1, dst=MAC2) / Dot1AD(vlan=7) / Dot1Q(vlan=9) / IP() / UDP() / b"x")
    assert d["cause"] == "ok" and d["tci"] == 7 and d["l3"] == 22


def test_decode_ip_options_and_zero_udp_checksum():
    p = Ether() / IP(src="10.0.0.1", dst="10.0.0.2", options=b"\x94\x04\x00\x00\x01\x01\x01\x00") / UDP(
        sport=1, dport=2, chksum=0) / b"abc"
    d = _d(p)
    assert d["cause"] == "ok" and d["ip_hlen"] == 28 and d["payload"] == 14 + 28 + 8 and d["payload_len"] == 3


def test_decode_padded_short_frame_uses_ip_length():
    f = raw(Ether() / IP(src="1.1.1.1", dst="2.2.2.2") / UDP(sport=1, dport=2) / b"a") + bytes(20)
    d = decode(f)
    assert d["cause"] == "ok" and d["payload_len"] == 1


def test_decode_tcp_icmp_igmp_arp():
    assert _d(Ether() / IP(src="1.1.1.1", dst="2.2.2.2") / TCP(options=[("MSS", 1460), ("NOP", None),
                                                                        ("WScale", 3)]) / b"data")["payload_len"] == 4
    assert _d(Ether() / IP(src="1.1.1.1", dst="2.2.2.2") / ICMP(type=8) / b"abc")["cause"] == "ok"
    assert _d(Ether() / IP(src="1.1.1.1", dst="224.0.0.1", ttl=1, options=b"\x94\x04\x00\x00")
              / IGMP(type=0x11, mrcode=100))["cause"] == "ok"
    assert _d(Ether() / ARP(op=1, psrc="1.1.1.1", pdst="2.2.2.2"))["ethertype"] == 0x0806
    r = ArpRepr.parse(raw(ARP(op=2, hwsrc=MAC1, psrc="1.1.1.1", hwdst=MAC2, pdst="2.2.2.2")))
    assert (r.oper, r.sha, r.spa, r.tha, r.tpa) == (2, MAC1, "1.1.1.1", MAC2, "2.2.2.2")


def test_decode_tcp_options_from_scapy():
    seg = raw(TCP(sport=5, dport=6, seq=1, ack=2, flags="S", options=[
        ("MSS", 9000), ("SAckOK", b""), ("Timestamp", (11, 22)), ("NOP", None), ("WScale", 14),
        ("SAck", (100, 200))]))
    t = TcpRepr.parse(seg, "1.1.1.1", "2.2.2.2", verify_checksum=False)
    assert (t.mss, t.wscale, t.sack_perm, t.ts_val, t.ts_ecr, t.sack) == (9000, 14, True, 11, 22, [(100, 200)])


def test_decode_igmp_from_scapy():
    assert IgmpRepr.parse(raw(IGMP(type=0x11, mrcode=0, gaddr="0.0.0.0"))).version == 1
    q2 = IgmpRepr.parse(raw(IGMP(type=0x11, mrcode=50, gaddr="239.1.1.1")))
    assert (q2.version, q2.max_resp, q2.group) == (2, 50, "239.1.1.1")
    q3 = IgmpRepr.parse(raw(IGMPv3_MQ(mrcode=200, gaddr="239.1.1.1", srcaddrs=["1.2.3.4"])))
    assert q3.version == 3 and q3.max_resp == 200   # scapy encodes 200 as the float form 0x89
    rep = IgmpRepr.parse(raw(IGMPv3_MR(records=[
        IGMPv3_MR_Group(rtype=1, maddr="239.3.3.3", srcaddrs=["10.0.0.9", "10.0.0.8"]),
        IGMPv3_MR_Group(rtype=4, maddr="239.4.4.4")])))
    assert rep.records == [(1, "239.3.3.3", ["10.0.0.9", "10.0.0.8"]), (4, "239.4.4.4", [])]


@pytest.mark.parametrize("pkt, cause", [
    (Ether() / IP(src="1.1.1.1", dst="2.2.2.2", chksum=0x1234) / UDP(), causes.BAD_CHECKSUM),
    (Ether() / IP(src="1.1.1.1", dst="2.2.2.2") / UDP(chksum=0x1234) / b"x", causes.BAD_CHECKSUM),
    (Ether() / IP(src="1.1.1.1", dst="2.2.2.2", flags="MF") / UDP(), causes.FRAGMENT),
    (Ether() / IP(src="1.1.1.1", dst="2.2.2.2", frag=10) / b"xxxxxxxx", causes.FRAGMENT),
    (Ether() / IP(src="1.1.1.1", dst="2.2.2.2", ttl=0) / UDP(), causes.TTL_EXPIRED),
    (Ether() / IP(src="1.1.1.1", dst="2.2.2.2", proto=99) / b"zz", causes.UNKNOWN_PROTOCOL),
    (Ether(type=0x86DD) / Raw(b"\x60" + bytes(40)), causes.UNKNOWN_ETHERTYPE),
    (Ether() / IP(src="1.1.1.1", dst="2.2.2.2", version=5) / UDP(), causes.BAD_HEADER),
    (Ether() / IP(src="1.1.1.1", dst="2.2.2.2", len=10) / UDP(), causes.BAD_HEADER),
    (Ether() / IP(src="1.1.1.1", dst="2.2.2.2", len=200) / UDP(), causes.TRUNCATED),
    (Ether() / IP(src="1.1.1.1", dst="2.2.2.2") / UDP(len=50) / b"x", causes.TRUNCATED),
    (Ether() / IP(src="1.1.1.1", dst="2.2.2.2") / ICMP(chksum=1), causes.BAD_CHECKSUM),
])
def test_decode_rejects_with_named_cause(pkt, cause):
    assert decode(raw(pkt))["cause"] == causes.NAMES[cause]


def test_every_truncation_of_a_scapy_frame_is_refused():
    f = raw(Ether() / Dot1Q() / IP(src="1.1.1.1", dst="2.2.2.2", options=b"\x01\x01\x01\x00") / TCP(
        options=[("MSS", 1460)]) / b"data")
    for n in range(len(f)):
        assert decode(f[:n])["cause"] != "ok"

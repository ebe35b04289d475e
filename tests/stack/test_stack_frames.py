"""The stack fed frames built by scapy; its replies and timer frames parsed by scapy."""

import numpy as np
import pytest
from scapy.all import ARP, ICMP, IP, TCP, UDP, Dot1Q, Ether, Raw, raw
from scapy.layers.igmp import IGMP, IGMPv3, IGMPv3_MQ, IGMPv3_MR

from tickwire.mem.mempool import Mempool
from tickwire.stack import ACT_FREE, ACT_TCP, ACT_TX, ACT_UDP, I_EP, Stack
from tickwire.stack.state import NS
from tickwire.wire.decode import I_PAYLEN, I_PAYLOAD, I_SPORT, I_SRC

ME, PEER = "02:00:00:00:00:01", "02:00:00:00:00:02"
MY_IP, PEER_IP = "10.9.0.1", "10.9.0.2"


@pytest.fixture
def env():
    pool = Mempool(128, 2048, 128)
    s = Stack(ME, MY_IP + "/24")
    yield s, pool
    pool.check()


def feed(s, pool, pkt):
    (b,) = pool.alloc_frames([raw(pkt)])
    act = s.input(pool, int(b))
    out = pool.read(int(b))
    if act != ACT_UDP:
        pool.free_burst([b])
    return act, out, int(b)


def test_arp_request_answered_and_peer_learned(env):
    s, pool = env
    act, out, _ = feed(s, pool, Ether(dst="ff:ff:ff:ff:ff:ff", src=PEER) / ARP(op=1, hwsrc=PEER, psrc=PEER_IP,
                                                                                pdst=MY_IP))
    r = Ether(out)
    assert act == ACT_TX and r.dst == PEER and r.src == ME
    assert (r[ARP].op, r[ARP].hwsrc, r[ARP].psrc, r[ARP].hwdst, r[ARP].pdst) == (2, ME, MY_IP, PEER, PEER_IP)
    assert s.arp_entries()[PEER_IP] == (PEER, "reachable")


def test_arp_for_other_address_and_conflict(env):
    s, pool = env
    act, _, _ = feed(s, pool, Ether(dst="ff:ff:ff:ff:ff:ff", src=PEER) / ARP(op=1, hwsrc=PEER, psrc=PEER_IP,
                                                                              pdst="10.9.0.77"))
    assert act == ACT_FREE and s.counters()["arp_not_for_us"] == 1 and PEER_IP not in s.arp_entries()
    feed(s, pool, Ether(dst="ff:ff:ff:ff:ff:ff", src=PEER) / ARP(op=1, hwsrc=PEER, psrc=MY_IP, pdst=MY_IP))
    assert s.drops()["ip_conflict"] == 1


def test_gratuitous_arp_updates_existing_entry_only(env):
    s, pool = env
    feed(s, pool, Ether(dst="ff:ff:ff:ff:ff:ff", src=PEER) / ARP(op=1, hwsrc=PEER, psrc=PEER_IP, pdst=MY_IP))
    new = "02:00:00:00:00:99"
    feed(s, pool, Ether(dst="ff:ff:ff:ff:ff:ff", src=new) / ARP(op=1, hwsrc=new, psrc=PEER_IP, pdst=PEER_IP))
    feed(s, pool, Ether(dst="ff:ff:ff:ff:ff:ff", src=new) / ARP(op=1, hwsrc=new, psrc="10.9.0.50", pdst="10.9.0.50"))
    e = s.arp_entries()
    assert e[PEER_IP] == (new, "reachable") and "10.9.0.50" not in e


def test_ping_answered_with_valid_checksums(env):
    s, pool = env
    act, out, _ = feed(s, pool, Ether(dst=ME, src=PEER) / IP(src=PEER_IP, dst=MY_IP, ttl=3) / ICMP(
        type=8, id=0x77, seq=9) / (b"x" * 56))
    assert act == ACT_TX
    r = Ether(out)
    assert (r.dst, r.src, r[IP].src, r[IP].dst, r[IP].ttl) == (PEER, ME, MY_IP, PEER_IP, 64)
    assert (r[ICMP].type, r[ICMP].id, r[ICMP].seq, bytes(r[ICMP].payload)) == (0, 0x77, 9, b"x" * 56)
    chk = Ether(raw(r))
    del chk[IP].chksum, chk[ICMP].chksum
    chk = Ether(raw(chk))
    assert chk[IP].chksum == r[IP].chksum and chk[ICMP].chksum == r[ICMP].chksum


def test_udp_demux_unicast_group_and_wildcard(env):
    s, pool = env
    e_any = s.bind_udp(5000)
    e_grp = s.bind_udp(5000, "239.1.1.1")
    s.join("239.1.1.1")
    act, _, b = feed(s, pool, Ether(dst=ME, src=PEER) / IP(src=PEER_IP, dst=MY_IP) / UDP(sport=7, dport=5000) / b"hi")
    assert act == ACT_UDP and s.info[I_EP] == e_any and s.info[I_PAYLEN] == 2 and s.info[I_SPORT] == 7
    start = b * pool.buf_size + int(pool.arrays.data_off[b])
    assert pool.arrays.data[s.info[I_PAYLOAD]:s.info[I_PAYLOAD] + 2].tobytes() == b"hi"
    assert s.info[I_PAYLOAD] == start + 42
    pool.free_burst([b])
    act, _, b = feed(s, pool, Ether(dst="01:00:5e:01:01:01", src=PEER) / IP(src=PEER_IP, dst="239.1.1.1")
                     / UDP(sport=7, dport=5000) / b"md")
    assert act == ACT_UDP and s.info[I_EP] == e_grp
    pool.free_burst([b])
    # not joined -> not for us; no endpoint -> counted
    act, _, _ = feed(s, pool, Ether(dst="01:00:5e:02:02:02", src=PEER) / IP(src=PEER_IP, dst="239.2.2.2") / UDP(
        dport=5000))
    assert act == ACT_FREE and s.drops()["not_for_us"] == 1
    act, _, _ = feed(s, pool, Ether(dst=ME, src=PEER) / IP(src=PEER_IP, dst=MY_IP) / UDP(dport=5001))
    assert act == ACT_FREE and s.drops()["no_endpoint"] == 1


def test_udp_reply_in_place_valid_checksum(env):
    from tickwire.stack.udp import udp_reply_in_place
    s, pool = env
    s.bind_udp(7, echo=True)
    act, _, b = feed(s, pool, Ether(dst=ME, src=PEER) / IP(src=PEER_IP, dst=MY_IP) / UDP(sport=4444, dport=7)
                     / b"echo me")
    assert act == ACT_UDP
    assert udp_reply_in_place(s.state, pool.arrays, np.int32(b), s.info, s.info[I_PAYLEN]) == 0
    r = Ether(pool.read(b))
    pool.free_burst([b])
    assert (r[IP].src, r[IP].dst, r[UDP].sport, r[UDP].dport, r[Raw].load) == (MY_IP, PEER_IP, 7, 4444,
                                                                                         b"echo me")
    chk = r.copy()
    del chk[IP].chksum, chk[UDP].chksum
    chk = Ether(raw(chk))
    assert chk[UDP].chksum == r[UDP].chksum and chk[IP].chksum == r[IP].chksum


def test_tcp_goes_to_caller_only_for_unicast(env):
    s, pool = env
    act, _, _ = feed(s, pool, Ether(dst=ME, src=PEER) / IP(src=PEER_IP, dst=MY_IP) / TCP(sport=1, dport=2))
    assert act == ACT_TCP
    act, _, _ = feed(s, pool, Ether(dst="ff:ff:ff:ff:ff:ff", src=PEER) / IP(src=PEER_IP, dst="10.9.0.255") / TCP())
    assert act == ACT_FREE


@pytest.mark.parametrize("pkt, cause", [
    (Ether(dst=ME, src=PEER) / IP(src=PEER_IP, dst=MY_IP, chksum=1) / UDP(), "bad_checksum"),
    (Ether(dst=ME, src=PEER) / IP(src=PEER_IP, dst=MY_IP, flags="MF") / UDP(), "fragment"),
    (Ether(dst=ME, src=PEER) / IP(src=PEER_IP, dst=MY_IP, ttl=0) / UDP(), "ttl_expired"),
    (Ether(dst=ME, src=PEER) / IP(src=PEER_IP, dst=MY_IP, proto=132) / b"sctp", "unknown_protocol"),
    (Ether(dst=ME, src=PEER) / IP(src="224.0.0.9", dst=MY_IP) / UDP(), "bad_address"),
    (Ether(dst=PEER, src=PEER) / IP(src=PEER_IP, dst=MY_IP) / UDP(), "not_for_us"),
    (Ether(dst=ME, src=PEER) / IP(src=PEER_IP, dst="10.9.0.3") / UDP(), "not_for_us"),
    (Ether(dst=ME, src=PEER) / Dot1Q(vlan=3) / IP(src=PEER_IP, dst=MY_IP) / UDP(), "not_for_us"),
    (Ether(dst=ME, src=PEER, type=0x86DD) / (b"\x60" + bytes(39)), "unknown_ethertype"),
])
def test_drops_counted_by_cause(env, pkt, cause):
    s, pool = env
    act, _, _ = feed(s, pool, pkt)
    assert act == ACT_FREE and s.drops() == {cause: 1}


def test_timer_frames_garp_arp_request_and_igmp(env):
    s, pool = env
    s.join("239.5.5.5")
    out = s.poll(pool)
    frames = [Ether(f) for f in pool.frames(out)]
    pool.free_burst(out)
    garp = [f for f in frames if ARP in f]
    assert len(garp) == 1 and garp[0][ARP].psrc == garp[0][ARP].pdst == MY_IP and garp[0].dst == "ff:ff:ff:ff:ff:ff"
    rep = [f for f in frames if IGMPv3 in f or IGMP in f]
    assert len(rep) == 1
    r = rep[0]
    assert r[IP].dst == "224.0.0.22" and r[IP].ttl == 1 and r[IP].options[0].option == 20
    assert r.dst == "01:00:5e:00:00:16"
    mr = IGMPv3(raw(r[IP].payload))
    assert mr.type == 0x22 and [(g.rtype, g.maddr) for g in mr[IGMPv3_MR].records] == [(4, "239.5.5.5")]
    # the second state-change report comes within the unsolicited interval (1 s)
    s.set_now(int(s.state.cfg[1 + 4]) + 2 * NS)
    out = s.poll(pool)
    assert len(out) == 1
    pool.free_burst(out)
    # unresolved unicast destination -> ARP request, then give up after 3 tries
    with pytest.raises(LookupError):
        s.udp_frame(pool, "10.9.0.44", 1, 2, b"x")
    for k in range(4):
        s.set_now(int(s.state.cfg[5]) + 2 * NS)
        out = s.poll(pool)
        reqs = [Ether(f) for f in pool.frames(out)]
        pool.free_burst(out)
        if k < 3:
            assert len(reqs) == 1 and reqs[0][ARP].op == 1 and reqs[0][ARP].pdst == "10.9.0.44"
        else:
            assert reqs == []
    assert s.counters()["arp_failed"] == 1


def test_igmp_query_answered_v3_and_v2_compat(env):
    s, pool = env
    s.join("239.7.7.7")
    pool.free_burst(s.poll(pool))
    s.set_now(int(s.state.cfg[5]) + 5 * NS)
    pool.free_burst(s.poll(pool))                     # second state-change report
    q3 = Ether(dst="01:00:5e:00:00:01", src=PEER) / IP(src=PEER_IP, dst="224.0.0.1", ttl=1,
                                                         options=b"\x94\x04\x00\x00") / IGMPv3_MQ(mrcode=10)
    assert feed(s, pool, q3)[0] == ACT_FREE
    s.set_now(int(s.state.cfg[5]) + 2 * NS)
    out = s.poll(pool)
    fr = [Ether(f) for f in pool.frames(out)]
    pool.free_burst(out)
    assert len(fr) == 1
    assert [(g.rtype, g.maddr) for g in IGMPv3(raw(fr[0][IP].payload))[IGMPv3_MR].records] == [(2, "239.7.7.7")]
    # a v2 query switches us to v2 reports sent to the group itself
    q2 = Ether(dst="01:00:5e:00:00:01", src=PEER) / IP(src=PEER_IP, dst="224.0.0.1", ttl=1) / IGMP(type=0x11,
                                                                                                   mrcode=10)
    feed(s, pool, q2)
    s.set_now(int(s.state.cfg[5]) + 2 * NS)
    out = s.poll(pool)
    fr = [Ether(f) for f in pool.frames(out)]
    pool.free_burst(out)
    assert len(fr) == 1 and fr[0][IP].dst == "239.7.7.7" and IGMP(raw(fr[0][IP].payload)).type == 0x16
    s.leave("239.7.7.7")
    out = s.poll(pool)
    fr = [Ether(f) for f in pool.frames(out)]
    pool.free_burst(out)
    assert fr[0][IP].dst == "224.0.0.2" and IGMP(raw(fr[0][IP].payload)).type == 0x17


def test_arp_entry_expires_and_is_requested_again(env):
    s, pool = env
    s.state.cfg[10] = 0                                   # no GARP in this test
    feed(s, pool, Ether(dst="ff:ff:ff:ff:ff:ff", src=PEER) / ARP(op=1, hwsrc=PEER, psrc=PEER_IP, pdst=MY_IP))
    b = s.udp_frame(pool, PEER_IP, 1, 2, b"resolved")     # cache hit: no exception
    assert Ether(pool.read(b)).dst == PEER
    pool.free_burst([b])
    s.set_now(int(s.state.cfg[5]) + 61 * NS)              # past the 60 s reachable time
    with pytest.raises(LookupError):
        s.udp_frame(pool, PEER_IP, 1, 2, b"stale")
    out = s.poll(pool)
    reqs = [Ether(f) for f in pool.frames(out)]
    pool.free_burst(out)
    assert len(reqs) == 1 and reqs[0][ARP].op == 1 and reqs[0][ARP].pdst == PEER_IP
    feed(s, pool, Ether(dst=ME, src=PEER) / ARP(op=2, hwsrc=PEER, psrc=PEER_IP, hwdst=ME, pdst=MY_IP))
    pool.free_burst([s.udp_frame(pool, PEER_IP, 1, 2, b"again")])


def test_arp_flood_from_forged_senders_cannot_lock_out_the_next_hop():
    """Every row of a full cache learned from requests by forged senders: the next
    address to resolve takes the row confirmed longest ago (counted), static rows stay."""
    pool = Mempool(64, 2048, 128)
    s = Stack(ME, MY_IP + "/24", arp_size=8)
    s.state.cfg[10] = 0                                   # no GARP in this test
    s.add_static_arp("10.9.0.254", "02:00:00:00:00:fe")
    for i in range(7):
        s.set_now(int(s.state.cfg[5]) + NS)               # each learned one second after the last
        forged = f"02:00:00:00:01:{i:02x}"
        feed(s, pool, Ether(dst="ff:ff:ff:ff:ff:ff", src=forged) / ARP(op=1, hwsrc=forged,
                                                                        psrc=f"10.9.0.{100 + i}", pdst=MY_IP))
    assert len(s.arp_entries()) == 8 and s.counters()["arp_evicted"] == 0
    s.set_now(int(s.state.cfg[5]) + 3600 * NS)            # an hour later, every learned row expired
    with pytest.raises(LookupError):
        s.udp_frame(pool, PEER_IP, 1, 2, b"x")
    out = s.poll(pool)
    reqs = [Ether(f) for f in pool.frames(out)]
    pool.free_burst(out)
    assert [r[ARP].pdst for r in reqs] == [PEER_IP]
    e = s.arp_entries()
    assert s.counters()["arp_evicted"] == 1 and "10.9.0.100" not in e and e["10.9.0.254"][1] == "static"
    feed(s, pool, Ether(dst=ME, src=PEER) / ARP(op=2, hwsrc=PEER, psrc=PEER_IP, hwdst=ME, pdst=MY_IP))
    pool.free_burst([s.udp_frame(pool, PEER_IP, 1, 2, b"resolved")])
    assert pool.check() == 0


def test_offlink_destination_goes_via_gateway():
    pool = Mempool(32, 2048, 128)
    s = Stack(ME, MY_IP + "/24", gateway="10.9.0.254")
    s.add_static_arp("10.9.0.254", "02:00:00:00:00:fe")
    b = s.udp_frame(pool, "192.0.2.7", 1000, 2000, b"far away")
    f = Ether(pool.read(b))
    pool.free_burst([b])
    assert f.dst == "02:00:00:00:00:fe" and f[IP].dst == "192.0.2.7" and f[IP].ttl == 64
    b = s.udp_frame(pool, "239.1.1.1", 1000, 2000, b"group")
    f = Ether(pool.read(b))
    pool.free_burst([b])
    assert f.dst == "01:00:5e:01:01:01" and f[IP].ttl == 1
    assert pool.check() == 0


def test_frames_padded_to_60_bytes_never_write_past_a_small_buffer():
    """Every frame the stack builds is padded to Ethernet's 60-byte minimum: a pool whose
    buffers have less room than that gets "too long", not zeros in the next buffer."""
    from tickwire.stack.udp import SEND_TOO_LONG, udp_prepare
    from tickwire.stack.poll import stack_poll
    from tickwire.stack.state import C_NOW
    pool = Mempool(8, 112, 64)                        # 48 bytes of room: headers fit, padding not
    s = Stack(ME, MY_IP + "/24")
    s.add_static_arp(PEER_IP, PEER)
    a, nxt = pool.alloc_burst(2)
    start = int(nxt) * 112 + int(pool.arrays.data_off[nxt])
    pool.arrays.data[start - 64:start + 48] = 0xAB   # the next buffer, headroom included
    assert udp_prepare(s.state, pool.arrays, np.int32(a), 0x0A090002, 1, 2, 0) == SEND_TOO_LONG
    s.join("239.1.1.1")                               # an IGMP report falls due,
    s.state.cfg[C_NOW] = 10**15                       # a gratuitous ARP too
    out = np.empty(4, np.int32)
    assert stack_poll(s.state, pool.arrays, out, 0, 4) == 0
    assert s.counters()["tx_nobuf"] > 0
    assert (pool.arrays.data[start - 64:start + 48] == 0xAB).all()
    pool.free_burst([a, nxt])
    assert pool.check() == 0

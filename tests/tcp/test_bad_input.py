"""Hostile and broken segments, built by scapy (an independent encoder), injected into a
listening/established tickwire stack: each is dropped and counted, nothing crashes,
memory stays bounded and the connection survives."""

from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

from .pair import A_IP, B_IP, Pair
from tickwire.stack.tcp.loopback_pair import CAP
from tickwire.stack.tcp import tcb as T

A_MAC, B_MAC = "02:00:00:00:00:01", "02:00:00:00:00:02"


def inject(p, frames):
    """Put frames into B's receive ring, as if A had sent them."""
    ring = p.pa.state.tx
    for f in frames:
        raw = bytes(f) if not isinstance(f, bytes) else f
        b = p.pool.alloc_frames([raw])[0]
        ring[2 + (int(ring[1]) & (CAP - 1))] = b
        ring[1] += 1
    while ring[0] != ring[1]:
        p.b.poll()


def fix_tcp_checksum(raw: bytearray) -> bytes:
    """RFC 1071 over pseudo-header + segment, written independently of tickwire."""
    ihl = (raw[14] & 15) * 4
    t = 14 + ihl
    total = int.from_bytes(raw[16:18], "big")
    seg_ = bytearray(raw[t:14 + total])
    seg_[16:18] = b"\0\0"
    data = bytes(raw[26:34]) + b"\0\x06" + len(seg_).to_bytes(2, "big") + bytes(seg_)
    if len(data) % 2:
        data += b"\0"
    s = sum(int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    raw[t + 16:t + 18] = (~s & 0xFFFF).to_bytes(2, "big")
    return bytes(raw)


def seg(sport, dport, **kw):
    return Ether(src=A_MAC, dst=B_MAC) / IP(src=A_IP, dst=B_IP) / TCP(sport=sport, dport=dport, **kw)


def test_malformed_segments_are_counted_not_fatal():
    p = Pair()
    p.b.listen(7000)
    good = seg(1111, 7000, flags="S", seq=1)
    bad_csum = bytearray(bytes(good))
    bad_csum[-1] ^= 0xFF                                  # last TCP header byte changed
    overrun = seg(1111, 7000, flags="S", seq=1, options=[("NOP", None)] * 3 + [("MSS", 1460)])
    raw = bytearray(bytes(overrun))
    raw[54 + 3 + 1] = 40                                  # MSS option (after 3 NOPs) claims 40 bytes
    raw = fix_tcp_checksum(raw)                           # valid checksum: the options are what is wrong
    short_doff = bytearray(bytes(good))
    short_doff[14 + 20 + 12] = 0x30                       # data offset 3 words (< 5)
    long_doff = bytearray(bytes(good))
    long_doff[14 + 20 + 12] = 0xF0                        # 60-byte header in a 20-byte segment
    truncated = bytes(good)[:40]
    synfin = seg(1111, 7000, flags="SF", seq=1)
    synrst = seg(1111, 7000, flags="SR", seq=1)
    inject(p, [bytes(bad_csum), bytes(raw), bytes(short_doff), bytes(long_doff), truncated, synfin, synrst])
    c = p.b.counters()
    assert c["rx_bad_checksum"] == 1
    assert c["rx_bad_options"] == 1
    assert c["rx_bad_data_offset"] + c["rx_truncated"] + c["rx_bad_ip_header"] == 3
    assert c["rx_bad_flags"] == 2
    assert not p.b.listeners[7000].pending                # none of them opened anything
    assert p.pool.check() == 0                            # every buffer came back


def test_syn_flood_is_bounded_by_backlog_and_half_opens_expire():
    from tickwire.stack.tcp.config import TcpConfig
    p = Pair(cfg_b=TcpConfig(synack_retries=1, min_rto_us=50_000))    # initial RTO 1 s, then 2 s
    lst = p.b.listen(7000, backlog=4)
    inject(p, [seg(20000 + i, 7000, flags="S", seq=1000 * i) for i in range(200)])
    assert len(lst.pending) == 4
    assert p.b.counters()["syn_backlog_full"] == 196
    # the flooder never completes: SYN,ACK retransmissions time out and free the slots
    p.block_ba = True
    assert p.run(lambda: not lst.pending, 10)
    assert all(c is None for c in p.b.conns)
    # and a real client can connect afterwards
    p.block_ba = False
    c, s = p.connect(7000)
    assert s.state_name == "ESTABLISHED"


def test_out_of_window_and_bogus_acks_on_established_connection():
    p = Pair()
    c, s = p.connect()
    rcv_nxt, snd_nxt = s.g(T.RCV_NXT), s.g(T.SND_NXT)
    far = (rcv_nxt + (1 << 30)) & 0xFFFFFFFF
    frames = [
        seg(c.local_port, 7000, flags="PA", seq=far, ack=snd_nxt) / (b"x" * 100),     # outside window
        seg(c.local_port, 7000, flags="R", seq=far),                                   # blind RST: dropped
        seg(c.local_port, 7000, flags="R", seq=(rcv_nxt + 10) & 0xFFFFFFFF),          # in window: challenge ACK
        seg(c.local_port, 7000, flags="S", seq=rcv_nxt),                               # SYN: challenge ACK
        seg(c.local_port, 7000, flags="A", seq=rcv_nxt, ack=(snd_nxt + 100000) & 0xFFFFFFFF),  # acks unsent data
        seg(c.local_port, 7000, flags="PA", seq=rcv_nxt, ack=snd_nxt),                 # no TS although negotiated
    ]
    inject(p, frames)
    assert s.state_name == "ESTABLISHED"
    assert s.counters["out_of_window"] >= 1 and s.counters["challenge_acks"] == 2
    d = b"still fine" * 1000
    assert p.transfer(c, s, d) == d


def test_unknown_port_gets_rst_and_rst_gets_nothing():
    p = Pair()
    inject(p, [seg(1234, 9, flags="S", seq=5), seg(1234, 9, flags="R", seq=5)])
    assert p.b.counters()["rst_sent"] == 1
    ring = p.pb.state.tx
    frames = [p.pool.read(int(ring[2 + (i & (CAP - 1))])) for i in range(int(ring[0]), int(ring[1]))]
    rst = Ether(frames[-1])
    assert rst[TCP].flags == "RA" and rst[TCP].ack == 6 and rst[TCP].seq == 0     # RFC 9293 §3.10.7.1
    # scapy recomputes the checksum: ours must match it
    assert TCP(bytes(rst[TCP])).chksum == rst[TCP].chksum
    del rst[TCP].chksum, rst[IP].chksum
    assert Ether(bytes(rst))[TCP].chksum == Ether(frames[-1])[TCP].chksum

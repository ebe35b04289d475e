"""packet: port and `tickwire stack` against the Linux kernel across a veth pair.

Each test creates two fresh network namespaces (tickwire side A, kernel side B)
joined by a veth pair, and deletes them afterwards. Kernel peers: ping, arping,
UDP sockets (unicast and multicast), tcpdump for the IGMP reports on the wire.
Veth TX checksum offload stays ON, so frames from the kernel carry partial
checksums (notes/af_xdp.md §7): the port must complete them and our replies
must pass the kernel's checksum check (UdpInCsumErrors stays 0).
"""

import ctypes
import json
import os
import socket
import struct
import subprocess
import sys
import time
from contextlib import contextmanager

import numpy as np
import pytest
from scapy.all import IP, UDP, Ether, raw

from conftest import require_root, require_tool
from tickwire.bench.udp_echo import VethPair, start_stack, stop
from tickwire.wire.decode import decode

pytestmark = pytest.mark.peer

GROUP = "239.7.8.9"


@pytest.fixture
def pair():
    require_root()
    require_tool("ip")
    with VethPair() as p:
        yield p


def nstat(pair, *names):
    out = pair.run(pair.ns_b, ["nstat", "-az", *names]).stdout
    return {ln.split()[0]: int(ln.split()[1]) for ln in out.splitlines()[1:] if ln.strip()}


_libc = ctypes.CDLL(None, use_errno=True)


@contextmanager
def in_netns(name):
    """Run the block in network namespace ``name`` (sockets opened here stay in it)."""
    CLONE_NEWNET = 0x40000000
    here = os.open("/proc/self/ns/net", os.O_RDONLY)
    there = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if _libc.setns(there, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns")
        yield
    finally:
        _libc.setns(here, CLONE_NEWNET)
        os.close(here)
        os.close(there)


UDP_CLIENT = r"""
import socket, sys
host, port = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2)
for n in (1, 7, 64, 513, 1400):            # odd and even lengths
    m = bytes((i * 7 + n) & 0xFF for i in range(n))
    s.sendto(m, (host, port))
    d, a = s.recvfrom(4096)
    assert d == m and a == (host, port), (d[:16], a)
print("ok")
"""


def test_kernel_ping_arping_and_udp_echo(pair):
    require_tool("ping")
    require_tool("arping")
    p = start_stack(pair, ["--udp-echo", "7000", "--json"])
    try:
        r = pair.run(pair.ns_b, ["ping", "-c", "3", "-i", "0.2", "-W", "2", pair.ip_a])
        assert r.returncode == 0 and " 0% packet loss" in r.stdout, r.stdout
        r = pair.run(pair.ns_b, ["arping", "-c", "2", "-I", pair.dev_b, pair.ip_a])
        assert r.returncode == 0 and pair.mac_a in r.stdout.lower(), r.stdout
        before = nstat(pair, "UdpInCsumErrors", "UdpInDatagrams")
        r = pair.run(pair.ns_b, [sys.executable, "-c", UDP_CLIENT, pair.ip_a, "7000"])
        assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
        after = nstat(pair, "UdpInCsumErrors", "UdpInDatagrams")
        assert after["UdpInDatagrams"] - before["UdpInDatagrams"] == 5
        assert after["UdpInCsumErrors"] == before["UdpInCsumErrors"]
    finally:
        out = stop(p)
    res = json.loads(out.strip().splitlines()[-1])
    st = res["stack"]
    assert st["icmp_echo_tx"] >= 3 and st["arp_reply_tx"] >= 2 and st["udp_tx"] == 5
    assert res["port"]["rx_csum_completed"] >= 5          # veth handed us partial checksums
    assert res["pool_in_flight"] == 0


MCAST_PEER = r"""
import socket, struct, sys
group, my_ip, pub_port, echo_port, peer = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); r.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
r.bind(("", pub_port))
r.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, socket.inet_aton(group) + socket.inet_aton(my_ip))
r.settimeout(5)
got = [r.recvfrom(2048) for _ in range(2)]
assert all(a[0] == peer and d.startswith(b"tickwire ") for d, a in got), got
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(my_ip))
s.sendto(b"to the group", (group, echo_port))
d, a = s.recvfrom(2048)
assert d == b"to the group" and a == (peer, echo_port), (d, a)
print("ok")
"""


def _igmp_records(cap, src_ip):
    """(record type, group) of every IGMPv3 report from ``src_ip`` in the capture so far
    (a record being written when we read is simply not seen yet)."""
    from tickwire.wire import IgmpRepr
    from tickwire.wire.ipv4 import Ipv4Repr
    from tickwire.wire.pcapfile import PcapError, read_frames
    seen = []
    try:
        frames = list(read_frames(cap))
    except PcapError:       # the file is empty, or its last record is half written
        return seen
    for f in frames:
        d = decode(f)
        if d["proto"] == 2 and d["src"] == struct.unpack("!I", socket.inet_aton(src_ip))[0]:
            m = IgmpRepr.parse(f[d["l4"]:d["l4"] + d["l4_len"]])
            ip, _ = Ipv4Repr.parse(f[d["l3"]:])
            assert ip.ttl == 1 and ip.options == b"\x94\x04\x00\x00" and ip.dst == "224.0.0.22"
            seen += [(rt, g) for rt, g, _ in m.records]
    return seen


def test_multicast_both_ways_with_igmp_reports_on_the_wire(pair, tmp_path):
    from tickwire.wire.igmp import CHANGE_TO_EXCLUDE, CHANGE_TO_INCLUDE
    require_tool("tcpdump")
    cap = tmp_path / "igmp.pcap"
    # --immediate-mode: without it libpcap's TPACKET_V3 block timeout holds the last frames
    # in the kernel, and tcpdump exits on SIGTERM without writing them (seen on CI)
    dump = pair.popen(pair.ns_b, ["tcpdump", "-i", pair.dev_b, "--immediate-mode", "-U", "-w", str(cap), "igmp"],
                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_listening(dump)
        p = start_stack(pair, ["--join", GROUP, "--udp-echo", "7001", "--publish", f"{GROUP}:7002",
                               "--interval", "0.2", "--json"])
        try:
            r = pair.run(pair.ns_b, [sys.executable, "-c", MCAST_PEER, GROUP, pair.ip_b, "7002", "7001", pair.ip_a])
            assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
            assert nstat(pair, "UdpInCsumErrors")["UdpInCsumErrors"] == 0
        finally:
            out = stop(p)
        res = json.loads(out.strip().splitlines()[-1])
        assert res["stack"]["udp_rx"] >= 1 and res["stack"]["igmp_report_tx"] >= 2, res
        deadline = time.monotonic() + 10
        while (CHANGE_TO_INCLUDE, GROUP) not in _igmp_records(cap, pair.ip_a) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop(dump)
    seen = _igmp_records(cap, pair.ip_a)
    assert (CHANGE_TO_EXCLUDE, GROUP) in seen, (seen, res)       # join
    assert (CHANGE_TO_INCLUDE, GROUP) in seen, (seen, res)       # leave at exit


def _wait_for_listening(dump, timeout=20.0):
    """tcpdump says 'listening on ...' on stderr once its capture socket is open."""
    deadline = time.monotonic() + timeout
    line = ""
    while time.monotonic() < deadline and "listening on" not in line:
        line = dump.stderr.readline()
        if not line and dump.poll() is not None:
            raise RuntimeError(f"tcpdump exited ({dump.returncode})")
    assert "listening on" in line, "tcpdump did not start"


def _send_udp_from_b(pair, dst, n, port=9000, static_mac=None):
    if static_mac:
        pair.run(pair.ns_b, ["ip", "neigh", "replace", dst, "lladdr", static_mac, "dev", pair.dev_b], check=True)
    code = ("import socket,sys\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
            f"for i in range({n}): s.sendto(b'm%d' % i, ('{dst}', {port}))\n")
    pair.run(pair.ns_b, [sys.executable, "-c", code], check=True)


def _drain(port, pool, want, timeout=5.0):
    bufs = np.empty(64, np.int32)
    frames, ts = [], []
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end and len(frames) < want:
        n = port.rx_burst(bufs)
        for b in bufs[:n]:
            frames.append(pool.read(int(b)))
            ts.append(port.rx_timestamp_ns(int(b)))
        pool.free_burst(bufs[:n])
        if n == 0:
            time.sleep(0.001)
    return frames, ts


@pytest.mark.parametrize("mode", ["latency", "capture"])
def test_filter_ring_and_timestamps_in_process(pair, mode):
    from tickwire.drivers.port import open_port
    from tickwire.mem.mempool import Mempool
    pool = Mempool(512, 2048, 128)
    with in_netns(pair.ns_a):
        port = open_port(f"packet:dev={pair.dev_a},mode={mode},filter={pair.ip_a},timeout_ms=2,blocks=4,"
                         f"block_size=65536", pool)
    try:
        assert port.link_up and port.mac == pair.mac_a
        _send_udp_from_b(pair, "10.77.0.99", 5, static_mac=pair.mac_a)      # not our address: filtered out
        _send_udp_from_b(pair, pair.ip_a, 20, static_mac=pair.mac_a)
        frames, ts = _drain(port, pool, 20)
        udp = [decode(f) for f in frames if decode(f)["proto"] == 17]
        assert len(udp) == 20 and all(d["dst"] == 0x0A4D0002 for d in udp)
        assert ts == sorted(ts) and abs(ts[0] - time.time_ns()) < 60e9
        assert pool.in_flight == 0
        # transmit: a frame built by scapy reaches a kernel socket in B
        rcv = pair.popen(pair.ns_b, [sys.executable, "-c",
                                     "import socket;s=socket.socket(2,2);s.bind(('',9100));s.settimeout(5);"
                                     "print(s.recvfrom(100)[0].decode())"], stdout=subprocess.PIPE, text=True)
        time.sleep(1.0)
        mac_b = pair.run(pair.ns_b, ["cat", f"/sys/class/net/{pair.dev_b}/address"]).stdout.strip()
        f = raw(Ether(src=pair.mac_a, dst=mac_b) / IP(src=pair.ip_a, dst=pair.ip_b) / UDP(sport=9100, dport=9100)
                / b"from-packet-port")
        bufs = pool.alloc_frames([f])
        assert port.tx_burst(bufs) == 1
        assert rcv.communicate(timeout=10)[0].strip() == "from-packet-port"
        assert port.stats()["tx_packets"] == 1 and pool.in_flight == 0
    finally:
        port.close()


def test_bad_spec_and_missing_device(pair):
    from tickwire.drivers.port import open_port
    from tickwire.drivers.spec import SpecError
    with pytest.raises(SpecError, match="no interface"):
        open_port("packet:dev=tw-nope0")
    with pytest.raises(SpecError, match="unknown argument"):
        open_port(f"packet:dev={pair.dev_a},colour=red")
    with in_netns(pair.ns_a), pytest.raises(SpecError, match="filter"):
        open_port(f"packet:dev={pair.dev_a},filter=10.1.2")


def test_vlan_tag_stripped_by_the_kernel_is_put_back(pair):
    """A tagged frame crossing veth has its 802.1Q tag moved into skb metadata before
    AF_PACKET sees it (TP_STATUS_VLAN_VALID); the port re-inserts it, and the stack
    configured for that VLAN answers with the tag kept. (This kernel has no 8021q
    module, so the peer sends the tagged frame from a raw socket in namespace B.)"""
    from tickwire.drivers.port import open_port
    from tickwire.mem.mempool import Mempool
    from tickwire.stack import ACT_TX, Stack
    from scapy.all import ICMP, Dot1Q
    pool = Mempool(64, 2048, 128)
    with in_netns(pair.ns_a):
        port = open_port(f"packet:dev={pair.dev_a}", pool)
    try:
        f = raw(Ether(dst=pair.mac_a, src="02:00:00:00:00:0b") / Dot1Q(vlan=5, prio=3)
                / IP(src="10.88.0.1", dst="10.88.0.2") / ICMP(type=8, id=7, seq=1) / b"tagged")
        code = ("import socket,sys\ns=socket.socket(socket.AF_PACKET,socket.SOCK_RAW)\n"
                f"s.bind(('{pair.dev_b}',0))\ns.send(bytes.fromhex('{f.hex()}'))\n")
        pair.run(pair.ns_b, [sys.executable, "-c", code], check=True)
        frames, _ = _drain(port, pool, 1)
        got = [x for x in frames if decode(x)["proto"] == 1]
        assert got and got[0] == f, (got[0].hex() if got else frames)
        st = Stack(pair.mac_a, "10.88.0.2/24", vlan=5)
        (b,) = pool.alloc_frames([got[0]])
        assert st.input(pool, int(b)) == ACT_TX
        r = Ether(pool.read(int(b)))
        pool.free_burst([b])
        assert r[Dot1Q].vlan == 5 and r[ICMP].type == 0 and r[IP].dst == "10.88.0.1"
    finally:
        port.close()


RAW_RECEIVER = r"""
import socket, sys
dev, want = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x88B5))   # IEEE local experimental
s.bind((dev, 0)); s.settimeout(10)
print("ready", flush=True)
for _ in range(want):
    print(s.recv(4096).hex(), flush=True)
"""


def _frames_to_b(pair, count, size):
    head = bytes.fromhex("ffffffffffff") + bytes.fromhex(pair.mac_a.replace(":", "")) + b"\x88\xb5"
    return head, [head + i.to_bytes(2, "big") + bytes((i * 13 + k) & 0xFF for k in range(size(i)))
                  for i in range(count)]


def _send_all(port, pool, frames, rcv, seconds=20):
    """tx_burst until the port took every buffer, calling poll() between bursts as the
    control plane does, until the kernel peer printed every frame; returns them and the
    number of tx_burst calls."""
    import threading
    got = []
    reader = threading.Thread(target=lambda: got.extend(bytes.fromhex(ln.strip()) for ln in rcv.stdout), daemon=True)
    reader.start()
    pending, calls = list(pool.alloc_frames(frames)), 0
    deadline = time.monotonic() + seconds
    while (pending or len(got) < len(frames)) and time.monotonic() < deadline:
        if pending:
            took = port.tx_burst(np.array(pending, dtype=np.int32))
            pending = pending[took:]
            calls += 1
        port.poll()
        time.sleep(0.001)
    reader.join(timeout=5)
    assert not pending, f"{len(pending)} frames never left"
    return got, calls


@pytest.mark.parametrize("tx", ["ring", "send"])
def test_tx_burst_larger_than_the_tx_ring_arrives_whole_and_in_order(pair, tx):
    """tx=ring: a burst of 100 frames into a 16-slot PACKET_TX_RING goes out over several
    calls (the ring is full in between: the rest stays with the caller), with one send()
    per call, not per frame; the kernel peer receives every frame byte for byte, in
    order. tx=send: the same frames, one send() each. Frames the kernel would refuse
    (longer than MTU + 14 untagged, shorter than an Ethernet header) are dropped and
    counted either way, a tagged frame of MTU + 18 is sent, and no buffer is lost."""
    from tickwire.drivers.port import open_port
    from tickwire.mem.mempool import Mempool
    pool = Mempool(256, 2048, 128)
    with in_netns(pair.ns_a):
        port = open_port(f"packet:dev={pair.dev_a},tx={tx},tx_frames=16", pool)
    rcv = pair.popen(pair.ns_b, [sys.executable, "-c", RAW_RECEIVER, pair.dev_b, "100"],
                     stdout=subprocess.PIPE, text=True)
    try:
        assert rcv.stdout.readline().strip() == "ready"
        head, frames = _frames_to_b(pair, 100, lambda i: 46 + 7 * i)
        refused = [head + bytes(1501), head[:10]]                  # MTU 1500 + 15 bytes; 10 bytes
        # MTU + 18 with an 802.1Q tag: allowed (its inner type is not the receiver's)
        tagged = head[:12] + b"\x81\x00\x00\x05" + b"\x88\xb6" + bytes(1500)
        bufs = pool.alloc_frames(refused + [tagged])
        assert port.tx_burst(bufs) == 3
        # a caller's corrupt buffer (negative length) and indices it does not own: the first
        # is dropped and freed (tx_too_long), the others skipped (tx_bad_buf), none sent
        corrupt = pool.alloc_frames([head + bytes(50)])
        pool.arrays.data_len[corrupt[0]] = -1
        assert port.tx_burst(np.array([corrupt[0], -5, pool.size + 3], np.int32)) == 3
        assert port.stats()["tx_bad_buf"] == 2 and pool.in_flight == 0
        got, calls = _send_all(port, pool, frames, rcv)
        assert got == frames
        st = port.stats()
        assert st["tx_packets"] == 101 and st["tx_too_long"] == 2 and st["tx_too_short"] == 1
        assert pool.in_flight == 0
        if tx == "ring":
            assert calls > 1 and st["tx_ring_full"] >= 1            # 100 frames never fit 16 slots at once
            assert 1 <= st["tx_kicks"] <= calls + 1 and st["tx_error"] == 0
        else:
            assert st["tx_kicks"] == 0
    finally:
        port.close()
        rcv.kill()
        rcv.wait()


@pytest.mark.parametrize("tx", ["ring", "send"])
def test_tx_resumes_when_the_socket_send_buffer_fills(pair, tx):
    """Through a rate-limited qdisc (tbf, qdisc_bypass=no) with a small SO_SNDBUF, the
    kernel runs out of send buffer in the middle of a flush: tx=ring's send() then sends
    part of the ring and leaves the rest SEND_REQUEST; the port must flush again (next
    tx_burst or poll()) without new frames, or those frames would sit in the ring.
    tx=send gets EAGAIN and leaves the frames with the caller. Every frame arrives, in
    order, either way."""
    require_tool("tc")
    from tickwire.drivers.port import open_port
    from tickwire.mem.mempool import Mempool
    pair.a("tc", "qdisc", "add", "dev", pair.dev_a, "root", "tbf", "rate", "4mbit", "burst", "1600",
           "limit", "1000000")
    pool = Mempool(256, 2048, 128)
    with in_netns(pair.ns_a):
        port = open_port(f"packet:dev={pair.dev_a},tx={tx},tx_frames=64,qdisc_bypass=no", pool)
    port.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    rcv = pair.popen(pair.ns_b, [sys.executable, "-c", RAW_RECEIVER, pair.dev_b, "60"],
                     stdout=subprocess.PIPE, text=True)
    try:
        assert rcv.stdout.readline().strip() == "ready"
        _, frames = _frames_to_b(pair, 60, lambda i: 1000)
        got, _ = _send_all(port, pool, frames, rcv)
        assert got == frames
        st = port.stats()
        assert st["tx_packets"] == 60 and pool.in_flight == 0
        if tx == "ring":
            assert st["tx_kicks"] > 1          # at least one flush had to be finished later
    finally:
        port.close()
        rcv.kill()
        rcv.wait()


def test_tx_ring_needs_latency_mode(pair):
    from tickwire.drivers.port import open_port
    from tickwire.drivers.spec import SpecError
    with in_netns(pair.ns_a), pytest.raises(SpecError, match="tx=ring needs mode=latency"):
        open_port(f"packet:dev={pair.dev_a},mode=capture,tx=ring")


def _v3_block(ring, blk, frames):
    """Write one TPACKET_V3 block as the kernel would (struct tpacket_block_desc, then
    tpacket3_hdr records): ``frames`` is a list of (mac offset, payload) per record."""
    from tickwire.drivers.packet import TP_STATUS_USER, TPACKET3_HDRLEN
    put = lambda off, fmt, v: struct.pack_into(fmt, ring, off, v)  # noqa: E731
    put(blk + 12, "<I", len(frames))
    put(blk + 16, "<I", 48)
    p = blk + 48
    for k, (mac, payload) in enumerate(frames):
        size = 256
        put(p, "<I", size if k + 1 < len(frames) else 0)
        put(p + 12, "<I", len(payload))
        put(p + 16, "<I", len(payload))
        put(p + 24, "<H", mac)
        ring[p + max(mac, TPACKET3_HDRLEN):p + max(mac, TPACKET3_HDRLEN) + len(payload)] = np.frombuffer(payload, np.uint8)
        p += size
    put(blk + 8, "<I", TP_STATUS_USER)


def test_v3_block_with_a_bad_descriptor_counts_every_frame_it_drops():
    """A record whose mac offset points into its own header (never sent by a sane kernel):
    the rest of the block cannot be trusted, so its frames are dropped, each one counted,
    and the block goes back to the kernel; the next block is read normally."""
    from tickwire.drivers import packet
    from tickwire.drivers.counters import Counters
    from tickwire.drivers.port import rx_burst
    from tickwire.mem.mempool import Mempool
    bsize = 4096
    ring = np.zeros(2 * bsize, np.uint8)
    meta = np.zeros(16, np.int64)
    meta[packet.M_BLOCK_SIZE], meta[packet.M_BLOCK_NR], meta[packet.M_REMAIN] = bsize, 2, -1
    pool = Mempool(16)
    st = packet.PacketV3State(ring, meta, Counters(packet.EXTRA).array, np.zeros(16, np.int64), np.zeros(64, np.uint8))
    frame = bytes(range(60))
    _v3_block(ring, 0, [(48, frame), (8, frame), (48, frame), (48, frame)])
    _v3_block(ring, bsize, [(48, frame)])
    out = np.empty(8, np.int32)
    got = rx_burst(st, pool.arrays, out, 8)
    c = dict(zip(Counters(packet.EXTRA).names, st.counters))
    assert got == 2                                   # the first frame of block 0, then block 1's
    assert c["rx_bad_desc"] == 1 and c["rx_bad_desc_frames"] == 3
    assert c["rx_packets"] == 2
    assert struct.unpack_from("<I", ring, 8)[0] == packet.TP_STATUS_KERNEL   # block 0 handed back
    for b in out[:got]:
        start = pool.arrays.data_off[b] + b * 2048
        assert bytes(pool.arrays.data[start:start + 60]) == frame
    assert pool.in_flight == 2

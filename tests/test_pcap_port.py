"""pcap: port: replay a file written by scapy through tickwire's stack, write the
replies to a file, and open that file with tshark (no warnings) and scapy."""

import subprocess

import numpy as np
import pytest
from scapy.all import ARP, ICMP, IP, UDP, Ether, raw, rdpcap, wrpcap

from conftest import require_tool
from tickwire.drivers.port import open_port
from tickwire.drivers.spec import SpecError
from tickwire.mem.mempool import Mempool
from tickwire.stack import Stack
from tickwire.stack.loop import run_stack, tsc_calibration
from tickwire.wire.pcapfile import PcapError

ME, PEER = "02:00:00:00:00:01", "02:00:00:00:00:02"


def _frames():
    return [Ether(dst="ff:ff:ff:ff:ff:ff", src=PEER) / ARP(op=1, hwsrc=PEER, psrc="10.9.0.2", pdst="10.9.0.1"),
            Ether(dst=ME, src=PEER) / IP(src="10.9.0.2", dst="10.9.0.1") / ICMP(type=8, id=1, seq=1) / b"abcdef",
            Ether(dst=ME, src=PEER) / IP(src="10.9.0.2", dst="10.9.0.1") / UDP(sport=5555, dport=7) / b"echo!",
            Ether(dst=ME, src=PEER) / IP(src="10.9.0.2", dst="10.9.0.1", chksum=0) / UDP(dport=7) / b"bad",
            Ether(dst=ME, src=PEER) / IP(src="10.9.0.2", dst="10.9.0.1") / UDP(dport=9) / b"nobody"]


def test_replay_through_stack_and_write_replies(tmp_path):
    src, dst = tmp_path / "in.pcap", tmp_path / "out.pcap"
    pkts = _frames()
    for i, p in enumerate(pkts):
        p.time = 1_700_000_000 + i / 1000
    wrpcap(str(src), pkts)
    pool = Mempool(64, 2048, 128)
    s = Stack(ME, "10.9.0.1/24")
    s.state.cfg[10] = 0                    # no gratuitous ARP in this replay
    s.bind_udp(7, echo=True)
    port = open_port(f"pcap:in={src},out={dst}", pool)
    assert port.records == 5
    rx, tx = np.empty(32, np.int32), np.empty(64, np.int32)
    ticks_per_ns, q32 = tsc_calibration()
    run_stack(port.state, pool.arrays, s.state, rx, tx, s.info, int(2e6 * ticks_per_ns), q32, 1)
    assert port.rx_done
    port.close()
    assert pool.in_flight == 0
    assert s.drops() == {"bad_checksum": 1, "no_endpoint": 1}
    out = rdpcap(str(dst))
    assert [type(p.payload).__name__ for p in out] == ["ARP", "IP", "IP"]
    assert out[0][ARP].op == 2 and out[1][ICMP].type == 0 and out[2][UDP].load[:5] == b"echo!"
    if require_tool("tshark"):
        r = subprocess.run(["tshark", "-r", str(dst), "-T", "fields", "-e", "frame.time_epoch", "-e",
                            "_ws.col.Protocol"], capture_output=True, text=True)
        warnings = [ln for ln in r.stderr.splitlines() if ln.strip() and "Running as user" not in ln]
        assert r.returncode == 0 and warnings == [], r.stderr
        assert len(r.stdout.splitlines()) == 3


def test_rx_timestamps_nanoseconds_and_loop(tmp_path):
    from tickwire.wire.pcapfile import PcapWriter
    src = tmp_path / "ns.pcap"
    with PcapWriter(str(src)) as w:
        for i in range(3):
            w.write(raw(Ether() / IP() / UDP() / bytes([i])), 1_700_000_000_123_456_789 + i)
    pool = Mempool(16, 2048, 128)
    port = open_port(f"pcap:in={src},loop=2", pool)
    bufs = np.empty(16, np.int32)
    n = port.rx_burst(bufs)
    assert n == 6 and port.rx_burst(bufs[n:]) == 0
    assert [port.rx_timestamp_ns(int(b)) for b in bufs[:3]] == [1_700_000_000_123_456_789 + i for i in range(3)]
    assert [pool.read(int(b))[-1] for b in bufs[:6]] == [0, 1, 2, 0, 1, 2]
    pool.free_burst(bufs[:n])
    port.close()


def test_loop_forever_over_records_that_never_fit_returns(tmp_path):
    """loop=0 over a file whose every record is longer than a pool buffer: each burst
    stops after a whole pass delivered nothing (it spun forever before), and says why."""
    src = tmp_path / "big.pcap"
    wrpcap(str(src), [Ether() / IP() / UDP() / bytes(3000)] * 2)
    pool = Mempool(16, 2048, 128)
    port = open_port(f"pcap:in={src},loop=0", pool)
    bufs = np.empty(8, np.int32)
    assert port.rx_burst(bufs) == 0 and port.rx_burst(bufs) == 0
    st = port.stats()
    assert st["rx_no_frame_fits"] == 2 and st["rx_too_long"] >= 4 and pool.in_flight == 0
    port.close()


def test_bursts_stay_inside_the_callers_array_and_its_buffers(tmp_path):
    src = tmp_path / "in.pcap"
    wrpcap(str(src), [Ether() / IP() / UDP() / bytes([i]) for i in range(8)])
    pool = Mempool(32, 2048, 128)
    port = open_port(f"pcap:in={src},out={tmp_path / 'o.pcap'}", pool)
    big = np.full(8, -7, np.int32)
    assert port.rx_burst(big[:2], 8) == 2            # n larger than the array: clamped
    assert list(big[2:]) == [-7] * 6
    pool.arrays.data_len[big[0]] = -1                # a caller's corrupt length
    free_idx = next(i for i in range(pool.size) if i not in big[:2])   # not the caller's
    assert port.tx_burst(np.array([big[0], big[1], free_idx, -1], np.int32)) == 4
    st = port.stats()
    assert st["tx_too_long"] == 1 and st["tx_bad_buf"] == 2 and st["tx_packets"] == 1
    port.close()
    assert pool.in_flight == 0 and len(rdpcap(str(tmp_path / "o.pcap"))) == 1


def test_staging_full_leaves_frames_with_caller(tmp_path):
    pool = Mempool(16, 2048, 128)
    port = open_port(f"pcap:out={tmp_path / 'o.pcap'},max_out=2", pool)
    bufs = pool.alloc_frames([raw(Ether() / IP() / UDP())] * 3)
    assert port.tx_burst(bufs) == 2 and port.stats()["tx_ring_full"] == 1
    port.poll()
    assert port.tx_burst(bufs[2:]) == 1
    port.close()
    assert len(rdpcap(str(tmp_path / "o.pcap"))) == 3 and pool.in_flight == 0


def test_bad_files_and_specs(tmp_path):
    with pytest.raises(SpecError):
        open_port("pcap:")
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"\xd4\xc3\xb2\xa1" + bytes(10))
    with pytest.raises(PcapError):
        open_port(f"pcap:in={bad}")
    good = tmp_path / "t.pcap"
    wrpcap(str(good), [Ether() / IP() / UDP() / b"x" * 100])
    data = good.read_bytes()
    (tmp_path / "trunc.pcap").write_bytes(data[:-10])
    with pytest.raises(PcapError):
        open_port(f"pcap:in={tmp_path / 'trunc.pcap'}")


from hypothesis import given, settings, strategies as st  # noqa: E402


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=200), st.integers(0, 400))
def test_corrupt_files_are_refused_or_read_never_crash(junk, cut):
    import tempfile
    from scapy.all import wrpcap as _w
    with tempfile.TemporaryDirectory() as d:
        good = f"{d}/g.pcap"
        _w(good, [Ether() / IP() / UDP() / b"x" * 40, Ether() / IP() / UDP()])
        data = open(good, "rb").read()
        bad = f"{d}/b.pcap"
        open(bad, "wb").write(data[:cut] + junk)
        pool = Mempool(8, 2048, 128)
        try:
            port = open_port(f"pcap:in={bad}", pool)
        except (PcapError, SpecError):
            return
        bufs = np.empty(8, np.int32)
        n = port.rx_burst(bufs)
        assert n <= port.records
        pool.free_burst(bufs[:n])
        port.close()
        assert pool.in_flight == 0


def test_tickwire_stack_command_on_a_pcap_port(tmp_path):
    """The `tickwire stack` command end to end on a file port (no privileges needed)."""
    import json
    import sys
    src, dst = tmp_path / "in.pcap", tmp_path / "out.pcap"
    me = "02:74:77:00:00:01"
    wrpcap(str(src), [Ether(dst="ff:ff:ff:ff:ff:ff", src=PEER) / ARP(op=1, hwsrc=PEER, psrc="10.9.0.2",
                                                                     pdst="10.9.0.1"),
                      Ether(dst=me, src=PEER) / IP(src="10.9.0.2", dst="10.9.0.1") / UDP(sport=4000, dport=7000)
                      / b"reflect me",
                      Ether(dst=me, src=PEER) / IP(src="10.9.0.2", dst="10.9.0.1", ttl=0) / UDP(dport=7000)])
    r = subprocess.run([sys.executable, "-c", "import sys; from tickwire.cli import main; sys.exit(main())",
                        "stack", "--port", f"pcap:in={src},out={dst}", "--ip", "10.9.0.1/24", "--mac", me,
                        "--udp-echo", "7000", "--duration", "0.3", "--json"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res["drops"] == {"ttl_expired": 1} and res["stack"]["udp_tx"] == 1 and res["pool_in_flight"] == 0
    out = rdpcap(str(dst))
    echo = [p for p in out if UDP in p]
    assert len(echo) == 1 and echo[0][UDP].dport == 4000 and echo[0][UDP].load == b"reflect me"
    assert any(ARP in p and p[ARP].op == 2 for p in out)

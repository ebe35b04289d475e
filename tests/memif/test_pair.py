"""Two tickwire processes over memif, driven through the real command line:
`tickwire echo` as the server in one process, tickwire clients in others;
`tickwire send` -> `tickwire capture` with the pcap checked by tshark and scapy.
Also multiple queues and eventfd interrupt mode between two tickwire ports.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid

import numpy as np
import pytest

from tickwire.drivers.port import open_port
from tickwire.mem.mempool import Mempool
from tickwire.wire.pcapfile import PcapWriter, read_frames

from conftest import require_tool

from .test_testpmd import exchange, macswap, make_frames

TICKWIRE = [sys.executable, "-m", "tickwire.cli"]


@pytest.fixture
def sock_path(tmp_path):
    return str(tmp_path / f"p{uuid.uuid4().hex[:6]}.sock")


def start(args):
    return subprocess.Popen(TICKWIRE + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc, timeout=300):  # generous: a cold Numba cache compiles the tools first
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


def test_echo_command_as_server_against_tickwire_client(sock_path):
    echo = start(["echo", "--port", f"memif:socket={sock_path},role=server", "--count", "300", "--json",
                  "--buf-size", "4224"])
    try:
        pool = Mempool(2048, 4096, 128)
        frames = make_frames(300, seed=7)
        with open_port(f"memif:socket={sock_path},role=client,bsize=1024", pool) as port:
            assert port.wait_link(300), port.events  # the echo process may still be compiling (cold cache)
            sent, got = exchange(port, pool, frames, timeout=300)  # returns as soon as all are back
        assert got == [macswap(f) for f in frames]
        result = finish(echo)
    finally:
        if echo.poll() is None:
            echo.kill()
    assert result["echoed"] == 300 and result["rx_chained"] > 0 and result["pool_in_flight"] == 0
    assert pool.check() == 0


def test_send_to_capture_pcap_verified_by_tshark_and_scapy(sock_path, tmp_path):
    tshark = require_tool("tshark")
    from scapy.all import IP, UDP, Ether, Raw
    frames = [bytes(Ether(src="02:00:00:00:00:01", dst="01:00:5e:01:01:01") /
                    IP(src="10.0.0.1", dst="239.1.1.1") / UDP(sport=1000 + i, dport=14310) /
                    Raw(bytes([i % 256]) * (20 + 7 * i))) for i in range(50)]
    src = tmp_path / "in.pcap"
    with PcapWriter(str(src)) as w:
        for f in frames:
            w.write(f)
    out = tmp_path / "out.pcap"
    cap = start(["capture", "--port", f"memif:socket={sock_path},role=server", "--count", "150",
                 "--out", str(out), "--json"])
    try:
        send = start(["send", "--port", f"memif:socket={sock_path},role=client", "--pcap", str(src),
                      "--loop", "3", "--rate", "20000", "--json"])
        sent = finish(send)
        captured = finish(cap)
    finally:
        for p in (cap,):
            if p.poll() is None:
                p.kill()
    assert sent["sent"] == 150 and captured["captured"] == 150
    assert read_frames(str(out)) == frames * 3
    # tshark reads our nanosecond pcap without complaint and decodes every UDP header
    res = subprocess.run([tshark, "-r", str(out), "-T", "fields", "-e", "udp.srcport", "-e", "frame.len"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and "warn" not in res.stderr.lower(), res.stderr
    rows = [line.split("\t") for line in res.stdout.strip().splitlines()]
    assert [int(r[0]) for r in rows] == [1000 + i for i in range(50)] * 3
    assert [int(r[1]) for r in rows] == [len(f) for f in frames] * 3
    # timestamps are nanosecond and non-decreasing
    res = subprocess.run([tshark, "-r", str(out), "-T", "fields", "-e", "frame.time_epoch"],
                         capture_output=True, text=True, timeout=60)
    stamps = [float(x) for x in res.stdout.split()]
    assert stamps == sorted(stamps) and abs(stamps[0] - time.time()) < 600


def poll_both(a, b, until, seconds=10):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        a.poll()
        b.poll()
        if until():
            return True
        time.sleep(0.001)
    return False


def test_multiple_queues_carry_separate_traffic(sock_path):
    ps, pc = Mempool(512, 2048, 128), Mempool(512, 2048, 128)
    with open_port(f"memif:socket={sock_path},role=server,queues=3", ps) as srv, \
         open_port(f"memif:socket={sock_path},role=client,queues=3", pc) as cli:
        assert poll_both(srv, cli, lambda: srv.link_up and cli.link_up)
        assert (srv.rx_queues, cli.tx_queues) == (3, 3)
        for q in range(3):
            cli.select_queue(q)
            bufs = pc.alloc_frames([bytes([q]) * (60 + q)] * (q + 1))
            assert cli.tx_burst(bufs) == q + 1
        out = np.empty(16, np.int32)
        for q in range(3):
            srv.select_queue(q)
            n = srv.rx_burst(out)
            assert [ps.read(int(b)) for b in out[:n]] == [bytes([q]) * (60 + q)] * (q + 1)
            ps.free_burst(out[:n])
        with pytest.raises(ValueError):
            srv.select_queue(3)
    assert ps.check() == 0 and pc.check() == 0


def test_interrupt_mode_wakes_the_sleeping_receiver(sock_path):
    ps, pc = Mempool(256, 2048, 128), Mempool(256, 2048, 128)
    with open_port(f"memif:socket={sock_path},role=server,rx=interrupt", ps) as srv, \
         open_port(f"memif:socket={sock_path},role=client", pc) as cli:
        assert poll_both(srv, cli, lambda: srv.link_up and cli.link_up)
        assert not srv.wait_rx(0.05)                 # nothing sent: the wait times out
        assert cli.tx_burst(pc.alloc_frames([b"\x01" * 64])) == 1
        assert cli.stats()["irq_sent"] == 1          # server left MASK_INT clear, so we kicked it
        t0 = time.monotonic()
        assert srv.wait_rx(5.0)
        assert time.monotonic() - t0 < 1.0
        out = np.empty(4, np.int32)
        assert srv.rx_burst(out) == 1
        ps.free_burst(out[:1])
        # the polling client keeps MASK_INT set: the server's TX never kicks it
        assert srv.tx_burst(ps.alloc_frames([b"\x02" * 64])) == 1
        assert srv.stats()["irq_sent"] == 0
        assert cli.rx_burst(out) == 1
        pc.free_burst(out[:1])
    assert ps.check() == 0 and pc.check() == 0


def test_secret_is_enforced(sock_path):
    ps, pc = Mempool(64, 2048, 128), Mempool(64, 2048, 128)
    with open_port(f"memif:socket={sock_path},role=server,secret=s3cret", ps) as srv:
        with open_port(f"memif:socket={sock_path},role=client,secret=wrong", pc) as cli:
            poll_both(srv, cli, lambda: "Incorrect secret" in cli.last_error, 3)
            assert not cli.link_up and "Incorrect secret" in cli.last_error
        with open_port(f"memif:socket={sock_path},role=client,secret=s3cret", pc) as cli:
            assert poll_both(srv, cli, lambda: cli.link_up and srv.link_up)


def _memif_maps() -> int:
    with open("/proc/self/maps") as f:
        return sum("memif_region" in line for line in f)


def test_close_releases_fds_and_mappings(sock_path):
    fds_before = len(os.listdir("/proc/self/fd"))
    maps_before = _memif_maps()
    for _ in range(10):
        ps, pc = Mempool(64, 2048, 128), Mempool(64, 2048, 128)
        srv = open_port(f"memif:socket={sock_path},role=server,queues=2", ps)
        cli = open_port(f"memif:socket={sock_path},role=client,queues=2", pc)
        assert poll_both(srv, cli, lambda: srv.link_up and cli.link_up)
        assert _memif_maps() > maps_before          # both sides map the client's region
        cli.close()
        srv.close()
    assert _memif_maps() == maps_before
    assert len(os.listdir("/proc/self/fd")) == fds_before
    assert not os.path.exists(sock_path)             # the server removed its socket file

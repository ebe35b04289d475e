"""tickwire memif against DPDK 22.11 testpmd, both roles, frames compared byte for byte.

testpmd runs `macswap`: every frame comes back with the Ethernet addresses swapped
and nothing else changed, so each received frame must equal the sent one with
bytes 0-5 and 6-11 exchanged. Frame sizes cross the memif buffer size (1024 here),
so both sides build and parse descriptor chains (NEXT flag).
"""

from __future__ import annotations

import os
import time
import uuid

import numpy as np
import pytest

from tickwire.drivers.port import open_port
from tickwire.mem.mempool import Mempool

from .testpmd import TestpmdPeer

pytestmark = pytest.mark.peer


def macswap(frame: bytes) -> bytes:
    return frame[6:12] + frame[0:6] + frame[12:]


def make_frames(count: int, seed: int, max_len: int = 3000) -> list[bytes]:
    rng = np.random.default_rng(seed)
    sizes = [60, 64, 1023, 1024, 1025, 1500, 2048, 2049, max_len] + list(rng.integers(60, max_len, count))
    return [bytes([0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2]) + rng.bytes(int(n) - 12) for n in sizes[:count]]


@pytest.fixture
def sock_path():
    os.makedirs("/run/tw", exist_ok=True)
    path = f"/run/tw/test-{uuid.uuid4().hex[:8]}.sock"
    yield path
    if os.path.exists(path):
        os.unlink(path)


def exchange(port, pool, frames, timeout=10.0):
    """Send all frames (in bursts, polling the control plane) and collect as many back."""
    bufs = pool.alloc_frames(frames)
    sent, got = 0, []
    out = np.empty(64, np.int32)
    deadline = time.monotonic() + timeout
    while (sent < len(frames) or len(got) < len(frames)) and time.monotonic() < deadline:
        if sent < len(frames):
            sent += port.tx_burst(bufs[sent:], min(32, len(frames) - sent))
        n = port.rx_burst(out)
        got += pool.frames(out, n)
        pool.free_burst(out[:n])
        port.poll()
    pool.free_burst(bufs[sent:])
    return sent, got


@pytest.mark.parametrize("count", [200])
def test_client_against_testpmd_server(sock_path, count):
    frames = make_frames(count, seed=1)
    with TestpmdPeer(role="server", socket=sock_path, main_lcore=0) as pmd:
        pmd.wait_started()
        pool = Mempool(2048, 4096, 128)
        with open_port(f"memif:socket={sock_path},role=client,bsize=1024", pool) as port:
            assert port.wait_link(10), port.events
            assert port.peer_name.startswith("net_memif")
            sent, got = exchange(port, pool, frames)
            stats = port.stats()
        assert sent == count
        assert got == [macswap(f) for f in frames]
        assert stats["tx_chained"] > 0 and stats["rx_chained"] > 0
        assert stats["bad_desc"] == 0 and stats["protocol_errors"] == 0
        assert pool.check() == 0


@pytest.mark.parametrize("count", [200])
def test_server_against_testpmd_client(sock_path, count):
    frames = make_frames(count, seed=2)
    pool = Mempool(2048, 4096, 128)
    with open_port(f"memif:socket={sock_path},role=server", pool) as port:
        with TestpmdPeer(role="client", socket=sock_path, bsize=1024, main_lcore=1) as pmd:
            assert port.wait_link(30), (port.events, pmd.output()[-2000:])
            sent, got = exchange(port, pool, frames)
            stats = port.stats()
        assert sent == count
        assert got == [macswap(f) for f in frames]
        assert stats["tx_chained"] > 0 and stats["rx_chained"] > 0
        # testpmd went away: the server sees it, drops the link and keeps listening
        deadline = time.monotonic() + 5
        while port.link_up and time.monotonic() < deadline:
            port.poll()
            time.sleep(0.01)
        assert not port.link_up
    assert pool.check() == 0


def test_testpmd_txonly_frames_reach_tickwire(sock_path):
    """testpmd's txonly template (notes §8) arrives intact: IPv4/UDP 198.18.0.1 -> .2, port 9."""
    pool = Mempool(4096, 2048, 128)
    with TestpmdPeer(role="server", socket=sock_path, forward="txonly", main_lcore=0) as pmd:
        pmd.wait_started()
        with open_port(f"memif:socket={sock_path},role=client", pool) as port:
            assert port.wait_link(10)
            out = np.empty(64, np.int32)
            frames = []
            deadline = time.monotonic() + 10
            while len(frames) < 1000 and time.monotonic() < deadline:
                n = port.rx_burst(out)
                frames += pool.frames(out, n)
                pool.free_burst(out[:n])
    assert len(frames) >= 1000
    f = frames[0]
    assert len(f) == 64 and f[12:14] == b"\x08\x00"
    assert f[26:30] == bytes([198, 18, 0, 1]) and f[30:34] == bytes([198, 18, 0, 2])
    assert f[34:38] == b"\x00\x09\x00\x09"
    assert pool.check() == 0


def test_client_reconnects_when_server_restarts(sock_path):
    pool = Mempool(1024, 4096, 128)
    with open_port(f"memif:socket={sock_path},role=client", pool) as port:
        for round_ in range(2):
            with TestpmdPeer(role="server", socket=sock_path, main_lcore=0) as pmd:
                pmd.wait_started()
                assert port.wait_link(15), port.events
                frames = make_frames(20, seed=round_, max_len=1500)
                _, got = exchange(port, pool, frames)
                assert got == [macswap(f) for f in frames]
            # testpmd unlinks its socket on a clean exit only; on a loaded VM stop() may have
            # had to SIGKILL it, and the next server then fails with "Address already in use"
            if os.path.exists(sock_path):
                os.unlink(sock_path)
            deadline = time.monotonic() + 5
            while port.link_up and time.monotonic() < deadline:
                port.poll()
                time.sleep(0.01)
            assert not port.link_up
        assert port.counters.as_dict()["connects"] == 2
    assert pool.check() == 0

"""udp: and tcp: kernel-socket ports against plain kernel sockets (the real peer)."""

import os
import socket
import struct
import threading
import time

import numpy as np
import pytest

from conftest import require
from tickwire.bench.xdp import echo_loop     # the benchmark's echo: a nopython loop over any port
from tickwire.drivers.port import open_port
from tickwire.drivers.spec import SpecError
from tickwire.mem.mempool import Mempool


def _free_port(kind=socket.SOCK_DGRAM):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rx_all(port, want, timeout=10.0):
    bufs = np.empty(64, np.int32)
    out = []
    t_end = time.monotonic() + timeout
    while len(out) < want and time.monotonic() < t_end:
        n = port.rx_burst(bufs)
        out += port.pool.frames(bufs, n)
        port.pool.free_burst(bufs[:n])
    return out


def test_udp_receives_payloads_and_replies_to_the_sender():
    p = _free_port()
    port = open_port(f"udp:bind=127.0.0.1:{p}")
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    peer.settimeout(5)
    try:
        msgs = [struct.pack("<I", i) + os.urandom(i % 200) for i in range(1000)]
        got = []
        for chunk in range(0, 1000, 100):           # stay under the socket buffer
            for m in msgs[chunk:chunk + 100]:
                peer.sendto(m, ("127.0.0.1", p))
            got += _rx_all(port, 100)
        assert got == msgs, "payloads only, no headers, in order"
        # echo from Numba: the reply goes to the latest sender
        for m in msgs[:50]:
            peer.sendto(m, ("127.0.0.1", p))
        assert echo_loop(port.state, port.pool.arrays, np.empty(32, np.int32), -1, 50, 10_000_000) == (50, 0)
        assert [peer.recv(2048) for _ in range(50)] == msgs[:50]
        st = port.stats()
        assert st["rx_packets"] == 1050 and st["tx_packets"] == 50 and st["rx_errors"] == 0
        assert port.pool.check() == 0
    finally:
        port.close()
        peer.close()


def test_udp_oversized_datagram_dropped_and_counted_not_truncated():
    p = _free_port()
    port = open_port(f"udp:bind=127.0.0.1:{p}", Mempool(n_bufs=64, buf_size=256, headroom=64))
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"x" * 500, ("127.0.0.1", p))   # > 192 bytes of room
            s.sendto(b"small", ("127.0.0.1", p))
        assert _rx_all(port, 1) == [b"small"]
        assert port.stats()["rx_too_long"] == 1
        assert port.pool.check() == 0
    finally:
        port.close()


def test_udp_connect_and_no_destination():
    p = _free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as k:
        k.bind(("127.0.0.1", 0))
        k.settimeout(5)
        port = open_port(f"udp:bind=127.0.0.1:{p},connect=127.0.0.1:{k.getsockname()[1]}")
        try:
            bufs = port.pool.alloc_frames([b"one", b"two"])
            assert port.tx_burst(bufs) == 2
            assert [k.recv(100), k.recv(100)] == [b"one", b"two"]
        finally:
            port.close()
    port = open_port(f"udp:bind=127.0.0.1:{_free_port()}")      # nobody to reply to yet
    try:
        assert port.tx_burst(port.pool.alloc_frames([b"lost"])) == 1
        assert port.stats()["tx_no_dest"] == 1 and port.pool.check() == 0
    finally:
        port.close()


def test_udp_multicast_join_and_send(tmp_path):
    require(os.geteuid() == 0, "root privileges (network namespaces)")
    from xdp.netns import VethPair, inside
    with VethPair() as v:
        v.a("ip", "addr", "add", f"{v.A_IP}/24", "dev", v.dev_a)
        v.a("ip", "route", "add", "239.0.0.0/8", "dev", v.dev_a)
        v.b("ip", "route", "add", "239.0.0.0/8", "dev", v.dev_b)
        with inside(v.ns_b):
            port = open_port(f"udp:bind=0.0.0.0:9500,group=239.1.1.1,iface={v.B_IP},"
                             f"connect=239.1.1.2:9600")
            sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with inside(v.ns_a):
            k = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            k.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            k.bind(("239.1.1.2", 9600))
            k.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                         socket.inet_aton("239.1.1.2") + socket.inet_aton(v.A_IP))
            tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            tx.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(v.A_IP))
        k.settimeout(5)
        try:
            for i in range(20):
                tx.sendto(b"feed %d" % i, ("239.1.1.1", 9500))
            assert _rx_all(port, 20) == [b"feed %d" % i for i in range(20)]
            assert port.tx_burst(port.pool.alloc_frames([b"order"])) == 1
            assert k.recv(100) == b"order"
        finally:
            port.close()
            for s in (k, tx, sender):
                s.close()


def test_tcp_listen_stream_both_ways_with_partial_writes():
    p = _free_port(socket.SOCK_STREAM)
    port = open_port(f"tcp:listen=127.0.0.1:{p},sndbuf=4096", Mempool(n_bufs=256, buf_size=65536))
    try:
        assert not port.link_up
        cli = socket.create_connection(("127.0.0.1", p), timeout=5)
        assert port.wait_connected()
        data = os.urandom(1 << 20)
        t = threading.Thread(target=cli.sendall, args=(data,))
        t.start()
        got = bytearray()
        bufs = np.empty(64, np.int32)
        t_end = time.monotonic() + 20
        while len(got) < len(data) and time.monotonic() < t_end:
            n = port.rx_burst(bufs)
            for f in port.pool.frames(bufs, n):
                got += f
            port.pool.free_burst(bufs[:n])
        t.join()
        assert bytes(got) == data, "the stream arrives whole and in order"

        # back the other way, far more than the port's 4 KiB send buffer holds: partial writes must not lose bytes
        chunks = [data[i:i + 60000] for i in range(0, len(data), 60000)]
        received = bytearray()

        def reader():
            while len(received) < len(data):
                b = cli.recv(65536)
                if not b:
                    break
                received.extend(b)
        r = threading.Thread(target=reader)
        r.start()
        pending = list(chunks)
        t_end = time.monotonic() + 30
        while pending and time.monotonic() < t_end:
            batch = pending[:32]
            bufs = port.pool.alloc_frames(batch)
            n = port.tx_burst(bufs)
            # bufs[n:] are still ours; bufs[n] may hold only the unsent tail of a partial write
            rest = [port.pool.read(int(b)) for b in bufs[n:]]
            port.pool.free_burst(bufs[n:])
            pending = rest + pending[len(batch):]
        r.join(timeout=30)
        assert bytes(received) == data
        assert port.stats()["tx_partial"] > 0, "60 KB writes into a 4 KiB send buffer must be partial"
        cli.close()
        t_end = time.monotonic() + 5
        while port.link_up and time.monotonic() < t_end:
            port.rx_burst(bufs)
        assert not port.link_up and port.stats()["peer_closed"] == 1
        assert port.pool.check() == 0
    finally:
        port.close()


def test_bad_specs_and_unreachable_peers_give_clear_errors():
    with pytest.raises(SpecError, match="expected IP:PORT"):
        open_port("udp:bind=127.0.0.1")
    with pytest.raises(SpecError, match="exactly one of connect"):
        open_port("tcp:connect=127.0.0.1:1,listen=127.0.0.1:2")
    with pytest.raises(SpecError, match="unknown argument"):
        open_port("udp:bind=127.0.0.1:0,bogus=1")
    closed = _free_port(socket.SOCK_STREAM)
    with pytest.raises(OSError, match=f"cannot connect to 127.0.0.1:{closed}.*listening"):
        open_port(f"tcp:connect=127.0.0.1:{closed}")
    with pytest.raises(OSError, match="cannot bind 192.0.2.77"):
        open_port("udp:bind=192.0.2.77:9000")       # TEST-NET-1: not ours

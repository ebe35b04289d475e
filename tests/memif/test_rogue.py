"""Rogue memif peers: malformed, truncated and out-of-order control messages, wrong
cookies, descriptors outside their region, indices beyond the ring, and peers that
vanish mid-burst. tickwire must name the reason, count it, keep running (and keep
serving the next, well-behaved peer), and the mempool invariant must hold.
"""

from __future__ import annotations

import array
import os
import socket
import struct
import threading
import time
import uuid

import numpy as np
import pytest

from tickwire.drivers.memif import proto
from tickwire.drivers.port import open_port
from tickwire.mem.mempool import Mempool
from tickwire.mem.shm import create_memfd


@pytest.fixture
def sock_path(tmp_path):
    return str(tmp_path / f"m{uuid.uuid4().hex[:6]}.sock")


def pump(port, seconds=0.3, until=None):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        port.poll()
        if until and until():
            return True
        time.sleep(0.002)
    return bool(until and until())


# ---------------------------------------------------------------------------------
# A rogue *client* talking to a tickwire server
# ---------------------------------------------------------------------------------
class RogueClient:
    """Speaks memif by hand; every step can be bent."""

    def __init__(self, path, log2=4, bsize=256, seal=True):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.sock.connect(path)
        self.sock.settimeout(2)
        self.log2, self.bsize = log2, bsize
        self.rb = proto.ring_bytes(log2)
        self.size = 2 * self.rb + bsize * (1 << log2) * 2
        self.fd, self.size, _ = create_memfd(self.size, "rogue", "off", seal=seal)
        import mmap
        self.map = mmap.mmap(self.fd, self.size)
        self.mem = np.frombuffer(self.map, np.uint8)
        self.rings = [proto.RingView(self.mem, g * self.rb, log2) for g in range(2)]
        for g, r in enumerate(self.rings):
            r.cookie = proto.COOKIE
            r.desc["length"] = bsize
            r.desc["offset"] = 2 * self.rb + (g * (1 << log2) + np.arange(1 << log2)) * bsize

    def send(self, msg, fds=()):
        anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", list(fds)))] if fds else []
        self.sock.sendmsg([msg], anc)

    def recv(self):
        data = self.sock.recv(256)
        return proto.decode(data) if data else (None, None)

    def handshake(self, stop_before=None):
        t, _ = self.recv()
        assert t == proto.HELLO
        steps = [("init", proto.init(0, "rogue"), ()),
                 ("region", proto.add_region(0, self.size), (self.fd,)),
                 ("c2s", proto.add_ring(True, 0, 0, 0, self.log2), (os.eventfd(0),)),
                 ("s2c", proto.add_ring(False, 0, 0, self.rb, self.log2), (os.eventfd(0),))]
        for name, msg, fds in steps:
            if name == stop_before:
                return
            self.send(msg, fds)
            for fd in fds:  # the server holds its own copy of an eventfd now; the memfd stays ours
                if fd != self.fd:
                    os.close(fd)
            t, payload = self.recv()
            assert t == proto.ACK, (name, t, payload)
        if stop_before == "connect":
            return
        self.send(proto.connect("rogue"))
        t, _ = self.recv()
        assert t == proto.CONNECTED

    def close(self):
        self.sock.close()
        self.rings = self.mem = None
        try:
            self.map.close()
        except BufferError:  # a test still holds a view; the mapping goes with it
            pass
        os.close(self.fd)


@pytest.fixture
def server(sock_path):
    pool = Mempool(256, 2048, 128)
    port = open_port(f"memif:socket={sock_path},role=server", pool)
    yield port, pool
    port.close()
    assert pool.check() == 0


def expect_disconnect(port, client, reason_part):
    """The server answers DISCONNECT naming the reason and counts a protocol error."""
    got = None
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        port.poll()
        try:
            client.sock.settimeout(0.01)
            data = client.sock.recv(256)
        except (socket.timeout, BlockingIOError):
            continue
        if data:
            got = proto.decode(data)
        break
    assert got is not None and got[0] == proto.DISCONNECT, got
    assert reason_part in got[1].reason
    assert reason_part in port.last_error
    assert not port.link_up


@pytest.mark.parametrize("bend, reason", [
    (lambda c: c.send(b"\x03\x00" + bytes(60)), "Invalid message size"),
    (lambda c: c.send(struct.pack("<H", 77) + bytes(126)), "Unknown message type"),
    (lambda c: c.send(proto.connect("early")), "unexpected CONNECT during init"),
    (lambda c: c.send(proto.init(5, "x")), "ID not found"),
    (lambda c: c.send(proto.init(0, "x", mode=1)), "Only ethernet mode supported"),
    (lambda c: c.send(proto.init(0, "x", version=0x0100)), "Unsupported version"),
])
def test_bad_first_message_is_refused_with_reason(server, sock_path, bend, reason):
    port, _ = server
    c = RogueClient(sock_path)
    pump(port, 0.05)
    assert c.recv()[0] == proto.HELLO
    bend(c)
    expect_disconnect(port, c, reason)
    assert port.counters.as_dict()["protocol_errors"] == 1
    c.close()


def test_setup_violations(server, sock_path):
    port, _ = server
    cases = [
        (lambda c: c.send(proto.add_region(0, c.size)), "Missing region fd"),
        (lambda c: c.send(proto.add_region(0, c.size * 4), (c.fd,)), "Invalid region size"),
        (lambda c: c.send(proto.add_region(3, c.size), (c.fd,)), "Invalid region index"),
        (lambda c: c.send(proto.ack(), (c.fd, c.fd)), "file descriptors in one message"),
        (lambda c: c.send(proto.add_ring(True, 0, 0, 0, 4)), "Missing interrupt fd"),
        (lambda c: c.send(proto.add_ring(True, 0, 9, 0, 4), (os.eventfd(0),)), "Invalid region"),
    ]
    for i, (bend, reason) in enumerate(cases):
        c = RogueClient(sock_path)
        pump(port, 0.05)
        assert c.recv()[0] == proto.HELLO
        c.send(proto.init(0, "rogue"))
        pump(port, 0.05)
        assert c.recv()[0] == proto.ACK
        if "ring" in reason.lower() or "Invalid region" == reason:
            c.send(proto.add_region(0, c.size), (c.fd,))
            pump(port, 0.05)
            assert c.recv()[0] == proto.ACK
        bend(c)
        expect_disconnect(port, c, reason)
        c.close()
    assert port.counters.as_dict()["protocol_errors"] == len(cases)
    # fds received with refused messages were closed: none leaked into this process
    assert len(os.listdir("/proc/self/fd")) < 64


def test_ring_outside_region_and_wrong_cookie(server, sock_path):
    port, _ = server
    c = RogueClient(sock_path)
    pump(port, 0.05)
    c.recv()
    for msg, fds in ((proto.init(0, "r"), ()), (proto.add_region(0, c.size), (c.fd,))):
        c.send(msg, fds)
        pump(port, 0.05)
        assert c.recv()[0] == proto.ACK
    c.send(proto.add_ring(True, 0, 0, c.size - 100, 4), (os.eventfd(0),))
    expect_disconnect(port, c, "Ring outside its region")
    c.close()

    c = RogueClient(sock_path)
    c.rings[1].cookie = 0xBAD
    while_serving(port, lambda: c.handshake(stop_before="connect"))
    c.send(proto.connect("rogue"))
    expect_disconnect(port, c, "Wrong cookie")
    c.close()


def test_unsealed_region_is_refused_and_a_shrink_cannot_crash_us(server, sock_path):
    """A region the peer could ftruncate after we map it would SIGBUS the data path (the
    whole process, mlock or not): refused unless the spec says unsealed=allow."""
    port, _ = server
    c = RogueClient(sock_path, seal=False)
    pump(port, 0.05)
    assert c.recv()[0] == proto.HELLO
    c.send(proto.init(0, "rogue"))
    pump(port, 0.05)
    assert c.recv()[0] == proto.ACK
    c.send(proto.add_region(0, c.size), (c.fd,))
    expect_disconnect(port, c, "not sealed against shrinking")
    c.close()
    sealed = RogueClient(sock_path)             # a sealed peer still connects afterwards
    with pytest.raises(OSError):
        os.ftruncate(sealed.fd, 0)              # what the seal forbids the peer
    while_serving(port, sealed.handshake)
    pump(port, 0.1)
    assert port.link_up
    sealed.close()


def test_unsealed_allow_trusts_the_peer(sock_path):
    pool = Mempool(256, 2048, 128)
    port = open_port(f"memif:socket={sock_path},role=server,unsealed=allow", pool)
    try:
        c = RogueClient(sock_path, seal=False)
        while_serving(port, c.handshake)
        pump(port, 0.1)
        assert port.link_up
        c.close()
    finally:
        port.close()
    assert pool.check() == 0


def while_serving(port, fn):
    """Run a blocking rogue-client step in a thread while the server's control plane is pumped."""
    t = threading.Thread(target=fn)
    t.start()
    pump(port, 3, until=lambda: not t.is_alive())
    t.join()


def serve(port, c):
    """Take RogueClient ``c`` through its handshake while the server ``port`` runs."""
    while_serving(port, c.handshake)
    assert port.link_up
    return c


def connected_rogue(port, sock_path, **kw):
    return serve(port, RogueClient(sock_path, **kw))


def test_descriptor_outside_region_disconnects_and_server_lives_on(server, sock_path):
    port, pool = server
    c = connected_rogue(port, sock_path)
    c2s = c.rings[0]
    c2s.desc[0] = (0, 0, 64, c.size - 10, 0)      # 64 bytes starting 10 bytes before the end
    c2s.head = 1
    bufs = np.empty(8, np.int32)
    assert port.rx_burst(bufs) == 0
    port.poll()
    assert not port.link_up and "descriptor outside its region" in port.last_error
    assert port.counters.as_dict()["bad_desc"] == 1
    assert pool.check() == 0
    c.close()
    # the next client is served normally
    c = connected_rogue(port, sock_path)
    c.rings[0].desc[0]["length"] = 60
    c.rings[0].head = 1
    assert port.rx_burst(bufs) == 1
    pool.free_burst(bufs[:1])
    c.close()


def test_bad_region_index_and_head_beyond_ring(server, sock_path):
    port, pool = server
    bufs = np.empty(8, np.int32)
    c = connected_rogue(port, sock_path)
    c.rings[0].desc[0] = (0, 7, 60, 0, 0)   # region 7 does not exist
    c.rings[0].head = 1
    assert port.rx_burst(bufs) == 0
    port.poll()
    assert "descriptor outside its region" in port.last_error
    c.close()

    c = connected_rogue(port, sock_path)
    c.rings[0].head = 1000                   # ring has 16 slots
    assert port.rx_burst(bufs) == 0
    port.poll()
    assert "ring index beyond ring size" in port.last_error
    assert port.counters.as_dict()["bad_ring_index"] == 1
    c.close()
    assert pool.check() == 0


def test_frame_longer_than_pool_buffer_is_dropped_and_counted(sock_path):
    pool = Mempool(64, 512, 128)     # 384 bytes of room per buffer
    with open_port(f"memif:socket={sock_path},role=server", pool) as port:
        c = connected_rogue(port, sock_path)
        r = c.rings[0]
        r.desc[0]["length"] = 256
        r.desc[0]["flags"] = proto.DESC_FLAG_NEXT
        r.desc[1]["length"] = 256               # chain of 512 > 384
        r.desc[2]["length"] = 100               # then a normal frame
        r.head = 3
        bufs = np.empty(8, np.int32)
        assert port.rx_burst(bufs) == 1
        assert pool.read(int(bufs[0])) == bytes(c.mem[r.desc[2]["offset"]:r.desc[2]["offset"] + 100])
        pool.free_burst(bufs[:1])
        assert port.counters.as_dict()["rx_too_long"] == 1
        assert port.link_up
        c.close()
    assert pool.check() == 0


def test_peer_vanishes_mid_chain(server, sock_path):
    port, pool = server
    c = connected_rogue(port, sock_path)
    r = c.rings[0]
    r.desc[0]["flags"] = proto.DESC_FLAG_NEXT   # first half of a chain, second half never comes
    r.head = 1
    bufs = np.empty(8, np.int32)
    assert port.rx_burst(bufs) == 0             # incomplete chain: nothing taken, nothing lost
    c.close()
    assert pump(port, 2, until=lambda: not port.link_up)
    assert "peer closed" in port.last_error
    assert pool.check() == 0


# ---------------------------------------------------------------------------------
# A rogue *server* talking to a tickwire client
# ---------------------------------------------------------------------------------
class RogueServer:
    def __init__(self, path):
        self.lsock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.lsock.bind(path)
        self.lsock.listen(1)
        self.lsock.settimeout(3)

    def accept(self, client):
        """Accept the next connection while letting the client's control plane run (it retries)."""
        self.lsock.setblocking(False)
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            client.poll()
            try:
                self.conn, _ = self.lsock.accept()
            except BlockingIOError:
                time.sleep(0.005)
                continue
            self.conn.settimeout(3)
            return self.conn
        raise TimeoutError("the client did not (re)connect")

    def recv_all(self, client):
        """Receive one message (with fds) while letting the client run."""
        deadline = time.monotonic() + 3
        self.conn.setblocking(False)
        while time.monotonic() < deadline:
            client.poll()
            try:
                msg, anc, _, _ = self.conn.recvmsg(256, socket.CMSG_SPACE(16))
            except BlockingIOError:
                time.sleep(0.002)
                continue
            fds = [fd for l, t, raw in anc for fd in array.array("i", raw)]
            return proto.decode(msg), fds
        raise TimeoutError

    def handshake(self, client):
        """Accept ``client`` and take it through the handshake as an honest server would;
        returns the client's region (bytes, mapped here) and its S2C ring's view."""
        import mmap
        conn = self.accept(client)
        conn.send(proto.hello("evil", 255, 0, 0, 14))
        (t, _), _ = self.recv_all(client)
        assert t == proto.INIT
        conn.send(proto.ack())
        (t, region), fds = self.recv_all(client)
        assert t == proto.ADD_REGION and len(fds) == 1
        mem = np.frombuffer(mmap.mmap(fds[0], region.size), np.uint8)
        os.close(fds[0])                            # the mapping keeps the region
        conn.send(proto.ack())
        rings = []
        for _ in range(2):
            (t, ring), efds = self.recv_all(client)
            for fd in efds:
                os.close(fd)
            rings.append(ring)
            conn.send(proto.ack())
        (t, _), _ = self.recv_all(client)
        assert t == proto.CONNECT
        conn.send(proto.connected("evil"))
        assert pump(client, 2, until=lambda: client.link_up)
        s2c = [r for r in rings if not r.c2s][0]
        return mem, region, proto.RingView(mem, s2c.offset, s2c.log2_size)

    def close(self):
        self.lsock.close()


@pytest.fixture
def rogue_server(sock_path):
    s = RogueServer(sock_path)
    yield s
    s.close()


@pytest.mark.parametrize("first, reason", [
    (b"\x02\x00" + bytes(20), "Invalid message size"),
    (proto.ack(), "unexpected ACK during hello"),
    (proto.hello("evil", 0, 0, 0, 5), "ring log2 5"),
    (proto.disconnect("go away"), "go away"),
])
def test_client_survives_bad_server(rogue_server, sock_path, first, reason):
    pool = Mempool(64, 2048, 128)
    with open_port(f"memif:socket={sock_path},role=client", pool) as port:
        conn = rogue_server.accept(port)
        conn.send(first)
        assert pump(port, 2, until=lambda: reason in port.last_error), port.events
        assert not port.link_up
        conn.close()
        # the client keeps retrying: a new connection arrives
        conn2 = rogue_server.accept(port)
        conn2.close()
    assert pool.check() == 0


def test_client_rejects_out_of_region_server_writes(rogue_server, sock_path):
    """A server that completes the handshake, then points an S2C descriptor outside the region."""
    pool = Mempool(64, 2048, 128)
    with open_port(f"memif:socket={sock_path},role=client,rsize=4,bsize=256", pool) as port:
        mem, region, view = rogue_server.handshake(port)
        view.desc[0] = (0, 0, 4096, region.size - 16, 0)   # 4 KiB at 16 bytes before the end
        view.tail = 1
        bufs = np.empty(8, np.int32)
        assert port.rx_burst(bufs) == 0
        port.poll()
        assert "descriptor outside its region" in port.last_error
        assert port.counters.as_dict()["bad_desc"] == 1
        rogue_server.conn.close()
    assert pool.check() == 0

"""A peer that closes, or stops reading, while we send on the control socket: poll()
must disconnect with a reason and keep listening (review s9 item 3), never raise."""

from __future__ import annotations

import array
import os
import socket

from tickwire.drivers.memif import proto
from tickwire.drivers.port import open_port
from tickwire.mem.mempool import Mempool
from tickwire.mem.shm import create_memfd

from .test_rogue import RogueClient, RogueServer, connected_rogue, pump, sock_path  # noqa: F401 (fixture)


def test_client_that_connects_and_closes_does_not_kill_the_server(sock_path):
    pool = Mempool(64, 2048, 128)
    port = open_port(f"memif:socket={sock_path},role=server", pool)
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        s.connect(sock_path)
        s.close()                       # gone before the server sends HELLO
        port.poll()                     # used to raise PeerGone
        assert port.chan is None and not port.link_up
        connected_rogue(port, sock_path).close()     # the next client is served
    finally:
        port.close()
    assert pool.check() == 0


def test_flood_without_reading_acks_ends_in_a_disconnect(sock_path):
    port = open_port(f"memif:socket={sock_path},role=server,queues=255")
    c = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    c.connect(sock_path)

    def send(msg, fd=None):
        anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))] if fd is not None else []
        c.sendmsg([msg], anc)

    try:
        port.poll()
        send(proto.init(0, "flood"))
        def msgs():  # each fd made just before its message, closed just after
            for i in range(proto.MAX_REGIONS):
                fd, size, _ = create_memfd(4096, "r", "off", seal=True)
                yield proto.add_region(i, size), fd
            for c2s in (True, False):
                for i in range(255):
                    yield proto.add_ring(c2s, i, 0, 0, 1), os.eventfd(0, os.EFD_NONBLOCK)

        fds_before = len(os.listdir("/proc/self/fd"))
        for msg, fd in msgs():
            try:
                send(msg, fd)
            except OSError:             # the server hung up on us
                break
            finally:
                os.close(fd)
            port.poll()                 # used to raise BlockingIOError
            if port.chan is None:
                break
        assert port.chan is None, "the flood never ended in a disconnect"
        assert "does not read" in port.last_error
        assert port.counters.as_dict()["protocol_errors"] == 1
        assert len(os.listdir("/proc/self/fd")) <= fds_before   # the server closed every fd it took
    finally:
        c.close()
        port.close()


def test_server_that_sends_hello_and_closes_does_not_kill_the_client(sock_path):
    rs = RogueServer(sock_path)
    pool = Mempool(64, 2048, 128)
    try:
        with open_port(f"memif:socket={sock_path},role=client", pool) as port:
            conn = rs.accept(port)
            conn.send(proto.hello("evil", 255, 0, 0, 14))
            conn.close()                # our INIT finds the socket closed
            assert pump(port, 1, until=lambda: port.chan is None)  # used to raise PeerGone
            assert port.last_error and not port.link_up
            rs.accept(port).close()     # and the client retries
    finally:
        rs.close()
    assert pool.check() == 0

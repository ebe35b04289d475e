"""A peer that connects and never finishes the handshake (review s9 item 8): it is
disconnected with "handshake timeout" and the slot is free again."""

from __future__ import annotations

import socket
import time

from tickwire.drivers.memif import proto
from tickwire.drivers.memif.port import MemifPort
from tickwire.drivers.port import open_port
from tickwire.mem.mempool import Mempool

from .test_rogue import RogueClient, RogueServer, connected_rogue, pump, sock_path  # noqa: F401 (fixture)


def test_silent_client_times_out_and_the_next_one_is_served(sock_path, monkeypatch):
    monkeypatch.setattr(MemifPort, "handshake_timeout", 0.3, raising=False)
    pool = Mempool(64, 2048, 128)
    port = open_port(f"memif:socket={sock_path},role=server", pool)
    try:
        mute = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        mute.connect(sock_path)
        port.poll()
        assert port.chan is not None
        assert pump(port, 2, until=lambda: port.chan is None)   # used to hold the slot forever
        assert "handshake timeout" in port.last_error
        assert port.counters.as_dict()["handshake_timeouts"] == 1
        mute.settimeout(1)
        assert proto.decode(mute.recv(128))[0] == proto.HELLO
        t, p = proto.decode(mute.recv(128))
        assert t == proto.DISCONNECT and "handshake timeout" in p.reason
        mute.close()
        c = connected_rogue(port, sock_path)
        time.sleep(0.4)
        port.poll()
        assert port.link_up                 # no timeout once the link is up
        c.close()
    finally:
        port.close()
    assert pool.check() == 0


def test_client_whose_server_never_says_hello_retries(sock_path, monkeypatch):
    monkeypatch.setattr(MemifPort, "handshake_timeout", 0.3, raising=False)
    rs = RogueServer(sock_path)
    pool = Mempool(64, 2048, 128)
    try:
        with open_port(f"memif:socket={sock_path},role=client", pool) as port:
            conn = rs.accept(port)          # and never a HELLO
            assert pump(port, 2, until=lambda: "handshake timeout" in port.last_error)
            assert port.counters.as_dict()["handshake_timeouts"] == 1
            rs.accept(port).close()         # the client connects again
            conn.close()
    finally:
        rs.close()
    assert pool.check() == 0


def test_our_own_absence_does_not_time_the_peer_out(sock_path, monkeypatch):
    """A server that stops polling mid-handshake (compiling, say) finds the client's reply
    waiting afterwards: that is no timeout."""
    monkeypatch.setattr(MemifPort, "handshake_timeout", 0.3, raising=False)
    port = open_port(f"memif:socket={sock_path},role=server")
    try:
        c = RogueClient(sock_path)
        port.poll()                         # accept + HELLO
        assert c.recv()[0] == proto.HELLO
        c.send(proto.init(0, "rogue"))
        time.sleep(0.6)                     # we are away for twice the timeout
        port.poll()
        assert port.chan is not None and "timeout" not in port.last_error
        assert c.recv()[0] == proto.ACK
        c.close()
    finally:
        port.close()

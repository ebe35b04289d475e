"""A second server on a live server's socket path (review s9 item 10): it must refuse,
not unlink the live one's socket; a stale socket file is still replaced."""

from __future__ import annotations

import socket

import pytest

from tickwire.drivers.port import open_port

from .test_rogue import connected_rogue, sock_path  # noqa: F401 (fixture)


def test_second_server_refuses_a_live_path(sock_path):
    first = open_port(f"memif:socket={sock_path},role=server")
    try:
        with pytest.raises(ValueError, match="already listens"):
            open_port(f"memif:socket={sock_path},role=server")
        first.poll()                      # the probe connected and left: first lives on
        connected_rogue(first, sock_path).close()     # and is still reachable at its path
    finally:
        first.close()


def test_stale_socket_file_is_replaced(sock_path):
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    stale.bind(sock_path)
    stale.close()                         # the file stays, nobody listens
    port = open_port(f"memif:socket={sock_path},role=server")
    try:
        connected_rogue(port, sock_path).close()
    finally:
        port.close()

"""The server must not allocate a client's large, sparse region at CONNECT (review s9
item 9); a region of the usual size is still faulted in up front (no first-touch faults)."""

from __future__ import annotations

import os

from tickwire.drivers.port import open_port

from .test_rogue import RogueClient, serve, sock_path  # noqa: F401 (fixture)


def allocated(fd):
    return os.fstat(fd).st_blocks * 512


def test_large_sparse_client_region_is_not_allocated(sock_path):
    port = open_port(f"memif:socket={sock_path},role=server")
    try:
        c = RogueClient(sock_path, log2=4, bsize=2 << 20)     # 64 MiB, the client wrote its rings only
        assert c.size >= 64 << 20
        before = allocated(c.fd)
        serve(port, c)
        assert allocated(c.fd) - before < 1 << 20             # used to be the whole 64 MiB
        c.close()
    finally:
        port.close()


def test_small_client_region_is_still_populated(sock_path):
    port = open_port(f"memif:socket={sock_path},role=server")
    try:
        c = RogueClient(sock_path)                          # 16 slots of 256 bytes
        serve(port, c)
        assert allocated(c.fd) >= c.size
        c.close()
    finally:
        port.close()

"""The interrupt fd a client hands over with ADD_RING (review s9 item 2): our TX burst
writes its kick there with the GIL held, so it must be an eventfd and must not block."""

from __future__ import annotations

import os
import signal
import threading

import numpy as np

from tickwire.drivers.memif import proto
from tickwire.drivers.port import open_port
from tickwire.mem.mempool import Mempool

from .test_rogue import RogueClient, expect_disconnect, pump, sock_path  # noqa: F401 (fixture)


def handshake(c, s2c_fd, out):
    """Like RogueClient.handshake, with our own S2C interrupt fd; stops at the first non-ACK."""
    assert c.recv()[0] == proto.HELLO
    steps = [(proto.init(0, "rogue"), ()), (proto.add_region(0, c.size), (c.fd,)),
             (proto.add_ring(True, 0, 0, 0, c.log2), (os.eventfd(0),)),
             (proto.add_ring(False, 0, 0, c.rb, c.log2), (s2c_fd,)), (proto.connect("rogue"), ())]
    for msg, fds in steps:
        c.send(msg, fds)
        for fd in fds:          # the server has its own copies; the memfd and s2c_fd stay ours
            if fd not in (c.fd, s2c_fd):
                os.close(fd)
        got = c.recv()
        out.append(got)
        if got[0] != proto.ACK:
            return


def test_pipe_as_interrupt_fd_is_refused(sock_path):
    pool = Mempool(64, 2048, 128)
    port = open_port(f"memif:socket={sock_path},role=server", pool)
    r, w = os.pipe()
    try:
        c = RogueClient(sock_path)
        port.poll()
        c.recv()                                  # HELLO
        for msg, fds in [(proto.init(0, "rogue"), ()), (proto.add_region(0, c.size), (c.fd,)),
                         (proto.add_ring(True, 0, 0, 0, c.log2), (os.eventfd(0),))]:
            c.send(msg, fds)
            for fd in fds:
                if fd != c.fd:
                    os.close(fd)
            port.poll()
            assert c.recv()[0] == proto.ACK
        c.send(proto.add_ring(False, 0, 0, c.rb, c.log2), (w,))
        expect_disconnect(port, c, "not an eventfd")
        assert port.counters.as_dict()["protocol_errors"] == 1
        c.close()
    finally:
        os.close(r)
        os.close(w)
        port.close()
    assert pool.check() == 0


def test_kick_to_a_full_eventfd_fails_without_blocking(sock_path):
    pool = Mempool(64, 2048, 128)
    port = open_port(f"memif:socket={sock_path},role=server", pool)
    efd = os.eventfd(0)                          # blocking, as a careless peer makes it
    os.eventfd_write(efd, 0xFFFFFFFFFFFFFFFE)    # its maximum: one more write would block
    old = signal.signal(signal.SIGALRM, lambda *_: (_ for _ in ()).throw(TimeoutError("tx_burst blocked")))
    try:
        c = RogueClient(sock_path)
        out = []
        t = threading.Thread(target=handshake, args=(c, efd, out))
        t.start()
        pump(port, 3, until=lambda: not t.is_alive())
        t.join()
        assert port.link_up, out
        s2c = c.rings[1]
        s2c.head = 1 << c.log2                   # every S2C buffer posted
        s2c.flags = 0                            # no MASK_INT: "kick me"
        bufs = pool.alloc_frames([bytes(60)])
        assert port.tx_burst(bufs, 0) == 0       # compile first (cold cache: longer than the alarm)
        signal.alarm(5)
        try:
            assert port.tx_burst(bufs, 1) == 1   # used to block in write(2) forever
        finally:
            signal.alarm(0)
        st = port.counters.as_dict()
        assert st["irq_failed"] == 1 and st["irq_sent"] == 0
        assert port.link_up
        c.close()
    finally:
        signal.signal(signal.SIGALRM, old)
        port.close()
        os.close(efd)
    assert pool.check() == 0

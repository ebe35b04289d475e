"""The kernel path's start point: the kernel's software receive timestamp of a datagram,
read from compiled code after a udp: port received it (engine/kernel_stamps.py), checked
against the real kernel: it lies inside the sender's sendto (on loopback the kernel takes
the datagram in during the sender's syscall), it is the *last* datagram's, and it is on
the clock the end stamp is taken with (CLOCK_REALTIME)."""

import socket
import time

import numpy as np
from numba import njit

from tickwire.drivers.port import open_port, rx_burst
from tickwire.engine.kernel_stamps import enable_rx_stamps, last_rx_stamp_ns, realtime_ns
from tickwire.mem.mempool import Mempool, pool_free


@njit(cache=True)
def _recv_one_and_stamp(st, pool, bufs, fd, ts):
    """Like the engine's kernel loop: one datagram, then its stamp (-2: nothing received)."""
    if rx_burst(st, pool, bufs, 1) == 0:
        return -2
    pool_free(pool, bufs[0])
    return last_rx_stamp_ns(fd, ts)


def _send_timed(tx, addr, payload):
    t0 = time.time_ns()
    tx.sendto(payload, addr)
    return t0, time.time_ns()


def _receive(port, bufs, fd, ts, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = _recv_one_and_stamp(port.state, port.pool.arrays, bufs, fd, ts)
        if r != -2:
            return r
    raise AssertionError("datagram not received")


def test_receive_stamp_is_the_kernels_and_the_last_datagrams():
    pool = Mempool(64, 2048, 128)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        rxport = probe.getsockname()[1]
    port = open_port(f"udp:bind=127.0.0.1:{rxport}", pool)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        fd = port.sock.fileno()
        bufs = np.zeros(4, np.int32)
        ts = np.zeros(2, np.int64)
        assert last_rx_stamp_ns(fd, ts) == -1          # nothing received yet (ENOENT)
        enable_rx_stamps(fd)
        addr = ("127.0.0.1", rxport)
        # the kernel turns stamping on through a deferred static key: wait until a datagram
        # comes back stamped inside its own sendto
        deadline = time.monotonic() + 10
        while True:
            t0, t1 = _send_timed(tx, addr, b"probe")
            k = _receive(port, bufs, fd, ts)
            if t0 <= k <= t1:
                break
            assert time.monotonic() < deadline, "the kernel never stamped a datagram"
            time.sleep(0.01)
        # two datagrams queued, then received one at a time: each stamp is its own datagram's
        w1 = _send_timed(tx, addr, b"one")
        time.sleep(0.002)
        w2 = _send_timed(tx, addr, b"two")
        k1 = _receive(port, bufs, fd, ts)
        k2 = _receive(port, bufs, fd, ts)
        assert w1[0] <= k1 <= w1[1] and w2[0] <= k2 <= w2[1], (w1, k1, w2, k2)
        # the end clock is the same clock
        now = realtime_ns(ts)
        assert k2 < now and abs(now - time.time_ns()) < 5_000_000
    finally:
        tx.close()
        port.close()

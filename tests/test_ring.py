"""The shared-memory SPSC ring, across two processes."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tickwire.mem.ring import ring_bytes, ring_count, ring_dequeue_burst, ring_enqueue_burst, ring_init
from tickwire.mem.shm import SharedRegion


def test_fifo_order_capacity_and_wraparound():
    buf = np.zeros(ring_bytes(8) + 64, np.uint8)
    ring_init(buf, 64, 8)
    out = np.zeros(8, np.uint64)
    nxt = 0
    expect = 0
    for _ in range(50):                       # many laps around an 8-slot ring
        items = np.arange(nxt, nxt + 5, dtype=np.uint64)
        nxt += ring_enqueue_burst(buf, 64, items, 5)
        n = ring_dequeue_burst(buf, 64, out, 3)
        assert out[:n].tolist() == list(range(expect, expect + n))
        expect += n
        assert ring_count(buf, 64) == nxt - expect <= 8
    with pytest.raises(ValueError):
        ring_init(buf, 0, 6)


CONSUMER = textwrap.dedent('''
    import mmap, sys, numpy as np
    from tickwire.mem.ring import ring_dequeue_burst
    fd, total = int(sys.argv[1]), int(sys.argv[2])
    buf = np.frombuffer(mmap.mmap(fd, 0), np.uint8)
    out = np.zeros(64, np.uint64)
    got, s = 0, 0
    while got < total:
        n = ring_dequeue_burst(buf, 0, out, 64)
        for i in range(n):
            if int(out[i]) != got + i:
                print("order", got + i, int(out[i])); sys.exit(1)
        got += n
    print("ok")
''')


def test_cross_process_one_million_items_in_order():
    total = 1_000_000
    with SharedRegion.create(ring_bytes(1024), hugepages="off") as r:
        ring_init(r.buf, 0, 1024)
        child = subprocess.Popen([sys.executable, "-c", CONSUMER, str(r.fd), str(total)],
                                 pass_fds=(r.fd,), stdout=subprocess.PIPE, text=True)
        items = np.arange(total, dtype=np.uint64)
        sent = 0
        while sent < total:
            sent += ring_enqueue_burst(r.buf, 0, items[sent:], min(256, total - sent))
        out, _ = child.communicate(timeout=120)
        assert child.returncode == 0 and out.strip() == "ok"


@pytest.mark.parametrize("field,value", [("cap", 6), ("cap", 0), ("cap", 1 << 40), ("cons", 100), ("prod", 100)])
def test_a_corrupt_header_from_the_peer_touches_no_slot(field, value):
    """The header lives in memory the other process writes: a capacity that is not a power
    of two or runs past the region, or indices further apart than the capacity, are
    refused by both ends (RING_CORRUPT) and nothing outside the slots is read or written."""
    from tickwire.mem.ring import CAP, CONS, PROD, RING_CORRUPT
    buf = np.zeros(ring_bytes(8) + 64, np.uint8)
    ring_init(buf, 0, 8)
    guard = buf[ring_bytes(8):].copy()
    at = {"cap": CAP, "cons": CONS, "prod": PROD}[field]
    buf[at:at + 8] = np.frombuffer(np.uint64(value).tobytes(), np.uint8)
    items = np.arange(64, dtype=np.uint64)
    out = np.zeros(64, np.uint64)
    assert ring_enqueue_burst(buf, 0, items, 64) == RING_CORRUPT
    assert ring_dequeue_burst(buf, 0, out, 64) == RING_CORRUPT
    assert (buf[ring_bytes(8):] == guard).all() and not out.any()


def test_a_burst_never_runs_past_the_callers_array():
    buf = np.zeros(ring_bytes(64), np.uint8)
    ring_init(buf, 0, 64)
    assert ring_enqueue_burst(buf, 0, np.arange(4, dtype=np.uint64), 32) == 4
    out = np.zeros(2, np.uint64)
    assert ring_dequeue_burst(buf, 0, out, 32) == 2 and out.tolist() == [0, 1]

"""Two Ports joined back to back in one process: a link for tests and benchmarks.

It lives in the package, not in tests/, because its state type reaches Numba's
on-disk cache: every cached function that ever ran over it records the type in its
index, and a process that could not import the type could not load that index.

Both ends share one mempool: tx_burst on one end moves the buffer indices into
the other end's receive ring, so two real TcpStacks talk to each other through
the Port contract with no copy. Each direction has an optional Python "netem"
hook that may drop, duplicate or reorder frames (applied in ``poll()``)."""

from __future__ import annotations

from collections import namedtuple

import numpy as np
from numba import njit

from ...drivers.counters import Counters
from ...drivers.port import Port, register_burst
from ...mem.mempool import pool_free

PipeState = namedtuple("PipeState", "rx tx")     # int64 rings: [head, tail, slots...]
CAP = 4096


@njit(cache=True)
def _rx(state, pool, bufs, n):
    r = state.rx
    k = 0
    while k < n and r[0] != r[1]:
        bufs[k] = r[2 + (r[0] & (CAP - 1))]
        r[0] += 1
        k += 1
    return k


@njit(cache=True)
def _tx(state, pool, bufs, n):
    r = state.tx
    k = 0
    while k < n and r[1] - r[0] < CAP:
        r[2 + (r[1] & (CAP - 1))] = bufs[k]
        r[1] += 1
        k += 1
    return k


register_burst(PipeState, _rx, _tx)


class PipePort(Port):
    def __init__(self, pool, rx, tx, mac):
        self.pool, self.mac = pool, mac
        self.state = PipeState(rx, tx)
        self.counters = Counters()
        self.spec = "loopback-pair"

    @property
    def link_up(self):
        return True

    def close(self):
        pass


def pipe_pair(pool):
    a2b = np.zeros(2 + CAP, np.int64)
    b2a = np.zeros(2 + CAP, np.int64)
    return (PipePort(pool, b2a, a2b, 0x020000000001), PipePort(pool, a2b, b2a, 0x020000000002))


def mangle(ring, pool, rng, loss=0.0, dup=0.0, reorder=0.0, start=None):
    """netem in miniature on the frames queued in ``ring`` from index ``start`` (default:
    all not yet received); returns the new tail, so the caller can mangle each frame once."""
    head, tail = int(ring[0]), int(ring[1])
    if start is not None and start > head:
        head = start
    items = [int(ring[2 + (i & (CAP - 1))]) for i in range(head, tail)]
    out = []
    for b in items:
        if rng.random() < loss:
            pool_free(pool.arrays, b)
            continue
        out.append(b)
        if rng.random() < dup:
            c = pool.alloc_burst(1)
            if len(c):
                pool.write(int(c[0]), pool.read(b))
                out.append(int(c[0]))
    if len(out) > 1 and rng.random() < reorder:
        i = int(rng.integers(0, len(out) - 1))
        out[i], out[i + 1] = out[i + 1], out[i]
    for j, b in enumerate(out):
        ring[2 + ((head + j) & (CAP - 1))] = b
    ring[1] = head + len(out)
    return int(ring[1])

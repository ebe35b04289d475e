"""Seeded synthetic order flow from "other participants" (owner FLOW_OWNER), in Numba.

Every step is one action on one instrument, drawn from a xorshift64* generator seeded
by the user, so a run is reproducible from its seed. A fair value per instrument does
a random walk; participants rest limit orders a few ticks around it, cancel old ones,
and now and then cross the spread with an IOC (which prints trades).
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np
from numba import njit

from .matching import BUY, C_BASE_TICKS, C_NLEVELS, C_TICK, SELL, T_DAY, T_IOC, cancel_order, new_order

FLOW_OWNER = 2
RING = 256       # live flow orders remembered per instrument (older ones are canceled)

# f[*] scalars
F_RNG, F_STEPS, F_CLORDID = range(3)
FlowState = namedtuple("FlowState", "f fair live live_pos")


def new_flow(book, seed: int) -> FlowState:
    n = book.cfg.shape[0]
    f = np.zeros(4, np.int64)
    # xorshift state must be non-zero; splitmix the seed once
    z = (seed + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    f[F_RNG] = np.int64(np.uint64(z | 1).astype(np.int64))
    fair = np.zeros(n, np.int64)
    for i in range(n):
        fair[i] = book.cfg[i, C_BASE_TICKS] + book.cfg[i, C_NLEVELS] // 2   # in ticks
    return FlowState(f, fair, np.zeros((n, RING), np.int64), np.zeros(n, np.int64))


@njit(cache=True, inline="always")
def rnd(F, n):
    """Uniform in [0, n) from xorshift64 (state kept as int64; shifts done unsigned)."""
    x = np.uint64(F.f[F_RNG])
    x ^= x >> np.uint64(12)
    x ^= x << np.uint64(25)
    x ^= x >> np.uint64(27)
    F.f[F_RNG] = np.int64(x)
    r = (x * np.uint64(2685821657736338717)) >> np.uint64(33)
    return np.int64(r % np.uint64(n))


@njit(cache=True)
def flow_step(F, book, i):
    """One participant action on instrument ``i``. Returns the matching engine's order id
    (0 when the action was a cancel or was refused)."""
    F.f[F_STEPS] += 1
    tick = book.cfg[i, C_TICK]
    lo = book.cfg[i, C_BASE_TICKS] + 16
    hi = book.cfg[i, C_BASE_TICKS] + book.cfg[i, C_NLEVELS] - 16
    r = rnd(F, 100)
    if r < 6:
        step = 1 if rnd(F, 2) == 0 else -1
        f = F.fair[i] + step
        if lo <= f <= hi:
            F.fair[i] = f
        return 0
    F.f[F_CLORDID] += 1
    cid = F.f[F_CLORDID]
    if r < 36:
        k = rnd(F, RING)
        oid = F.live[i, k]
        if oid > 0:
            F.live[i, k] = 0
            cancel_order(book, oid, FLOW_OWNER, cid)
        return 0
    if r < 46:
        side = BUY if rnd(F, 2) == 0 else SELL
        px = (F.fair[i] + (2 if side == BUY else -2)) * tick
        return new_order(book, i, side, px, 1 + rnd(F, 5), T_IOC, FLOW_OWNER, cid)
    side = BUY if rnd(F, 2) == 0 else SELL
    off = 1 + rnd(F, 8)
    px = (F.fair[i] - off if side == BUY else F.fair[i] + off) * tick
    oid = new_order(book, i, side, px, 1 + rnd(F, 10), T_DAY, FLOW_OWNER, cid)
    if oid > 0:
        k = F.live_pos[i] % RING
        old = F.live[i, k]
        if old > 0:
            cancel_order(book, old, FLOW_OWNER, cid)   # bound the book: the oldest leaves
        F.live[i, k] = oid
        F.live_pos[i] += 1
    return oid

"""A DPDK-style pool of fixed-size packet buffers, usable from Numba and Python.

A packet is named by its buffer *index* (int32). Buffer ``i`` occupies
``data[i*buf_size : (i+1)*buf_size]``; the frame starts ``data_off[i]`` bytes in
(``headroom`` after allocation, so a header can be prepended without copying) and
is ``data_len[i]`` bytes long.

Ownership follows DPDK: ``alloc_burst`` hands buffers to the caller, ``rx_burst``
returns buffers the caller now owns, ``tx_burst`` takes the buffers it sent and
leaves the rest with the caller, and ``free_burst`` gives buffers back.

Accounting invariant (house rule "memory is never lost"): at every moment
``free + in_flight == size``, where ``free`` is the height of the free stack and
``in_flight`` the number of buffers whose state is IN_USE. ``check()`` verifies it
together with the absence of duplicates on the free stack. A double free is
refused and counted (``meta[DOUBLE_FREE]``), never allowed to corrupt the stack.

Small helpers are ``register_jitable`` (compiled into each caller, where LLVM
inlines them), not ``njit(inline="always")``: Numba-level inlining of a function
that takes a namedtuple of arrays emits an atomic incref/decref per array per call,
which measured 356 ns per alloc+free against 10 ns for register_jitable.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np
from numba import njit
from numba.extending import register_jitable
from .hotpath import hot

# meta[] slots
N_BUFS, BUF_SIZE, HEADROOM, FREE_TOP, ALLOC_FAIL, DOUBLE_FREE = range(6)
_META_LEN = 8

FREE, IN_USE = 0, 1

PoolArrays = namedtuple("PoolArrays", "data meta free_stack data_off data_len state")


@register_jitable
def pool_alloc(pool):
    """One buffer index, or -1 when the pool is empty (counted in ALLOC_FAIL)."""
    top = pool.meta[FREE_TOP]
    if top == 0:
        pool.meta[ALLOC_FAIL] += 1
        return -1
    top -= 1
    idx = pool.free_stack[top]
    pool.meta[FREE_TOP] = top
    pool.state[idx] = IN_USE
    pool.data_off[idx] = pool.meta[HEADROOM]
    pool.data_len[idx] = 0
    return idx


@hot
def pool_alloc_burst(pool, out, n):
    """Fill ``out[:n]`` with buffer indices; returns how many were allocated (may be < n)."""
    got = 0
    while got < n:
        idx = pool_alloc(pool)
        if idx < 0:
            break
        out[got] = idx
        got += 1
    return got


@register_jitable
def pool_free(pool, idx):
    """Return one buffer. An index out of range or already free is refused and counted."""
    if idx < 0 or idx >= pool.meta[N_BUFS] or pool.state[idx] != IN_USE:
        pool.meta[DOUBLE_FREE] += 1
        return False
    pool.state[idx] = FREE
    top = pool.meta[FREE_TOP]
    pool.free_stack[top] = idx
    pool.meta[FREE_TOP] = top + 1
    return True


@hot
def pool_free_burst(pool, bufs, n):
    freed = 0
    for i in range(n):
        if pool_free(pool, bufs[i]):
            freed += 1
    return freed


@register_jitable
def buf_start(pool, idx):
    """Byte offset of the frame of buffer ``idx`` inside ``pool.data``."""
    return idx * pool.meta[BUF_SIZE] + pool.data_off[idx]


@register_jitable
def buf_room(pool, idx):
    """Bytes available from the frame start to the end of buffer ``idx``."""
    return pool.meta[BUF_SIZE] - pool.data_off[idx]


NOT_OWNED, BAD_SPAN = -1, -2


@register_jitable
def owned_len(pool, idx):
    """What a driver's tx_burst checks before it touches a buffer its caller handed it:
    the frame length if ``idx`` is an in-use buffer of this pool whose data lies inside
    it; NOT_OWNED if it is not (not the driver's to free: it must leave it alone);
    BAD_SPAN if its offset or length run outside the buffer (a negative length too)."""
    if idx < 0 or idx >= pool.meta[N_BUFS] or pool.state[idx] != IN_USE:
        return np.int64(NOT_OWNED)
    off, ln = np.int64(pool.data_off[idx]), np.int64(pool.data_len[idx])
    if ln < 0 or off < 0 or off + ln > pool.meta[BUF_SIZE]:
        return np.int64(BAD_SPAN)
    return ln


@njit(cache=True)
def _check(pool):
    n = pool.meta[N_BUFS]
    top = pool.meta[FREE_TOP]
    seen = np.zeros(n, np.uint8)
    for i in range(top):
        idx = pool.free_stack[i]
        if idx < 0 or idx >= n or seen[idx] or pool.state[idx] != FREE:
            return -1 - i
        seen[idx] = 1
    in_flight = 0
    for i in range(n):
        if pool.state[i] == IN_USE:
            in_flight += 1
    return in_flight


class Mempool:
    """Python face of a pool. ``.arrays`` is what Numba code receives."""

    def __init__(self, n_bufs: int = 4096, buf_size: int = 2048, headroom: int = 128,
                 data: np.ndarray | None = None):
        if n_bufs <= 0 or buf_size <= headroom or headroom < 0:
            raise ValueError(f"bad pool geometry: n_bufs={n_bufs} buf_size={buf_size} headroom={headroom}")
        if data is None:
            data = np.zeros(n_bufs * buf_size, np.uint8)
        elif data.dtype != np.uint8 or data.size < n_bufs * buf_size:
            raise ValueError(f"pool backing memory too small: {data.size} < {n_bufs * buf_size} bytes")
        meta = np.zeros(_META_LEN, np.int64)
        meta[N_BUFS], meta[BUF_SIZE], meta[HEADROOM], meta[FREE_TOP] = n_bufs, buf_size, headroom, n_bufs
        # Stack order: index 0 is popped first (free_stack[top-1]).
        free_stack = np.arange(n_bufs - 1, -1, -1, dtype=np.int32)
        self.arrays = PoolArrays(data, meta, free_stack,
                                 np.zeros(n_bufs, np.int64), np.zeros(n_bufs, np.int64),
                                 np.zeros(n_bufs, np.uint8))

    # --- sizes -------------------------------------------------------------------
    @property
    def size(self) -> int:
        return int(self.arrays.meta[N_BUFS])

    @property
    def buf_size(self) -> int:
        return int(self.arrays.meta[BUF_SIZE])

    @property
    def headroom(self) -> int:
        return int(self.arrays.meta[HEADROOM])

    @property
    def free_count(self) -> int:
        return int(self.arrays.meta[FREE_TOP])

    @property
    def in_flight(self) -> int:
        return self.size - self.free_count

    def counters(self) -> dict:
        m = self.arrays.meta
        return {"pool_size": self.size, "pool_free": self.free_count, "pool_in_flight": self.in_flight,
                "pool_alloc_fail": int(m[ALLOC_FAIL]), "pool_double_free": int(m[DOUBLE_FREE])}

    def check(self) -> int:
        """Verify the invariant; returns the in-flight count, raises AssertionError if broken."""
        in_flight = _check(self.arrays)
        if in_flight < 0:
            raise AssertionError(f"mempool free stack corrupt at slot {-1 - in_flight}")
        if in_flight + self.free_count != self.size:
            raise AssertionError(f"mempool leak: free {self.free_count} + in flight {in_flight} != size {self.size}")
        return in_flight

    # --- Python conveniences (tools and tests; never the hot path) ---------------
    def alloc_burst(self, n: int) -> np.ndarray:
        out = np.empty(n, np.int32)
        return out[: pool_alloc_burst(self.arrays, out, n)]

    def free_burst(self, bufs) -> int:
        bufs = np.asarray(bufs, np.int32)
        return pool_free_burst(self.arrays, bufs, len(bufs))

    def write(self, idx: int, frame: bytes) -> None:
        """Copy ``frame`` into buffer ``idx`` at its data offset."""
        a = self.arrays
        if len(frame) > self.buf_size - int(a.data_off[idx]):
            raise ValueError(f"frame of {len(frame)} bytes does not fit a {self.buf_size}-byte buffer")
        start = idx * self.buf_size + int(a.data_off[idx])
        a.data[start:start + len(frame)] = np.frombuffer(frame, np.uint8)
        a.data_len[idx] = len(frame)

    def read(self, idx: int) -> bytes:
        a = self.arrays
        start = idx * self.buf_size + int(a.data_off[idx])
        return a.data[start:start + int(a.data_len[idx])].tobytes()

    def frames(self, bufs, n: int | None = None) -> list[bytes]:
        n = len(bufs) if n is None else n
        return [self.read(int(bufs[i])) for i in range(n)]

    def alloc_frames(self, frames) -> np.ndarray:
        """Allocate one buffer per frame and fill it (raises if the pool runs dry)."""
        bufs = self.alloc_burst(len(frames))
        if len(bufs) < len(frames):
            self.free_burst(bufs)
            raise MemoryError(f"pool has {self.free_count} free buffers, {len(frames)} needed")
        for i, f in zip(bufs, frames):
            self.write(int(i), f)
        return bufs

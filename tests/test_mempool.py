import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from numba import njit

from tickwire.mem.mempool import Mempool, pool_alloc_burst, pool_free_burst


def test_alloc_free_roundtrip_keeps_invariant():
    pool = Mempool(n_bufs=64, buf_size=256, headroom=32)
    bufs = pool.alloc_burst(10)
    assert len(bufs) == 10 and len(set(bufs.tolist())) == 10
    assert pool.check() == 10
    pool.write(int(bufs[0]), b"hello")
    assert pool.read(int(bufs[0])) == b"hello"
    assert pool.free_burst(bufs) == 10
    assert pool.check() == 0 and pool.free_count == 64


def test_exhaustion_counts_and_double_free_refused():
    pool = Mempool(n_bufs=8, buf_size=128, headroom=0)
    bufs = pool.alloc_burst(20)
    assert len(bufs) == 8
    assert pool.counters()["pool_alloc_fail"] == 1
    assert pool.free_burst(bufs[:1]) == 1
    assert pool.free_burst(bufs[:1]) == 0          # double free refused
    assert pool.free_burst([99, -1]) == 0          # out of range refused
    assert pool.counters()["pool_double_free"] == 3
    assert pool.check() == 7


def test_write_rejects_oversized_frame():
    pool = Mempool(n_bufs=2, buf_size=128, headroom=64)
    (b,) = pool.alloc_burst(1)
    with pytest.raises(ValueError):
        pool.write(int(b), bytes(65))


@njit
def _churn(pool, ops, scratch, held):
    nheld = 0
    for op in ops:
        if op > 0:
            got = pool_alloc_burst(pool, scratch, op)
            for i in range(got):
                held[nheld] = scratch[i]
                nheld += 1
        elif nheld > 0:
            k = min(-op, nheld)
            pool_free_burst(pool, held[nheld - k:nheld], k)
            nheld -= k
    return nheld


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(-40, 40), max_size=200))
def test_invariant_under_random_alloc_free_from_numba(ops):
    pool = Mempool(n_bufs=128, buf_size=64, headroom=0)
    held = np.empty(128, np.int32)
    nheld = _churn(pool.arrays, np.array(ops, np.int64), np.empty(64, np.int32), held)
    assert pool.check() == nheld

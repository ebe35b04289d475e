"""Descriptor validation in the njit data path, with the kernel's side of the rings
played by the test (a real kernel never hands out a bad descriptor, so this is the
only way to prove a bad one is counted and skipped, never used as an index).

The ring layout is the one the kernel reports (producer, consumer, flags, descs
at their own offsets); the test writes descriptors and producer indices exactly as
net/xdp/xsk_queue.h does, including a producer that wrapped past 2**32.
"""

import numpy as np
from hypothesis import given, settings, strategies as st

from tickwire.drivers.counters import Counters
from tickwire.drivers.xdp.datapath import (C_CHUNK, C_FD, C_NFRAMES, C_RX_WAKEUP_EVERY, C_SHARED, CFG_LEN, EXTRA, RX_INVALID_DESC,
                                          XdpState, xdp_rx_burst, xdp_tx_burst)
from tickwire.drivers.counters import RX_PACKETS, TX_PACKETS, TX_TOO_LONG
from tickwire.drivers.xdp.datapath import TX_BAD_BUF
from tickwire.mem.mempool import Mempool

PROD, CONS, FLAGS, DESC = 0, 64, 128, 192
CHUNK, NFRAMES, RING = 2048, 64, 16


def _ring(entry):
    return np.zeros(DESC + RING * entry, np.uint8)


def _make(start=0):
    pool = Mempool(n_bufs=NFRAMES, buf_size=CHUNK, headroom=0)
    cfg = np.zeros(CFG_LEN, np.int64)
    cfg[C_FD], cfg[C_CHUNK], cfg[C_NFRAMES], cfg[C_SHARED] = -1, CHUNK, NFRAMES, 1
    cfg[C_RX_WAKEUP_EVERY] = 1
    for first in (5, 10, 15, 20):
        cfg[first:first + 5] = (RING - 1, PROD, CONS, FLAGS, DESC)
    rx, tx, fill, comp = _ring(16), _ring(16), _ring(8), _ring(8)
    for r in (rx, tx, fill, comp):          # free-running u32 counters start near the wrap
        r[PROD:PROD + 4] = np.array([start], np.uint32).view(np.uint8)
        r[CONS:CONS + 4] = np.array([start], np.uint32).view(np.uint8)
    c = Counters(EXTRA)
    kown = np.zeros(NFRAMES, np.uint8)
    return XdpState(cfg, c.array, rx, tx, fill, comp, pool.arrays.data, np.zeros(1, np.int64), kown), pool, c


def _u32(ring, off):
    return int(ring[off:off + 4].view(np.uint32)[0])


def _kernel_produce(ring, descs):
    """What the kernel does on RX: write descriptors, then publish the producer."""
    prod = _u32(ring, PROD)
    for i, (addr, ln) in enumerate(descs):
        at = DESC + ((prod + i) & (RING - 1)) * 16
        ring[at:at + 8] = np.array([addr], np.uint64).view(np.uint8)
        ring[at + 8:at + 12] = np.array([ln], np.uint32).view(np.uint8)
    ring[PROD:PROD + 4] = np.array([(prod + len(descs)) & 0xFFFFFFFF], np.uint32).view(np.uint8)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, NFRAMES * CHUNK * 2), st.integers(0, 3 * CHUNK)), min_size=1, max_size=RING),
       st.sampled_from([0, 0xFFFFFFF8]))
def test_bad_rx_descriptors_counted_and_skipped(descs, start):
    state, pool, c = _make(start)
    # the kernel owns the frames it was given: take them from the pool as the FILL refill would
    owned = pool.alloc_burst(NFRAMES)
    state.kown[:] = 1
    _kernel_produce(state.rx, descs)
    bufs = np.full(RING, -1, np.int32)
    n = xdp_rx_burst(state, pool.arrays, bufs, RING)
    valid, held = [], set(range(NFRAMES))
    for a, ln in descs:          # a frame is handed back once; a second descriptor for it is refused
        f = a // CHUNK
        if f in held:
            held.discard(f)
            if 0 < ln and (a % CHUNK) + ln <= CHUNK:
                valid.append((a, ln))
    assert n == len(valid)
    assert c.array[RX_INVALID_DESC] == len(descs) - len(valid)
    assert c.array[RX_PACKETS] == n
    for b, (a, ln) in zip(bufs[:n], valid):
        assert b == a // CHUNK and pool.arrays.data_off[b] == a % CHUNK and pool.arrays.data_len[b] == ln
    assert len(set(bufs[:n].tolist())) == n, "no buffer handed out twice"
    assert _u32(state.rx, CONS) == (start + len(descs)) & 0xFFFFFFFF, "every descriptor consumed"
    del owned


def test_tx_posts_pool_buffers_in_place_and_refuses_oversized_ones():
    state, pool, c = _make(0xFFFFFFFE)
    bufs = pool.alloc_frames([b"a" * 60, b"b" * 100])
    big = pool.alloc_burst(1)
    pool.arrays.data_off[big[0]] = 2000
    pool.arrays.data_len[big[0]] = 100            # runs past its 2048-byte chunk
    allb = np.concatenate([bufs, big]).astype(np.int32)
    assert xdp_tx_burst(state, pool.arrays, allb, 3) == 3
    assert c.array[TX_PACKETS] == 2 and c.array[TX_TOO_LONG] == 1
    assert _u32(state.tx, PROD) == (0xFFFFFFFE + 2) & 0xFFFFFFFF
    for i, b in enumerate(bufs):
        at = DESC + ((0xFFFFFFFE + i) & (RING - 1)) * 16
        addr = int(state.tx[at:at + 8].view(np.uint64)[0])
        assert addr == b * CHUNK + pool.arrays.data_off[b]
        assert int(state.tx[at + 8:at + 12].view(np.uint32)[0]) == pool.arrays.data_len[b]
    # a burst with some other pool is refused: its buffer indices are not UMEM frames
    other = Mempool(n_bufs=NFRAMES, buf_size=CHUNK, headroom=0)
    ob = other.alloc_frames([b"x" * 60])
    assert xdp_tx_burst(state, other.arrays, ob, 1) == 0 and c.array[c.index("wrong_pool")] == 1
    assert xdp_rx_burst(state, other.arrays, np.zeros(4, np.int32), 4) == 0
    # posting a buffer again while the kernel still holds it is refused, not double-posted
    assert xdp_tx_burst(state, pool.arrays, bufs[:1].astype(np.int32), 1) == 1
    assert c.array[TX_PACKETS] == 2 and c.array[TX_BAD_BUF] == 1
    # the kernel completes both: they come back to the pool
    comp = state.comp
    for i, b in enumerate(bufs):
        at = DESC + ((0xFFFFFFFE + i) & (RING - 1)) * 8
        comp[at:at + 8] = np.array([b * CHUNK], np.uint64).view(np.uint8)
    comp[PROD:PROD + 4] = np.array([(0xFFFFFFFE + 2) & 0xFFFFFFFF], np.uint32).view(np.uint8)
    assert xdp_tx_burst(state, pool.arrays, allb, 0) == 0
    assert pool.check() == 0


def test_no_float_in_the_hot_path():
    """numba-hot-path.md §5: a uint64/int64 mix silently becomes float64. After the
    tests above compiled them, no datapath function may contain a float64 value."""
    from tickwire.drivers.xdp import datapath
    state, pool, _ = _make()
    bufs = np.zeros(4, np.int32)
    datapath.xdp_rx_burst(state, pool.arrays, bufs, 0)
    datapath.xdp_tx_burst(state, pool.arrays, bufs, 0)
    datapath.xdp_fill_refill(state, pool.arrays)
    datapath.xdp_reap_completions(state, pool.arrays)
    datapath.xdp_tx_kick(state, pool.arrays)
    import io
    for fn in (datapath.xdp_rx_burst, datapath.xdp_tx_burst, datapath.xdp_fill_refill,
               datapath.xdp_reap_completions, datapath.xdp_tx_kick):
        assert fn.signatures, fn
        for sig in fn.signatures:
            out = io.StringIO()
            fn.inspect_types(file=out, signature=sig)
            assert "float64" not in out.getvalue(), f"{fn.__name__} has a float64 value"

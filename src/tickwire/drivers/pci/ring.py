"""Descriptor-ring steps both NIC drivers share, compiled into their bursts.

Both drivers keep the pool's buffers in DMA memory (base.py) and translate offsets
with the per-2 MiB-page table (dma.py); both refuse a pool that is not the one living
in their DMA memory, check every buffer handed to ``tx_burst`` before a descriptor
names it, and swap a received buffer for a fresh one before re-arming a descriptor
(house rule: nothing the caller or the device hands us is used unchecked).
"""

from __future__ import annotations

import numpy as np
from numba.extending import register_jitable

from ...mem.mempool import pool_alloc, pool_free
from ..counters import RX_BYTES, RX_NOBUF, RX_PACKETS, TX_TOO_LONG, tx_take


@register_jitable
def dma_addr(pages, off):
    """Bus address of byte ``off`` of the DMA region (dma.py explains the per-page table)."""
    return pages[off >> 21] + np.uint64(off & 0x1FFFFF)


@register_jitable
def foreign_pool(pool, q, q_pool_addr, counters, c_mismatch):
    """True, and counted under ``c_mismatch``, when ``pool`` is not the pool whose memory is
    this port's DMA memory: its buffers have no bus address the device could use."""
    # ctypes.data is unsigned (uintp) and q[] int64: mixed, Numba compares them as float64
    # (notes/numba-hot-path.md §4), so convert first.
    if np.int64(pool.data.ctypes.data) != q[q_pool_addr]:
        counters[c_mismatch] += 1
        return True
    return False


@register_jitable
def tx_accept(pool, buf, headroom, max_frame, counters, c_bad_buf):
    """Length of ``buf`` if a descriptor may name it, else -1. A value that is not an
    in-use buffer of this pool is not ours to free: counted under ``c_bad_buf`` and
    skipped. A buffer whose frame is empty, longer than ``max_frame``, runs past its
    buffer, or leaves fewer than ``headroom`` bytes in front (virtio's header goes
    there) is counted as TX_TOO_LONG and freed (it was handed to us)."""
    length = tx_take(pool, counters, buf, c_bad_buf)
    if length < 0:
        return np.int64(-1)
    if length == 0 or length > max_frame or pool.data_off[buf] < headroom:
        counters[TX_TOO_LONG] += 1
        pool_free(pool, buf)
        return np.int64(-1)
    return length


@register_jitable
def rx_hand_over(pool, bufs, got, buf, length, counters):
    """Give the received ``buf`` (``length`` checked by the caller) to the caller as
    ``bufs[got]`` and return the fresh buffer that re-arms its descriptor; -1, counted
    as RX_NOBUF, when the pool is empty (the frame stays in the ring for the next call)."""
    new = pool_alloc(pool)
    if new < 0:
        counters[RX_NOBUF] += 1
        return new
    pool.data_len[buf] = length
    bufs[got] = buf
    counters[RX_PACKETS] += 1
    counters[RX_BYTES] += length
    return new

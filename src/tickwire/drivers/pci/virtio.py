"""virtio-net poll-mode data path over split virtqueues (virtio 1.2, OASIS).

References: §2.7 split virtqueues (descriptor table, available ring, used ring),
§2.7.13 supplying buffers, §2.7.14 receiving used buffers, §2.7.10/§2.7.7
notification suppression (VRING_USED_F_NO_NOTIFY), §5.1.6 virtio_net_hdr.

Zero-copy: the virtio-net header sits in the pool buffer's headroom, right before
the frame (RX: the device writes it there; TX: we zero it there), so a frame never
moves. Descriptor ``i`` always belongs to ring slot ``i``; the device's used-ring
entries name descriptors by id and every id and length is checked before use.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np
from numba import njit

from ...mem.atomics import (fence_seq_cst, load_acquire_u16, load_u32, store_release_u16, store_u16, store_u32,
                            store_u64)
from ...mem.hotpath import hot
from ...mem.mempool import BUF_SIZE, pool_free
from ..counters import RX_TOO_LONG, TX_BYTES, TX_PACKETS, TX_RING_FULL
from ..port import register_burst
from .pio import pwrite_u16
from .ring import dma_addr, foreign_pool, rx_hand_over, tx_accept

VIRTQ_DESC_F_WRITE = 2          # device writes this buffer (RX)
VIRTQ_USED_F_NO_NOTIFY = 1      # device asks us not to kick (§2.7.10)
RX_QUEUE, TX_QUEUE = 0, 1       # receiveq1, transmitq1 (§5.1.2)
MAX_TX_FRAME = 65535

EXTRA_COUNTERS = ("rx_bad_desc", "rx_bad_length", "tx_bad_desc", "tx_bad_buf", "pool_mismatch", "kicks",
                  "bad_used_idx")
(_C_RX_BAD_DESC, _C_RX_BAD_LENGTH, _C_TX_BAD_DESC, _C_TX_BAD_BUF, _C_POOL_MISMATCH, _C_KICKS,
 _C_BAD_USED_IDX) = range(8, 15)

# q[] slots
(Q_N, Q_RX_DESC, Q_RX_AVAIL, Q_RX_USED, Q_TX_DESC, Q_TX_AVAIL, Q_TX_USED, Q_RX_LAST_USED, Q_RX_AVAIL_IDX,
 Q_TX_LAST_USED, Q_TX_AVAIL_IDX, Q_HDR, Q_NOTIFY_PIO, Q_RX_NOTIFY, Q_TX_NOTIFY, Q_NOTIFY_FD, Q_POOL_OFF,
 Q_POOL_ADDR, Q_BROKEN) = range(19)
Q_LEN = 24

VirtioState = namedtuple("VirtioState", "bar dma pages q rx_bufs tx_bufs counters")


@njit(cache=True, inline="always")
def _used_idx_ok(st, used_idx, last, avail):
    """The device's used.idx may run ahead of what we consumed by at most what we made
    available (§2.7.14: it returns only buffers we supplied). Past that, the entries it
    claims are stale ones, whose buffers we would hand out (RX) or free (TX) while the
    device may still DMA into or out of them: the queue is not touched again, the port
    is broken (``Q_BROKEN``; poll() reports it) and it is counted."""
    if ((used_idx - last) & 0xFFFF) <= ((avail - last) & 0xFFFF):
        return True
    st.counters[_C_BAD_USED_IDX] += 1
    st.q[Q_BROKEN] = 1
    return False


@njit(cache=True, inline="always")
def _kick(st, used_off, notify_off, queue):
    """Doorbell unless the device suppressed it. The full fence orders our avail.idx store
    before the used.flags load (§2.7.13.4, 'memory barrier' before checking)."""
    fence_seq_cst()
    if (load_acquire_u16(st.dma, used_off) & VIRTQ_USED_F_NO_NOTIFY) != 0:
        return
    st.counters[_C_KICKS] += 1
    if st.q[Q_NOTIFY_PIO] != 0:
        pwrite_u16(st.q[Q_NOTIFY_FD], notify_off, queue)
    else:
        store_release_u16(st.bar, notify_off, np.uint16(queue))


@njit(cache=True, inline="always")
def _post_rx(st, pool, slot, buf, avail):
    """Descriptor ``slot`` <- buffer ``buf`` (header lands in the headroom), then avail.ring."""
    q, ring = st.q, st.dma
    hdr = q[Q_HDR]
    off = q[Q_POOL_OFF] + buf * pool.meta[BUF_SIZE] + pool.data_off[buf] - hdr
    d = q[Q_RX_DESC] + slot * 16
    store_u64(ring, d, dma_addr(st.pages, off))
    store_u32(ring, d + 8, np.uint32(hdr + pool.meta[BUF_SIZE] - pool.data_off[buf]))
    store_u16(ring, d + 12, np.uint16(VIRTQ_DESC_F_WRITE))
    store_u16(ring, q[Q_RX_AVAIL] + 4 + (avail & (q[Q_N] - 1)) * 2, np.uint16(slot))


@hot    # runtime-free (mem/hotpath.py): no refcounting in the per-burst path
def virtio_rx_burst(st, pool, bufs, n):
    q, c, ring = st.q, st.counters, st.dma
    if foreign_pool(pool, q, Q_POOL_ADDR, c, _C_POOL_MISMATCH) or q[Q_BROKEN] != 0:
        return 0
    nq = q[Q_N]
    hdr = q[Q_HDR]
    used_idx = np.int64(load_acquire_u16(ring, q[Q_RX_USED] + 2))
    last = q[Q_RX_LAST_USED]
    avail = q[Q_RX_AVAIL_IDX]
    if not _used_idx_ok(st, used_idx, last, avail):
        return 0
    got = 0
    n = min(n, bufs.shape[0])     # never write past the caller's array
    while got < n and last != used_idx:
        e = q[Q_RX_USED] + 4 + (last & (nq - 1)) * 8
        slot = np.int64(load_u32(ring, e))
        length = np.int64(load_u32(ring, e + 4))
        if slot >= nq or st.rx_bufs[slot] < 0:
            c[_C_RX_BAD_DESC] += 1               # an id we never posted: skip the entry
            last = (last + 1) & 0xFFFF
            continue
        buf = st.rx_bufs[slot]
        room = pool.meta[BUF_SIZE] - pool.data_off[buf]
        if length < hdr + 14:
            c[_C_RX_BAD_LENGTH] += 1             # re-post the same buffer
        elif length - hdr > room:
            c[RX_TOO_LONG] += 1
        else:
            new = rx_hand_over(pool, bufs, got, buf, length - hdr, c)
            if new < 0:
                break                            # pool empty: the entry stays in the used ring
            got += 1
            st.rx_bufs[slot] = new
            buf = new
        _post_rx(st, pool, slot, buf, avail)
        avail = (avail + 1) & 0xFFFF
        last = (last + 1) & 0xFFFF
    if last != q[Q_RX_LAST_USED]:
        q[Q_RX_LAST_USED] = last
        q[Q_RX_AVAIL_IDX] = avail
        store_release_u16(ring, q[Q_RX_AVAIL] + 2, np.uint16(avail))
        _kick(st, q[Q_RX_USED], q[Q_RX_NOTIFY], RX_QUEUE)
    return got


@njit(cache=True, inline="always")
def _tx_reclaim(st, pool):
    q, ring = st.q, st.dma
    nq = q[Q_N]
    used_idx = np.int64(load_acquire_u16(ring, q[Q_TX_USED] + 2))
    last = q[Q_TX_LAST_USED]
    if not _used_idx_ok(st, used_idx, last, q[Q_TX_AVAIL_IDX]):
        return
    while last != used_idx:
        slot = np.int64(load_u32(ring, q[Q_TX_USED] + 4 + (last & (nq - 1)) * 8))
        if slot < nq and st.tx_bufs[slot] >= 0:
            pool_free(pool, st.tx_bufs[slot])
            st.tx_bufs[slot] = -1
        else:
            st.counters[_C_TX_BAD_DESC] += 1
        last = (last + 1) & 0xFFFF
    q[Q_TX_LAST_USED] = last


@hot    # runtime-free (mem/hotpath.py): no refcounting in the per-burst path
def virtio_tx_burst(st, pool, bufs, n):
    q, c, ring = st.q, st.counters, st.dma
    if foreign_pool(pool, q, Q_POOL_ADDR, c, _C_POOL_MISMATCH) or q[Q_BROKEN] != 0:
        return 0
    _tx_reclaim(st, pool)
    if q[Q_BROKEN] != 0:
        return 0
    nq = q[Q_N]
    hdr = q[Q_HDR]
    avail = q[Q_TX_AVAIL_IDX]
    bsize = pool.meta[BUF_SIZE]
    sent = 0
    n = min(n, bufs.shape[0])     # never read past the caller's array
    while sent < n:
        slot = avail & (nq - 1)
        if st.tx_bufs[slot] >= 0:
            c[TX_RING_FULL] += 1
            break
        buf = bufs[sent]
        sent += 1
        length = tx_accept(pool, buf, hdr, MAX_TX_FRAME, c, _C_TX_BAD_BUF)   # hdr: room for the header
        if length < 0:
            continue                             # consumed and counted
        at = buf * bsize + pool.data_off[buf] - hdr   # the header goes into the headroom: all zero
        for k in range(0, hdr, 2):               # = no offloads, no GSO (§5.1.6)
            store_u16(pool.data, at + k, np.uint16(0))
        d = q[Q_TX_DESC] + slot * 16
        store_u64(ring, d, dma_addr(st.pages, q[Q_POOL_OFF] + at))
        store_u32(ring, d + 8, np.uint32(hdr + length))
        store_u16(ring, d + 12, np.uint16(0))
        store_u16(ring, q[Q_TX_AVAIL] + 4 + slot * 2, np.uint16(slot))
        st.tx_bufs[slot] = buf
        c[TX_PACKETS] += 1
        c[TX_BYTES] += length
        avail = (avail + 1) & 0xFFFF
    if avail != q[Q_TX_AVAIL_IDX]:
        q[Q_TX_AVAIL_IDX] = avail
        store_release_u16(ring, q[Q_TX_AVAIL] + 2, np.uint16(avail))
        _kick(st, q[Q_TX_USED], q[Q_TX_NOTIFY], TX_QUEUE)
    return sent


@njit(cache=True)
def virtio_fill_rx(st, pool, bufs):
    """Post ``bufs`` on RX descriptors 0..len-1 and publish them (set-up only)."""
    n = len(bufs)
    for slot in range(n):
        st.rx_bufs[slot] = bufs[slot]
        _post_rx(st, pool, slot, np.int64(bufs[slot]), slot)
    st.q[Q_RX_AVAIL_IDX] = n & 0xFFFF
    store_release_u16(st.dma, st.q[Q_RX_AVAIL] + 2, np.uint16(n & 0xFFFF))


register_burst(VirtioState, virtio_rx_burst, virtio_tx_burst)



def fake_state() -> VirtioState:
    """A state over plain memory whose pool address matches nothing (warm.py)."""
    from ..counters import Counters
    return VirtioState(np.zeros(0x4000, np.uint8), np.zeros(4096, np.uint8), np.zeros(1, np.uint64),
                       np.zeros(Q_LEN, np.int64), np.zeros(1, np.int32), np.zeros(1, np.int32),
                       Counters(EXTRA_COUNTERS).array)

"""memif copy-mode data path, both roles, compiled by Numba.

Ring ownership (shared/notes/memif.md §4; DPDK rte_eth_memif.c eth_memif_rx/tx):

    ring  producer index         consumer index
    C2S   head (client writes)   tail (server writes)
    S2C   tail (server writes)   head (client re-posts empty buffers)

head and tail are free-running u16 counters; every difference is masked to 16 bits.

Trust: everything in shared memory can be scribbled on by the peer at any time.
So each descriptor is read *once* into locals, its (region, offset, length) is
checked against the region table before any byte is copied, an index that claims
more entries than the ring holds is a protocol violation, and as a client we never
take buffer offsets from the ring at all (we know where our buffers are). A
violation sets ``cfg[ERROR]`` and stops the data path; the control plane then
disconnects the peer with the reason (``port.poll()``) and the process lives on.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np
from numba.extending import overload, register_jitable

from ...mem.atomics import (load_acquire_u16, load_u16, load_u32, load_u64, memcpy, prefetch, prefetch_write,
                            store_release_u16, store_u16, store_u32, store_u64)
from ...mem.hotpath import hot, into_runtime_free_callers
from ...mem.mempool import buf_room, buf_start, pool_alloc, pool_free
from ..libc_calls import sys_write
from ..counters import (COMMON, RX_BYTES, RX_NOBUF, RX_PACKETS, RX_TOO_LONG, TX_BYTES, TX_PACKETS,
                        TX_RING_FULL, TX_TOO_LONG, tx_take)
from ..port import register_burst
from .proto import (DESC_FLAG_NEXT, DESC_SIZE, RING_DESC, RING_FLAG_MASK_INT, RING_FLAGS, RING_HEAD,
                    RING_TAIL)

MemifState = namedtuple("MemifState", "mem regions rxq txq cfg ctr sel kick")

# cfg[] slots
ROLE, LINK, ERROR, BSIZE, N_REGIONS = range(5)
CFG_LEN = 8
CLIENT, SERVER = 0, 1

# per-queue row fields (rxq / txq are int64 [queues, Q_FIELDS])
# Q_PEER: TX rings: the peer's consumer index as last read (client: C2S tail, server: S2C head),
#         so a burst that fits the free slots already known reads no line the peer writes;
#         client RX rings: ``cur`` at the last re-post (head = Q_PEER + size).
Q_RING, Q_SIZE, Q_LAST, Q_BUF0, Q_EFD, Q_PEER = range(6)
Q_FIELDS = 6

# A client re-posts consumed S2C buffers in batches of up to REPOST_BATCH slots, on an empty
# poll (off the path of a frame that just arrived), or at once when half the ring is waiting.
# Re-posting every frame wrote the descriptor line the server writes next and the head line
# on every round trip: two more line transfers on the server's TX path (DPDK's copy client
# re-posts every burst; its zero-copy client in batches of 32, rte_eth_memif.c).
REPOST_BATCH = 32

# cfg[ERROR] codes -> reasons (sent to the peer in DISCONNECT)
ERR_BAD_DESC, ERR_BAD_INDEX, ERR_ZERO_CAPACITY, ERR_ENDLESS_CHAIN = 1, 2, 3, 4
ERROR_REASONS = {
    ERR_BAD_DESC: "descriptor outside its region",
    ERR_BAD_INDEX: "ring index beyond ring size",
    ERR_ZERO_CAPACITY: "posted buffer with zero capacity",
    ERR_ENDLESS_CHAIN: "descriptor chain longer than the ring or MAX_CHAIN",
}

EXTRA_COUNTERS = ("bad_desc", "bad_ring_index", "rx_chained", "tx_chained", "irq_sent",
                  "connects", "disconnects", "protocol_errors",
                  "tx_bad_buf",   # tx_burst given an index that is not an in-use pool buffer: skipped
                  "irq_failed",   # a kick the peer's eventfd refused (full: the peer never reads it)
                  "handshake_timeouts")  # a peer that did not finish the handshake in time
_C = {name: i for i, name in enumerate(COMMON + EXTRA_COUNTERS)}
C_BAD_DESC, C_BAD_INDEX, C_RX_CHAINED, C_TX_CHAINED, C_IRQ, C_TX_BAD_BUF, C_IRQ_FAILED = (
    _C["bad_desc"], _C["bad_ring_index"], _C["rx_chained"], _C["tx_chained"], _C["irq_sent"], _C["tx_bad_buf"],
    _C["irq_failed"])

MAX_CHAIN = 64  # slots one frame may span: bounds work per packet whatever the peer claims


@register_jitable
def _fail(state, code, counter):
    state.cfg[ERROR] = code
    state.ctr[counter] += 1


@register_jitable
def _checked_addr(regions, n_regions, region, offset, length):
    """Flat address of (region, offset) if [offset, offset+length) lies in the region, else -1."""
    if region >= n_regions:
        return -1
    if offset + length > regions[region, 1]:
        return -1
    return regions[region, 0] + offset


@register_jitable
def _checked_peer_buffer(mem, regions, n_regions, d):
    """The server side's check of a buffer the client posted in descriptor ``d`` (region
    u16 @2, capacity u32 @4, offset u32 @8; memif.h memif_desc_t): (flat address, region,
    capacity). The address is -1 if the buffer is not inside a mapped region, -2 if its
    capacity is zero (a peer that posts empty buffers would stall the ring)."""
    region = np.int64(load_u16(mem, d + 2))
    cap = np.int64(load_u32(mem, d + 4))
    dst = _checked_addr(regions, n_regions, region, np.int64(load_u32(mem, d + 8)), cap)
    if dst >= 0 and cap == 0:
        dst = -2
    return dst, region, cap


@register_jitable
def _copy(dst, dst_off, src, src_off, n):
    """memcpy for frame-sized copies: 8..256 bytes as constant-size moves that compile inline
    (overlapping at the tail, as glibc does, so no byte outside [off, off+n) is touched), the
    rest through ``memcpy``. A libc call per 64-byte frame cost ~20 instructions plus the
    spills around the call, and its variable size kept the copy out of the loop's schedule."""
    if n >= 32 and n <= 256:
        k = 0
        while k + 32 < n:
            memcpy(dst, dst_off + k, src, src_off + k, 32)
            k += 32
        memcpy(dst, dst_off + n - 32, src, src_off + n - 32, 32)
    elif n >= 16 and n < 32:
        memcpy(dst, dst_off, src, src_off, 16)
        memcpy(dst, dst_off + n - 16, src, src_off + n - 16, 16)
    elif n >= 8 and n < 16:
        memcpy(dst, dst_off, src, src_off, 8)
        memcpy(dst, dst_off + n - 8, src, src_off + n - 8, 8)
    else:
        memcpy(dst, dst_off, src, src_off, n)


@register_jitable
def _ring_of(state, rows, which):
    """The per-burst preamble shared by RX and TX: the queue row picked by ``sel[which]``,
    ring offset, size, slot mask, role, the region table and our buffer geometry, read
    once per burst into locals."""
    cfg = state.cfg
    q = rows[state.sel[which]]
    size = q[Q_SIZE]
    return (state.mem, q, q[Q_RING], size, size - 1, cfg[ROLE] == SERVER, state.regions,
            cfg[N_REGIONS], cfg[BSIZE], q[Q_BUF0])


@register_jitable
def _desc(ring, mask, counter):
    return ring + RING_DESC + (counter & mask) * DESC_SIZE


@register_jitable
def _prefetch_peer_buf(mem, regions, n_regions, d, write):
    """Start the miss on the frame descriptor ``d`` points at (the server learns buffer
    addresses only from descriptors). Only a hint: nothing here is trusted, the copy loop
    reads and checks the descriptor again."""
    region = np.int64(load_u16(mem, d + 2))
    if region < n_regions:
        a = regions[region, 0] + np.int64(load_u32(mem, d + 8))
        if write:
            prefetch_write(mem, a)
        else:
            prefetch(mem, a)


@register_jitable
def _prefetch_peer_bufs(mem, regions, n_regions, ring, mask, first, count, write):
    """The frames of a whole burst, all at once."""
    for k in range(count):
        _prefetch_peer_buf(mem, regions, n_regions, _desc(ring, mask, first + k), write)


@register_jitable
def _kick(state, efd):
    """Wake a peer sleeping on the ring's eventfd (it cleared MASK_INT)."""
    state.kick[0] = 1
    # the server set O_NONBLOCK on the peer's eventfd at ADD_RING; the client's own are
    # EFD_NONBLOCK: a full counter fails with EAGAIN instead of blocking this thread
    if sys_write(efd, state.kick, 0, 8) == 8:
        state.ctr[C_IRQ] += 1
    else:
        state.ctr[C_IRQ_FAILED] += 1


def _rx(state, pool, bufs, n):
    cfg = state.cfg
    if cfg[LINK] == 0 or cfg[ERROR] != 0:
        return 0
    mem, q, ring, size, mask, server, regions, n_regions, bsize, buf0 = _ring_of(state, state.rxq, 0)
    n = min(n, bufs.shape[0])     # never write past the caller's array
    cur = q[Q_LAST]
    # Start fetching the next descriptor and the frame behind it together with the producer
    # index, instead of after it: three dependent line transfers become about one when a
    # frame arrives. A client knows where its buffers are; a server predicts the frame from
    # what the slot's descriptor said a lap ago (a copy-mode peer reuses one buffer per
    # slot). Prefetches never fault, and nothing read here is trusted.
    d = _desc(ring, mask, cur)
    prefetch(mem, d)
    if server:
        _prefetch_peer_buf(mem, regions, n_regions, d, False)
        prod = np.int64(load_acquire_u16(mem, ring + RING_HEAD))
    else:
        prefetch(mem, buf0 + (cur & mask) * bsize)
        prod = np.int64(load_acquire_u16(mem, ring + RING_TAIL))
    avail = (prod - cur) & 0xFFFF
    if avail > size:
        _fail(state, ERR_BAD_INDEX, C_BAD_INDEX)
        return 0
    if avail == 0:
        if not server and ((cur - q[Q_PEER]) & 0xFFFF) >= min(REPOST_BATCH, size >> 1):
            _client_repost(mem, q, ring, size, cur, bsize)
        return 0
    # Memory-level parallelism: across cores every descriptor line and frame line is a miss
    # (~100-200 ns across CCDs). Copying frame after frame serialises them; asking for all
    # of the burst's lines first overlaps them (DPDK-class drivers do the same).
    want = min(avail, n)
    if server:
        # the first frame was prefetched with the index; the copy loop reads its descriptor
        # next anyway, so a single frame costs no second pass
        if want > 1:
            _prefetch_peer_bufs(mem, regions, n_regions, ring, mask, cur + 1, want - 1, False)
    else:
        for k in range(1, want):
            c = cur + k
            if (c & 3) == 0:  # four 16-byte descriptors per line; the ring starts line-aligned
                prefetch(mem, _desc(ring, mask, c))
            prefetch(mem, buf0 + (c & mask) * bsize)
    got = 0
    nbytes = 0
    while got < n and avail > 0:
        idx = pool_alloc(pool)
        if idx < 0:
            state.ctr[RX_NOBUF] += 1
            break
        dst = buf_start(pool, idx)
        room = buf_room(pool, idx)
        total = 0
        used = 0
        complete = False
        too_long = False
        while used < avail and used < MAX_CHAIN:
            d = _desc(ring, mask, cur + used)
            word = np.int64(load_u64(mem, d))  # flags u16 | region u16 | length u32, one read
            flags = word & 0xFFFF
            region = (word >> 16) & 0xFFFF
            length = (word >> 32) & 0xFFFFFFFF
            offset = np.int64(load_u32(mem, d + 8))
            src = _checked_addr(regions, n_regions, region, offset, length)
            if src < 0:
                pool_free(pool, idx)
                _fail(state, ERR_BAD_DESC, C_BAD_DESC)
                q[Q_LAST] = cur
                return got
            if total + length <= room:
                _copy(pool.data, dst + total, mem, src, length)
            else:
                too_long = True
            total += length
            used += 1
            if (flags & DESC_FLAG_NEXT) == 0:
                complete = True
                break
        if not complete:
            pool_free(pool, idx)
            if used >= MAX_CHAIN or used >= size:
                # a chain that fills the whole ring can never be completed: the producer has
                # no slot left for its end (and would stall RX forever without a word)
                _fail(state, ERR_ENDLESS_CHAIN, C_BAD_DESC)
                q[Q_LAST] = cur
                return got
            break  # the rest of the chain is not published yet: take it next time
        if used > 1:
            if server:
                # stale-NEXT mitigation (DPDK 22.11 TX never clears flags on a packet's first
                # descriptor, notes §4): clear the NEXT flags of a consumed chain. Only once
                # the chain is complete: cleared earlier, a chain published in two steps
                # would be read again as separate frames. Only on chains, because a store
                # takes the descriptor line away from the client that writes it next.
                for k in range(used - 1):
                    store_u16(mem, _desc(ring, mask, cur + k), np.uint16(0))
            if not too_long:
                state.ctr[C_RX_CHAINED] += 1
        cur = (cur + used) & 0xFFFF
        avail -= used
        if too_long:
            pool_free(pool, idx)
            state.ctr[RX_TOO_LONG] += 1
            continue
        pool.data_len[idx] = total
        bufs[got] = idx
        got += 1
        nbytes += total
    if cur != q[Q_LAST]:
        # Publish only when something was consumed: a store to the index line on every
        # empty poll would pull that cache line away from the peer, which reads it.
        q[Q_LAST] = cur
        if server:
            store_release_u16(mem, ring + RING_TAIL, np.uint16(cur))
        elif ((cur - q[Q_PEER]) & 0xFFFF) >= max(size >> 1, 1):
            _client_repost(mem, q, ring, size, cur, bsize)
    state.ctr[RX_PACKETS] += got
    state.ctr[RX_BYTES] += nbytes
    return got


@register_jitable
def _client_repost(mem, q, ring, size, cur, bsize):
    """Give consumed S2C slots back to the server: full-size empty buffers at our own offsets.
    Head is our own counter (kept in Q_PEER, never read back from the ring the peer can
    scribble on): it goes from Q_PEER + size to cur + size."""
    head = (q[Q_PEER] + size) & 0xFFFF
    target = (cur + size) & 0xFFFF
    mask = size - 1
    while head != target:
        slot = head & mask
        d = ring + RING_DESC + slot * DESC_SIZE
        store_u64(mem, d, np.uint64(bsize << 32))  # flags 0, region 0, length = capacity
        store_u32(mem, d + 8, np.uint32(q[Q_BUF0] + slot * bsize))
        head = (head + 1) & 0xFFFF
    q[Q_PEER] = cur
    store_release_u16(mem, ring + RING_HEAD, np.uint16(target))


def _tx(state, pool, bufs, n):
    cfg = state.cfg
    if cfg[LINK] == 0 or cfg[ERROR] != 0:
        return 0
    mem, q, ring, size, mask, server, regions, n_regions, bsize, buf0 = _ring_of(state, state.txq, 1)
    n = min(n, bufs.shape[0])     # never read past the caller's array
    slot = q[Q_LAST]
    # Free slots from the consumer index last read (a lower bound: it only moves forward);
    # the line the peer writes is read again only when that is not enough for this burst
    # (the cached-index scheme of AF_XDP's libxdp, xsk_prod_nb_free). Every value read is
    # checked before it is kept.
    if server:
        free = (q[Q_PEER] - slot) & 0xFFFF
    else:
        free = size - ((slot - q[Q_PEER]) & 0xFFFF)
    if free < n or free > size:
        if server:
            peer = np.int64(load_acquire_u16(mem, ring + RING_HEAD))
            free = (peer - slot) & 0xFFFF
        else:
            peer = np.int64(load_acquire_u16(mem, ring + RING_TAIL))
            free = size - ((slot - peer) & 0xFFFF)
        if free > size or free < 0:
            _fail(state, ERR_BAD_INDEX, C_BAD_INDEX)
            return 0
        q[Q_PEER] = peer
    # Ask for ownership of the burst's descriptor and frame lines up front (the peer read
    # them last): the stores below then hit lines already on their way, not one miss each.
    want = min(free, n)
    if server:
        if want > 1:  # the copy loop reaches the first frame at once: no pass for one frame
            _prefetch_peer_bufs(mem, regions, n_regions, ring, mask, slot, want, True)
    else:
        for k in range(want):
            c = slot + k
            if k == 0 or (c & 3) == 0:
                prefetch_write(mem, _desc(ring, mask, c))
            prefetch_write(mem, buf0 + (c & mask) * bsize)
    sent = 0
    placed = 0                    # frames put in the ring (sent also counts the refused)
    nbytes = 0
    while sent < n:
        idx = bufs[sent]
        flen = tx_take(pool, state.ctr, idx, C_TX_BAD_BUF)
        if flen < 0:
            sent += 1
            continue
        src = buf_start(pool, idx)
        pos = 0
        used = 0
        while True:
            if used >= free or used >= MAX_CHAIN:
                break
            s = (slot + used) & mask
            d = ring + RING_DESC + s * DESC_SIZE
            if server:
                dst, region, cap = _checked_peer_buffer(mem, regions, n_regions, d)
                if dst < 0:
                    _fail(state, ERR_BAD_DESC if dst == -1 else ERR_ZERO_CAPACITY, C_BAD_DESC)
                    break
            else:
                region = 0
                cap = bsize
                dst = buf0 + s * bsize  # region 0 starts at flat address 0
                store_u32(mem, d + 8, np.uint32(dst))
            chunk = min(cap, flen - pos)
            _copy(mem, dst, pool.data, src + pos, chunk)
            pos += chunk
            used += 1
            flags = 0 if pos >= flen else DESC_FLAG_NEXT
            # flags, region, length in one store (the server writes back the region it read)
            store_u64(mem, d, np.uint64(flags | (region << 16) | (chunk << 32)))
            if pos >= flen:
                break
        if pos < flen or (flen == 0 and used == 0):
            if used >= MAX_CHAIN:  # can never fit: drop it, the caller gets the buffer freed
                pool_free(pool, idx)
                state.ctr[TX_TOO_LONG] += 1
                sent += 1
                continue
            if cfg[ERROR] == 0:
                state.ctr[TX_RING_FULL] += 1
            break  # out of slots (or peer error): the frame stays with the caller
        if used > 1:
            state.ctr[C_TX_CHAINED] += 1
        slot = (slot + used) & 0xFFFF
        free -= used
        nbytes += flen
        pool_free(pool, idx)
        sent += 1
        placed += 1
    if placed > 0:
        q[Q_LAST] = slot
        if server:
            store_release_u16(mem, ring + RING_TAIL, np.uint16(slot))
        else:
            store_release_u16(mem, ring + RING_HEAD, np.uint16(slot))
        if (np.int64(load_u16(mem, ring + RING_FLAGS)) & RING_FLAG_MASK_INT) == 0 and q[Q_EFD] >= 0:
            _kick(state, q[Q_EFD])
        state.ctr[TX_PACKETS] += placed
        state.ctr[TX_BYTES] += nbytes
    return sent


def _entry(impl):
    """A burst function callable from Python (a cached, runtime-free compile of ``impl``)
    and from Numba: ``impl`` itself, inlined into runtime-free (``@hot``) callers, called
    from the others (mem.hotpath.into_runtime_free_callers). Why: a call passes the state's
    and the pool's 14 arrays field by field (~108 words): an empty poll took 68 ns called
    and 3 ns inlined. Cost: a caller compiles the data path into itself (cold, several
    seconds longer), so a process must compile its loops *before* its link comes up, or a
    peer's traffic can come and go while it compiles (bench/_memif_worker.py)."""
    compiled = hot(impl)

    def entry(state, pool, bufs, n):
        return compiled(state, pool, bufs, n)

    entry.__name__ = entry.__qualname__ = impl.__name__.replace("_", "memif_", 1)
    entry.compiled = compiled
    overload(entry, inline=into_runtime_free_callers, jit_options={"_nrt": False})(
        lambda state, pool, bufs, n: impl)
    return entry


memif_rx = _entry(_rx)
memif_tx = _entry(_tx)
register_burst(MemifState, memif_rx, memif_tx)


def empty_state(cfg: np.ndarray, ctr: np.ndarray) -> MemifState:
    """A link-down state: the data path returns 0 without touching memory."""
    z = np.zeros((1, Q_FIELDS), np.int64)
    return MemifState(np.zeros(64, np.uint8), np.zeros((1, 2), np.int64), z, z.copy(), cfg, ctr,
                      np.zeros(2, np.int64), np.zeros(1, np.uint64))

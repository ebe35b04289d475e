"""rx_burst / tx_burst for AF_XDP, compiled by Numba, over the mmap'ed rings.

Ring protocol (include/uapi/linux/if_xdp.h; notes/af_xdp.md §5): producer and
consumer are free-running u32 counters; entries = (prod - cons) & 0xFFFFFFFF;
slot = idx & (size - 1). We read the kernel's index with an acquire load
before touching the descriptors it covers, and publish ours with a release store
after writing them (tickwire.mem.atomics).

Two UMEM arrangements (``cfg[C_SHARED]``):

* shared (the pool IS the UMEM): pool buffer i == UMEM frame i. RX hands the
  very frame the kernel wrote to the caller (``data_off`` = where the kernel put
  the packet inside the frame) and refills the FILL ring with fresh pool buffers.
  TX posts the caller's buffer itself; it is freed back to the pool when the
  kernel returns it on the COMPLETION ring. No copies at all in user space.
* copy (the caller's pool cannot be registered, e.g. not page-aligned): the
  port owns a private UMEM; frames [0, fill) circulate FILL -> RX -> FILL and
  frames [fill, fill + tx) circulate TX -> COMPLETION -> free stack. One memcpy
  per packet each way.

Every descriptor the kernel gives us is validated (frame index, offset + length
inside its chunk) before use; a bad one is counted (``rx_invalid_desc``) and skipped.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from ...mem.atomics import (load_acquire_u32, load_relaxed_u32, load_u32, load_u64, memcpy,
                            store_release_u32, store_u32, store_u64)
from ...mem.hotpath import hot
from ...mem.mempool import BUF_SIZE, IN_USE, N_BUFS, pool_alloc, pool_free
from ..counters import (COMMON, RX_BYTES, RX_NOBUF, RX_PACKETS, RX_TOO_LONG, TX_BYTES,
                        TX_PACKETS, TX_RING_FULL, TX_TOO_LONG)
from ..libc_calls import EAGAIN, EBUSY, ENETDOWN, ENOBUFS, sys_errno, xsk_kick_rx, xsk_kick_tx
from .xsk import STAT_NAMES, XDP_RING_NEED_WAKEUP

XdpState = namedtuple("XdpState", "cfg counters rx tx fill comp umem ufree kown")
# kown[frame] == 1 while the kernel owns the UMEM frame (posted on FILL or TX, not yet
# back on RX or COMPLETION). A descriptor naming a frame the kernel does not own is
# refused: it can never make one buffer live twice (in the caller's hands and in a ring).

# cfg[] slots (int64)
(C_FD, C_CHUNK, C_NFRAMES, C_SHARED, C_UFREE_TOP,
 C_RX_MASK, C_RX_PROD, C_RX_CONS, C_RX_FLAGS, C_RX_DESC,
 C_TX_MASK, C_TX_PROD, C_TX_CONS, C_TX_FLAGS, C_TX_DESC,
 C_FILL_MASK, C_FILL_PROD, C_FILL_CONS, C_FILL_FLAGS, C_FILL_DESC,
 C_COMP_MASK, C_COMP_PROD, C_COMP_CONS, C_COMP_FLAGS, C_COMP_DESC,
 C_FILL_SHORT, C_RX_WAKEUP_EVERY, C_IDLE, C_FILL_OUT, C_TX_OUT) = range(30)
CFG_LEN = 30
# The RX -> TX critical path (an echo, a tick-to-trade reply) touches only the RX ring,
# the frame and the TX ring. The two housekeeping jobs that touch lines the kernel writes
# or reads on another core -- topping up the FILL ring and draining the COMPLETION ring --
# are kept off it: rx_burst replaces the frames the *previous* burst took at the start of
# the next call (after the caller has handled and answered them), and completions are
# drained after the TX kick, when the frame is already on its way, and on empty polls.
# Each costs a few cross-core cache misses; on the path they added ~0.2-0.5 us to a ~5 us
# veth echo. Under a backlog every call still refills what the last one took, so the
# kernel keeps a full FILL ring against a receiver stall.
# C_TX_OUT: frames posted on TX and not yet back on COMPLETION: an empty poll reads the
#   kernel's COMPLETION producer only when something is outstanding.
# C_FILL_OUT: frames posted on FILL and not yet returned on RX (shared UMEM). Frames are
#   conserved -- every one posted comes back on RX or stays with the kernel, even when it
#   drops a packet (the frame goes to its internal free list and is used again) -- so
#   keeping C_FILL_OUT <= ring size guarantees the FILL ring never overflows, and the
#   refill never reads the FILL consumer, a line the kernel writes for every packet on
#   another core (libxdp's xdpsock sample keeps the same invariant).
# C_FILL_SHORT: the last refill could not top the ring up (pool empty): retry on every
#   burst; otherwise refill only when frames were taken (C_FILL_OUT below the ring size),
#   so an idle poll loop stays off the FILL line.
# C_RX_WAKEUP_EVERY: read the FILL ring's need_wakeup flag on every Nth empty poll. 1 in
#   zero-copy mode (the driver sets it when it stops and needs recvfrom to restart);
#   larger in copy mode, where the normal netdev receive path never needs a wakeup and
#   the read only touches the kernel's line (it shares a cache line with the consumer).

EXTRA = ("rx_invalid_desc", "comp_invalid_desc", "fill_nobuf", "tx_bad_buf", "tx_no_umem_frame",
         "rx_kicks", "tx_kicks", "kick_errors", "wrong_pool") + STAT_NAMES
(RX_INVALID_DESC, COMP_INVALID_DESC, FILL_NOBUF, TX_BAD_BUF, TX_NO_UMEM_FRAME,
 RX_KICKS, TX_KICKS, KICK_ERRORS, WRONG_POOL) = range(len(COMMON), len(COMMON) + 9)

M32 = 0xFFFFFFFF


@hot(inline="always")
def _kick_failed(ret):
    # EAGAIN, EBUSY, ENOBUFS and ENETDOWN are transient: the next burst kicks again (notes §5).
    if ret >= 0:
        return False
    e = sys_errno()
    return not (e == EAGAIN or e == EBUSY or e == ENOBUFS or e == ENETDOWN)


@hot
def xdp_fill_refill(st, pool):
    """Keep the FILL ring full so the kernel always has frames to receive into."""
    cfg, fill = st.cfg, st.fill
    prod = np.int64(load_u32(fill, cfg[C_FILL_PROD]))
    room = cfg[C_FILL_MASK] + 1 - min(max(cfg[C_FILL_OUT], 0), cfg[C_FILL_MASK] + 1)
    if room <= 0 or cfg[C_SHARED] == 0:
        cfg[C_FILL_SHORT] = 0
        return 0
    chunk, base = cfg[C_CHUNK], cfg[C_FILL_DESC]
    k = 0
    while k < room:
        b = pool_alloc(pool)
        if b < 0:
            st.counters[FILL_NOBUF] += 1
            break
        store_u64(fill, base + 8 * ((prod + k) & cfg[C_FILL_MASK]), np.uint64(b * chunk))
        st.kown[b] = 1
        k += 1
    if k > 0:
        store_release_u32(fill, cfg[C_FILL_PROD], np.uint32((prod + k) & M32))
    cfg[C_FILL_OUT] += k
    cfg[C_FILL_SHORT] = 1 if k < room else 0
    return k


@hot
def xdp_reap_completions(st, pool):
    """Take back frames the kernel has sent: free them to the pool (shared) or the UMEM free stack."""
    cfg, comp, cnt = st.cfg, st.comp, st.counters
    cons = np.int64(load_u32(comp, cfg[C_COMP_CONS]))
    prod = np.int64(load_acquire_u32(comp, cfg[C_COMP_PROD]))
    n = min((prod - cons) & M32, cfg[C_COMP_MASK] + 1)
    if n == 0:
        return 0
    chunk, nframes, base = cfg[C_CHUNK], cfg[C_NFRAMES], cfg[C_COMP_DESC]
    for i in range(n):
        addr = np.int64(load_u64(comp, base + 8 * ((cons + i) & cfg[C_COMP_MASK])))
        frame = addr // chunk
        if addr < 0 or frame >= nframes or st.kown[frame] == 0:
            cnt[COMP_INVALID_DESC] += 1
            continue
        st.kown[frame] = 0
        cfg[C_TX_OUT] -= 1
        if cfg[C_SHARED] != 0:
            pool_free(pool, frame)
        else:
            top = cfg[C_UFREE_TOP]
            if top < st.ufree.shape[0]:
                st.ufree[top] = frame
                cfg[C_UFREE_TOP] = top + 1
            else:
                cnt[COMP_INVALID_DESC] += 1
    store_release_u32(comp, cfg[C_COMP_CONS], np.uint32((cons + n) & M32))
    return n


@hot(inline="always")
def _same_pool(st, pool):
    """Shared UMEM: buffer i means UMEM frame i only in the pool whose memory IS the
    UMEM. A burst with any other pool is refused (counted as ``wrong_pool``)."""
    if st.cfg[C_SHARED] == 0 or pool.data.ctypes.data == st.umem.ctypes.data:
        return True
    st.counters[WRONG_POOL] += 1
    return False


@hot
def xdp_rx_burst(st, pool, bufs, n):
    cfg, rx, fill, cnt = st.cfg, st.rx, st.fill, st.counters
    if not _same_pool(st, pool):
        return 0
    if cfg[C_SHARED] != 0 and (cfg[C_FILL_OUT] <= cfg[C_FILL_MASK] or cfg[C_FILL_SHORT] != 0):
        # replace what the previous burst took, now that its packets have been handled
        xdp_fill_refill(st, pool)
    cons = np.int64(load_u32(rx, cfg[C_RX_CONS]))
    prod = np.int64(load_acquire_u32(rx, cfg[C_RX_PROD]))
    # never trust a count beyond the ring size, even from the kernel
    avail = min((prod - cons) & M32, cfg[C_RX_MASK] + 1, np.int64(n), np.int64(bufs.shape[0]))
    chunk, nframes, shared = cfg[C_CHUNK], cfg[C_NFRAMES], cfg[C_SHARED]
    got = 0
    used = 0
    nbytes = 0
    fprod = np.int64(load_u32(fill, cfg[C_FILL_PROD]))
    frefill = 0
    while used < avail:
        d = cfg[C_RX_DESC] + 16 * ((cons + used) & cfg[C_RX_MASK])
        addr = np.int64(load_u64(rx, d))
        ln = np.int64(load_u32(rx, d + 8))
        frame = addr // chunk
        foff = addr - frame * chunk
        if addr < 0 or frame >= nframes or st.kown[frame] == 0:
            cnt[RX_INVALID_DESC] += 1      # not a frame the kernel holds: touch nothing
            used += 1
            continue
        if ln <= 0 or foff + ln > chunk:
            cnt[RX_INVALID_DESC] += 1      # the frame is ours again, its contents are not usable
            used += 1
            st.kown[frame] = 0
            if shared != 0:
                cfg[C_FILL_OUT] -= 1
                pool_free(pool, frame)
            else:
                store_u64(fill, cfg[C_FILL_DESC] + 8 * ((fprod + frefill) & cfg[C_FILL_MASK]),
                          np.uint64(frame * chunk))
                st.kown[frame] = 1
                frefill += 1
            continue
        if shared != 0:
            st.kown[frame] = 0
            cfg[C_FILL_OUT] -= 1
            pool.data_off[frame] = foff
            pool.data_len[frame] = ln
            bufs[got] = frame
        else:
            b = pool_alloc(pool)
            if b < 0:
                cnt[RX_NOBUF] += 1
                break                      # leave the descriptor in the ring for the next burst
            used += 1
            # the UMEM frame goes straight back to the kernel either way (kown stays 1)
            store_u64(fill, cfg[C_FILL_DESC] + 8 * ((fprod + frefill) & cfg[C_FILL_MASK]),
                      np.uint64(frame * chunk))
            frefill += 1
            off = pool.data_off[b]
            if ln > pool.meta[BUF_SIZE] - off:
                cnt[RX_TOO_LONG] += 1
                pool_free(pool, b)
                continue
            memcpy(pool.data, b * pool.meta[BUF_SIZE] + off, st.umem, addr, ln)
            pool.data_len[b] = ln
            bufs[got] = b
            got += 1
            nbytes += ln
            continue
        used += 1
        got += 1
        nbytes += ln
    if used > 0:
        store_release_u32(rx, cfg[C_RX_CONS], np.uint32((cons + used) & M32))
    if frefill > 0:
        store_release_u32(fill, cfg[C_FILL_PROD], np.uint32((fprod + frefill) & M32))
    cnt[RX_PACKETS] += got
    cnt[RX_BYTES] += nbytes
    if got == 0:
        # empty poll: the housekeeping kept off the RX -> TX path (see C_TX_OUT above)
        if cfg[C_TX_OUT] > 0:
            xdp_reap_completions(st, pool)
        idle = cfg[C_IDLE] + 1
        if idle >= cfg[C_RX_WAKEUP_EVERY]:
            idle = 0
            if (load_relaxed_u32(fill, cfg[C_FILL_FLAGS]) & XDP_RING_NEED_WAKEUP) != 0:
                cnt[RX_KICKS] += 1
                if _kick_failed(xsk_kick_rx(cfg[C_FD])):
                    cnt[KICK_ERRORS] += 1
        cfg[C_IDLE] = idle
    return got


@hot
def xdp_tx_kick(st, pool):
    """Wake the kernel's TX path if it asked (XDP_RING_NEED_WAKEUP on the TX ring) and
    descriptors are pending. Copy mode always asks, and its sendto() transmits at most
    32 frames (TX_BATCH_SIZE in net/xdp/xsk.c) before failing with EAGAIN, so kick
    again (taking completions in between) until the ring is drained or the kernel
    reports a different condition. Bounded: at most ring_size/32 + 2 kicks."""
    cfg, tx, cnt = st.cfg, st.tx, st.counters
    kicks = 0
    max_kicks = (cfg[C_TX_MASK] + 1) // 32 + 2
    while kicks < max_kicks:
        if (load_relaxed_u32(tx, cfg[C_TX_FLAGS]) & XDP_RING_NEED_WAKEUP) == 0:
            break
        pending = (np.int64(load_u32(tx, cfg[C_TX_PROD])) - np.int64(load_acquire_u32(tx, cfg[C_TX_CONS]))) & M32
        if pending == 0:
            break
        kicks += 1
        cnt[TX_KICKS] += 1
        ret = xsk_kick_tx(cfg[C_FD])
        if ret >= 0:
            break                   # copy mode: all sent; zero-copy: the driver owns it now
        e = sys_errno()
        if e == EAGAIN:
            xdp_reap_completions(st, pool)   # the kernel also stops when COMPLETION is full
            continue                # more to send: the kernel stopped after one batch
        if not (e == EBUSY or e == ENOBUFS or e == ENETDOWN):
            cnt[KICK_ERRORS] += 1
        break
    return kicks


@hot
def xdp_tx_burst(st, pool, bufs, n):
    cfg, tx, cnt = st.cfg, st.tx, st.counters
    if not _same_pool(st, pool):
        return 0
    prod = np.int64(load_u32(tx, cfg[C_TX_PROD]))
    cons = np.int64(load_acquire_u32(tx, cfg[C_TX_CONS]))
    room = cfg[C_TX_MASK] + 1 - min((prod - cons) & M32, cfg[C_TX_MASK] + 1)
    chunk, shared = cfg[C_CHUNK], cfg[C_SHARED]
    nbufs, bsize = pool.meta[N_BUFS], pool.meta[BUF_SIZE]
    taken = 0
    posted = 0
    nbytes = 0
    limit = min(np.int64(n), np.int64(bufs.shape[0]))
    while taken < limit:
        b = np.int64(bufs[taken])
        if b < 0 or b >= nbufs or pool.state[b] != IN_USE or (shared != 0 and st.kown[b] != 0):
            cnt[TX_BAD_BUF] += 1           # not a buffer the caller owns (free, or still the kernel's): skip it
            taken += 1
            continue
        off, ln = pool.data_off[b], pool.data_len[b]
        if ln <= 0 or off < 0 or off + ln > bsize or ln > chunk:
            cnt[TX_TOO_LONG] += 1
            pool_free(pool, b)
            taken += 1
            continue
        if posted >= room:
            cnt[TX_RING_FULL] += 1
            break
        if shared != 0:
            addr = b * chunk + off         # the pool buffer is the UMEM frame: post it as is
        else:
            top = cfg[C_UFREE_TOP]
            if top == 0:
                xdp_reap_completions(st, pool)     # sent frames not yet taken back?
                top = cfg[C_UFREE_TOP]
            if top == 0:
                cnt[TX_NO_UMEM_FRAME] += 1
                break
            top -= 1
            cfg[C_UFREE_TOP] = top
            addr = st.ufree[top] * chunk
            memcpy(st.umem, addr, pool.data, b * bsize + off, ln)
            pool_free(pool, b)
        st.kown[addr // chunk] = 1
        d = cfg[C_TX_DESC] + 16 * ((prod + posted) & cfg[C_TX_MASK])
        store_u64(tx, d, np.uint64(addr))
        store_u32(tx, d + 8, np.uint32(ln))
        store_u32(tx, d + 12, np.uint32(0))
        posted += 1
        taken += 1
        nbytes += ln
    if posted > 0:
        store_release_u32(tx, cfg[C_TX_PROD], np.uint32((prod + posted) & M32))
        cfg[C_TX_OUT] += posted
        cnt[TX_PACKETS] += posted
        cnt[TX_BYTES] += nbytes
    xdp_tx_kick(st, pool)
    # after the kick: the frames are on their way, so this is off the critical path
    if cfg[C_TX_OUT] > 0:
        xdp_reap_completions(st, pool)
    return taken

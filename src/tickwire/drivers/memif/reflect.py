"""memif server reflect: each C2S frame copied straight into the next S2C buffer with its
first two 6-byte fields (Ethernet destination and source) swapped — testpmd's macswap in
one copy. Not part of the Port contract: a memif-only call for echo tools
(tools/echo.py's ``reflect`` hook; `tickwire echo` and the memif benchmark's echo).

Why: the Port-contract echo (rx_burst, swap, tx_burst) copies C2S -> pool buffer -> S2C
and pays a pool alloc/free, a second copy and a second burst preamble per frame, all on
the round trip's critical path. Two-process A/B, echo and ping-pong in the same process
pair (docs/memif.md, session 6, 6 rounds): near placement 265 -> 230 ns, far 921 -> 906 ns.

Trust is as in datapath.py, check for check: the C2S descriptor's (region, offset,
length) and the S2C descriptor's (region, offset, capacity) are read once into locals
and checked against the region table before a byte is copied, a zero capacity and an
index that claims more entries than the ring holds are violations (``cfg[ERROR]``, the
control plane disconnects the peer with the reason). A frame this path does not take —
chained or with stale flags, shorter than an Ethernet header, longer than the S2C buffer, or no
free S2C slot — stays at the head of the C2S ring for the Port-contract path, which
chains, counts and drops as usual; the return value says so (-1 - frames reflected).
"""

from __future__ import annotations

import numpy as np
from numba.extending import overload

from ...mem.atomics import load_acquire_u16, load_u16, load_u32, load_u64, prefetch, store_release_u16, store_u64
from ...mem.hotpath import hot, into_runtime_free_callers
from ..counters import RX_BYTES, RX_PACKETS, TX_BYTES, TX_PACKETS
from ..macswap import swap_macs
from ..port import register_reflect
from .datapath import (C_BAD_DESC, C_BAD_INDEX, ERR_BAD_DESC, ERR_BAD_INDEX, ERR_ZERO_CAPACITY, ERROR, LINK,
                       MemifState, N_REGIONS, Q_EFD, Q_LAST, Q_PEER, Q_RING, Q_SIZE, ROLE, SERVER, _checked_addr,
                       _checked_peer_buffer, _copy, _desc, _fail, _kick, _prefetch_peer_buf)
from .proto import RING_FLAG_MASK_INT, RING_FLAGS, RING_HEAD, RING_TAIL

# an Ethernet header: shorter frames go to the generic path, where `tickwire echo` counts
# them as short and drops them
MIN_REFLECT = 14


def _reflect(state, n):
    cfg = state.cfg
    if cfg[LINK] == 0 or cfg[ERROR] != 0:
        return 0
    if cfg[ROLE] != SERVER:
        return -1  # a client's S2C buffers are its own: the bursts serve it
    mem = state.mem
    regions = state.regions
    n_regions = cfg[N_REGIONS]
    rq = state.rxq[state.sel[0]]
    tq = state.txq[state.sel[1]]
    rring = rq[Q_RING]
    rsize = rq[Q_SIZE]
    cur = rq[Q_LAST]
    # as datapath._rx: the next descriptor and the frame it pointed at a lap ago are
    # fetched together with the producer index (only hints; all is read again below)
    d = _desc(rring, rsize - 1, cur)
    prefetch(mem, d)
    _prefetch_peer_buf(mem, regions, n_regions, d, False)
    avail = (np.int64(load_acquire_u16(mem, rring + RING_HEAD)) - cur) & 0xFFFF
    if avail > rsize:
        _fail(state, ERR_BAD_INDEX, C_BAD_INDEX)
        return 0
    if avail == 0:
        return 0
    tring = tq[Q_RING]
    tsize = tq[Q_SIZE]
    slot = tq[Q_LAST]
    want = min(avail, n)
    # free S2C slots from the client's head as last read (datapath._tx's cached index)
    free = (tq[Q_PEER] - slot) & 0xFFFF
    if free < want or free > tsize:
        peer = np.int64(load_acquire_u16(mem, tring + RING_HEAD))
        free = (peer - slot) & 0xFFFF
        if free > tsize:
            _fail(state, ERR_BAD_INDEX, C_BAD_INDEX)
            return 0
        tq[Q_PEER] = peer
    done = 0
    nbytes = 0
    left = False
    while done < want:
        if free == 0:
            left = True
            break
        d = _desc(rring, rsize - 1, cur)
        word = np.int64(load_u64(mem, d))  # flags u16 | region u16 | length u32
        length = (word >> 32) & 0xFFFFFFFF
        src = _checked_addr(regions, n_regions, (word >> 16) & 0xFFFF, np.int64(load_u32(mem, d + 8)), length)
        if src < 0:
            _fail(state, ERR_BAD_DESC, C_BAD_DESC)
            break
        td = _desc(tring, tsize - 1, slot)
        dst, region, cap = _checked_peer_buffer(mem, regions, n_regions, td)
        if dst < 0:
            _fail(state, ERR_BAD_DESC if dst == -1 else ERR_ZERO_CAPACITY, C_BAD_DESC)
            break
        if (word & 0xFFFF) != 0 or length < MIN_REFLECT or length > cap:
            left = True  # chained (or stale flags: datapath._rx clears them), short, or too long
            break
        # Both buffers were checked inside mapped regions; a peer that makes them overlap
        # gets garbage back, never a byte outside its regions.
        _copy(mem, dst, mem, src, length)
        swap_macs(mem, dst)
        store_u64(mem, td, np.uint64((region << 16) | (length << 32)))  # flags 0, region, length
        cur = (cur + 1) & 0xFFFF
        slot = (slot + 1) & 0xFFFF
        free -= 1
        done += 1
        nbytes += length
    if done > 0:
        tq[Q_LAST] = slot
        # the S2C index first: the peer is waiting on it; the C2S tail it reads only when
        # its own cached index runs out of free slots
        store_release_u16(mem, tring + RING_TAIL, np.uint16(slot))
        rq[Q_LAST] = cur
        store_release_u16(mem, rring + RING_TAIL, np.uint16(cur))
        if (np.int64(load_u16(mem, tring + RING_FLAGS)) & RING_FLAG_MASK_INT) == 0 and tq[Q_EFD] >= 0:
            _kick(state, tq[Q_EFD])
        state.ctr[RX_PACKETS] += done
        state.ctr[RX_BYTES] += nbytes
        state.ctr[TX_PACKETS] += done
        state.ctr[TX_BYTES] += nbytes
    return -1 - done if left else done


_reflect_compiled = hot(_reflect)


def memif_reflect(state, n):
    """Reflect up to ``n`` C2S frames into S2C (server role). Returns the count, or
    -1 - count when the frame at the ring's head needs rx_burst/tx_burst (a client: -1).
    From Numba it inlines into runtime-free callers, as the bursts do (datapath._entry)."""
    return _reflect_compiled(state, n)


memif_reflect.compiled = _reflect_compiled
overload(memif_reflect, inline=into_runtime_free_callers, jit_options={"_nrt": False})(
    lambda state, n: _reflect)
register_reflect(MemifState, memif_reflect)  # tools/echo and the bench reach it as drivers.port.reflect

"""``stack_poll``: timer-driven frames (ARP requests, gratuitous ARP, IGMP reports).

Call it from the loop every so often (it is cheap when nothing is due) after
setting ``st.cfg[C_NOW]``; it allocates buffers from ``pool`` and appends them to
``out[n:cap]``, returning the new count. The caller transmits them.
"""

from __future__ import annotations

from numba import njit

from ..mem.mempool import BUF_SIZE, buf_start, pool_alloc, pool_free
from .arp import arp_build_request
from .igmp import igmp_build_due
from .state import (A_IP, A_NEXT_REQ, A_STATE, A_TRIES, ARP_INCOMPLETE, ARP_TOMBSTONE, C_ARP_RETRY_NS, C_ARP_TRIES,
                    C_GARP_LEFT, C_GARP_NEXT, C_IP, C_NOW, K_ARP_FAILED, K_ARP_REQUEST_TX, K_GARP_TX, K_TX_NOBUF)


@njit(cache=True)
def _take(st, pool):
    """A buffer for a frame built here, or -1 (counted tx_nobuf): none free, or it has less
    room than the 60-byte minimum frame every ARP/IGMP frame is padded to."""
    b = pool_alloc(pool)
    if b >= 0 and pool.meta[BUF_SIZE] - pool.data_off[b] < 60:
        pool_free(pool, b)
        b = -1
    if b < 0:
        st.cnt[K_TX_NOBUF] += 1
    return b


@njit(cache=True)
def stack_poll(st, pool, out, n, cap):
    cfg = st.cfg
    now = cfg[C_NOW]
    buf = pool.data
    # gratuitous ARP announcing our address (RFC 5227 §2.3), one per second
    if cfg[C_GARP_LEFT] > 0 and cfg[C_IP] != 0 and now >= cfg[C_GARP_NEXT] and n < cap:
        b = _take(st, pool)
        if b < 0:
            return n
        pool.data_len[b] = arp_build_request(st, buf, buf_start(pool, b), cfg[C_IP], True)
        out[n] = b
        n += 1
        cfg[C_GARP_LEFT] -= 1
        cfg[C_GARP_NEXT] = now + cfg[C_ARP_RETRY_NS]
        st.cnt[K_GARP_TX] += 1
    # ARP requests for unresolved next hops
    arp = st.arp
    for i in range(arp.shape[0]):
        if n >= cap:
            return n
        if arp[i, A_STATE] == ARP_INCOMPLETE and arp[i, A_NEXT_REQ] <= now:
            if arp[i, A_TRIES] >= cfg[C_ARP_TRIES]:
                arp[i, A_STATE] = ARP_TOMBSTONE
                st.cnt[K_ARP_FAILED] += 1
                continue
            b = _take(st, pool)
            if b < 0:
                return n
            pool.data_len[b] = arp_build_request(st, buf, buf_start(pool, b), arp[i, A_IP], False)
            out[n] = b
            n += 1
            arp[i, A_TRIES] += 1
            arp[i, A_NEXT_REQ] = now + cfg[C_ARP_RETRY_NS]
            st.cnt[K_ARP_REQUEST_TX] += 1
    # IGMP reports that are due
    while n < cap:
        b = _take(st, pool)
        if b < 0:
            return n
        length = igmp_build_due(st, buf, buf_start(pool, b), pool.meta[BUF_SIZE] - pool.data_off[b])
        if length == 0:
            pool_free(pool, b)
            break
        pool.data_len[b] = length
        out[n] = b
        n += 1
    return n

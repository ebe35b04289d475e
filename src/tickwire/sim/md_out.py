"""Sending the simulator's market data as UDP frames on a frame port, feeds A and B, with
optional injected loss, duplication and reordering per feed (seeded, reproducible).

imp[feed, *]: loss, duplicate, reorder probabilities in parts per million. A reordered
packet is held back and sent after the next packet of that feed.
Each packet's first hand-off to the port is stamped for the end-to-end measurement
(e2e_stamps.py).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..drivers.port import tx_burst
from ..mem.atomics import memcpy, rdtscp
from ..mem.mempool import buf_room, buf_start, pool_alloc, pool_free
from ..stack.udp import SEND_NO_ARP, SEND_OK, UDP_PAYLOAD_OFF, udp_prepare
from .e2e_stamps import md_seq_of, stamp_md

IMP_LOSS, IMP_DUP, IMP_REORDER = range(3)
# counters c[feed, *]
MC_SENT, MC_LOST, MC_DUPED, MC_REORDERED, MC_NOBUF, MC_TX_DROPPED, MC_NO_ARP, MC_TOO_LONG = range(8)
N_MC = 8


@njit(cache=True, inline="always")
def _rand_ppm(rng):
    x = np.uint64(rng[0])
    x ^= x >> np.uint64(12)
    x ^= x << np.uint64(25)
    x ^= x >> np.uint64(27)
    rng[0] = np.int64(x)
    return np.int64(((x * np.uint64(2685821657736338717)) >> np.uint64(33)) % np.uint64(1_000_000))


@njit(cache=True)
def _frame(port_state, pool, net, pkt, n, dst, sport, dport, txb, k):
    """(k + 1, -1) with the frame queued in txb[k], or (k, the counter it was dropped under)."""
    b = pool_alloc(pool)
    if b < 0:
        return k, MC_NOBUF
    if UDP_PAYLOAD_OFF + n > buf_room(pool, b):     # checked before the copy, not after it
        pool_free(pool, b)
        return k, MC_TOO_LONG
    memcpy(pool.data, buf_start(pool, b) + UDP_PAYLOAD_OFF, pkt, 0, n)
    r = udp_prepare(net, pool, b, dst, sport, dport, n)
    if r != SEND_OK:
        pool_free(pool, b)
        return k, MC_NO_ARP if r == SEND_NO_ARP else MC_TOO_LONG
    txb[k] = b
    return k + 1, -1


@njit(cache=True)
def _burst(port_state, pool, txb, k, cnt, st):
    """Hand ``txb[:k]`` to the port; stamp what it took (e2e_stamps: the TSC read right
    before tx_burst, since the peer may see the first frame before tx_burst returns)."""
    t = rdtscp()
    sent = tx_burst(port_state, pool, txb, k)
    for j in range(sent):
        stamp_md(st, st.pend[j, 1], st.pend[j, 0], t)
    for j in range(sent, k):
        pool_free(pool, txb[j])
        cnt[st.pend[j, 1], MC_TX_DROPPED] += 1
    return sent


@njit(cache=True, inline="always")
def _queue(port_state, pool, net, pkt, n, dst, sport, dport, txb, k, st, f):
    k2, cause = _frame(port_state, pool, net, pkt, n, dst, sport, dport, txb, k)
    if cause < 0:
        st.pend[k, 0] = md_seq_of(pkt, n)
        st.pend[k, 1] = f
    return k2, cause


@njit(cache=True)
def send_md(port_state, pool, net, mdq, mdq_len, count, dst, dport, sport, imp, rng, hold, hold_len, cnt, txb, st):
    """Send ``mdq[:count]`` on each feed f (dst[f]:dport[f]) with impairments imp[f]:
    packet q on feed A, then on feed B, then packet q+1 (so the first copy of a packet is
    not queued behind the whole batch of the other feed). ``hold[f]`` keeps a packet
    delayed for reordering. ``st`` (e2e_stamps.E2e) gets each packet's first send time.
    Returns frames handed to the port."""
    total = 0
    k = 0
    cap = min(txb.shape[0], st.pend.shape[0])
    for q in range(count):
        n = mdq_len[q]
        for f in range(dst.shape[0]):
            if k + 3 > cap:
                total += _burst(port_state, pool, txb, k, cnt, st)
                k = 0
            if _rand_ppm(rng) < imp[f, IMP_LOSS]:
                cnt[f, MC_LOST] += 1
                continue
            if hold_len[f] == 0 and _rand_ppm(rng) < imp[f, IMP_REORDER]:
                hold[f, :n] = mdq[q, :n]
                hold_len[f] = n
                cnt[f, MC_REORDERED] += 1
                continue
            k, cause = _queue(port_state, pool, net, mdq[q], n, dst[f], sport, dport[f], txb, k, st, f)
            if cause >= 0:
                cnt[f, cause] += 1
                continue
            cnt[f, MC_SENT] += 1
            if _rand_ppm(rng) < imp[f, IMP_DUP]:
                k, cause = _queue(port_state, pool, net, mdq[q], n, dst[f], sport, dport[f], txb, k, st, f)
                if cause < 0:
                    cnt[f, MC_DUPED] += 1
                else:
                    cnt[f, cause] += 1
            if hold_len[f] > 0:
                k, cause = _queue(port_state, pool, net, hold[f], hold_len[f], dst[f], sport, dport[f], txb, k, st, f)
                hold_len[f] = 0
                if cause >= 0:
                    cnt[f, cause] += 1      # the held packet is lost after all: say why
    if k > 0:
        total += _burst(port_state, pool, txb, k, cnt, st)
    return total


@njit(cache=True)
def send_one(port_state, pool, net, pkt, n, dst, sport, dport, txb):
    k, cause = _frame(port_state, pool, net, pkt, n, dst, sport, dport, txb, 0)
    if cause >= 0:
        return 0
    sent = tx_burst(port_state, pool, txb, 1)
    if sent != 1:
        pool_free(pool, txb[0])
    return sent

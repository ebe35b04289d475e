"""One bounded step of the poll loop, compiled: receive a burst, run the fast path on
every segment it can take, send the immediate ACKs, and hand everything else
(handshakes, out-of-order data, FIN/RST, ARP, ...) back to Python by buffer index.
"""

from __future__ import annotations

from numba import njit

from ...mem.hotpath import hot
from ...drivers.port import rx_burst, tx_burst
from ...mem.mempool import BUF_SIZE, pool_free
from ...wire.bytes import rd48
from .fastpath import build_ack, fast_input
from .segment import C_OK, SG_DPORT, SG_DST, SG_SPORT, SG_SRC, tcp_decode
from .states import CLOSED, ESTABLISHED
from .tcb import (ACK_PENDING, DELAYED_ACK, LOCAL_IP, LOCAL_PORT, PY_DEADLINE, REMOTE_IP, REMOTE_PORT,
                  RTX_DEADLINE, STATE)


@njit(cache=True, inline="always")
def find_slot(hot, nslots, sg):
    """Linear scan: an order-entry process holds a handful of sessions."""
    for s in range(nslots):
        if (hot[s, STATE] != CLOSED and hot[s, REMOTE_PORT] == sg[SG_SPORT]
                and hot[s, LOCAL_PORT] == sg[SG_DPORT] and hot[s, REMOTE_IP] == sg[SG_SRC]
                and hot[s, LOCAL_IP] == sg[SG_DST]):
            return s
    return -1


@hot
def slow_work_due(hot, nslots, now_us):
    """True when some connection has a timer due (retransmission, persist, keepalive,
    TIME-WAIT, delayed ACK): a compiled loop should then return to Python for ``service()``."""
    for s in range(nslots):
        if hot[s, STATE] == CLOSED:
            continue
        d = hot[s, RTX_DEADLINE]
        p = hot[s, PY_DEADLINE]
        if (d != 0 and d <= now_us) or (p != 0 and p <= now_us):
            return True
    return False


@hot
def poll_step(port_state, pool, bufs, burst, hot, nslots, txq, rxq, tmpl, sg, slow, acks, opts, local_mac, now_us):
    """Returns the number of frames left in ``slow[:]`` for the slow path (caller frees them)."""
    n = rx_burst(port_state, pool, bufs, burst)
    nslow = 0
    for i in range(n):
        b = bufs[i]
        off = b * pool.meta[BUF_SIZE] + pool.data_off[b]
        taken = False
        # only unicast to our MAC takes the fast path; the slow path counts the rest
        if rd48(pool.data, off) == local_mac and tcp_decode(pool.data, off, pool.data_len[b], sg) == C_OK:
            s = find_slot(hot, nslots, sg)
            if s >= 0 and fast_input(hot, s, rxq, pool.data, sg, now_us):
                taken = True
        if taken:
            pool_free(pool, b)
        else:
            slow[nslow] = b
            nslow += 1
    # Immediate ACKs for what the fast path accepted (delayed-ACK connections: every 2nd).
    na = 0
    for s in range(nslots):
        p = hot[s, ACK_PENDING]
        if p > 0 and hot[s, STATE] == ESTABLISHED and (hot[s, DELAYED_ACK] == 0 or p >= 2):
            a = build_ack(hot, s, tmpl, txq, rxq.shape[1], pool, opts, 0, now_us)
            if a >= 0:
                acks[na] = a
                na += 1
    if na > 0:
        sent = tx_burst(port_state, pool, acks, na)
        for i in range(sent, na):
            pool_free(pool, acks[i])
    return nslow

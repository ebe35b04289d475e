"""A complete run-to-completion loop: port RX -> stack -> port TX, as one Numba call.

``run_stack`` is what ``tickwire stack`` runs in bounded slices (Python services
the port's control plane and prints counters in between). It also serves as the
reference for embedding ``stack_input`` in another loop: UDP endpoints tagged
TAG_ECHO are reflected to their sender, other UDP and TCP are counted and freed.
It is compiled without Numba's reference counting (``_nrt=False``; it allocates
nothing) so that ``stack_input_inline`` costs no NRT calls per packet.
"""

from __future__ import annotations

import time


from ..mem.hotpath import hot

from ..drivers.port import rx_burst, tx_burst
from ..mem.atomics import rdtscp
from ..mem.mempool import pool_free
from .input import stack_input_inline
from .poll import stack_poll
from .state import (ACT_TCP, ACT_TX, ACT_UDP, C_NOW, I_EP, K_TCP_NO_HANDLER, K_TX_DROPPED, TAG_ECHO, U_TAG)
from .udp import SEND_OK, udp_reply_in_place
from ..wire.decode import I_PAYLEN


@hot
def flush_tx(port_state, pool, st, tx, ntx):
    """Send tx[:ntx]; whatever the port did not take is freed and counted."""
    if ntx == 0:
        return 0
    sent = tx_burst(port_state, pool, tx, ntx)
    for i in range(sent, ntx):
        pool_free(pool, tx[i])
        st.cnt[K_TX_DROPPED] += 1
    return 0


@hot
def run_stack(port_state, pool, st, rx, tx, info, budget_tsc, ns_per_tsc_q32, now0):
    """Poll the port for ``budget_tsc`` TSC ticks. ``tx`` must hold at least rx.size + 16.
    Returns the number of loop iterations."""
    t0 = rdtscp()
    iters = 0
    cap = tx.shape[0]
    nrx = rx.shape[0]
    while True:
        t = rdtscp()
        st.cfg[C_NOW] = now0 + (((t - t0) * ns_per_tsc_q32) >> 32)
        ntx = 0
        n = rx_burst(port_state, pool, rx, nrx)
        for i in range(n):
            b = rx[i]
            act = stack_input_inline(st, pool, b, info)
            if act == ACT_TX:
                tx[ntx] = b
                ntx += 1
            elif act == ACT_UDP:
                if st.udp_ep[info[I_EP], U_TAG] == TAG_ECHO and \
                        udp_reply_in_place(st, pool, b, info, info[I_PAYLEN]) == SEND_OK:
                    tx[ntx] = b
                    ntx += 1
                else:
                    pool_free(pool, b)
            else:
                if act == ACT_TCP:
                    st.cnt[K_TCP_NO_HANDLER] += 1
                pool_free(pool, b)
        if (iters & 255) == 0:
            ntx = stack_poll(st, pool, tx, ntx, cap)
        ntx = flush_tx(port_state, pool, st, tx, ntx)
        iters += 1
        if t - t0 >= budget_tsc:
            break
    return iters


_TSC = None


def tsc_calibration() -> tuple[float, int]:
    """(TSC ticks per ns, ns per tick in Q32) measured once per process over ~20 ms."""
    global _TSC
    if _TSC is None:
        from ..tsc import read_tsc as read  # cached: a lambda here recompiled in every process

        read()
        t0, c0 = time.perf_counter_ns(), read()
        time.sleep(0.02)
        t1, c1 = time.perf_counter_ns(), read()
        ticks_per_ns = (c1 - c0) / (t1 - t0)
        _TSC = (ticks_per_ns, int((1 << 32) / ticks_per_ns))
    return _TSC

"""Keeping the order path and the receive half warm (engine/warm.py) sends nothing and
changes no state.

A real engine state (session up with the in-process venue, books synced), a real
tickwire TCP connection (two stacks joined by a pipe) and a real memif pair in this
process: the warm-up runs many times, then every engine, TCP, pool and memif array is
compared with its copy from before: only the warm-up counter ``M_WARMS`` moved. The
server side of the memif link receives nothing. And the warm-up did the real work (on
its shadow state): a NewOrderSingle with the session's next SeqNum and the next ClOrdID,
in the very segment ``fast_send`` then builds for the real connection, byte for byte;
and the receive half's strategy ran on the shadow view refreshed from the real one.
"""

import uuid

import numpy as np

from inproc import Harness
from memif.test_pair import poll_both
from tcp.pair import Pair
from tickwire.drivers.port import open_port
from tickwire.engine.layout import M_TXS_LEN, M_WARMS
from tickwire.engine.loop_memif import warm_path
from tickwire.engine.warm import new_warm_state
from tickwire.mem.mempool import BUF_SIZE, FREE_TOP, Mempool
from tickwire.order import wire_layout as W
from tickwire.order.layout import G_MAX_CLORDID
from tickwire.order.oe_codec import frame_check, rd_field_u64, rd_seqnum, template_of
from tickwire.order.session import SS_NEXT_OUT
from tickwire.stack.tcp import tcb as T
from tickwire.stack.tcp.fastpath import fast_send


def _arrays(obj, name="E"):
    if isinstance(obj, np.ndarray):
        yield name, obj
    elif isinstance(obj, tuple) and hasattr(obj, "_fields"):
        for f in obj._fields:
            yield from _arrays(getattr(obj, f), f"{name}.{f}")


def _copy(obj, name):
    return {k: a.copy() for k, a in _arrays(obj, name)}


def _changed(before, obj, name):
    return {k for k, a in _arrays(obj, name) if not np.array_equal(before[k], a)}


def test_warm_path_sends_nothing_and_changes_no_state(tmp_path):
    h = Harness("taker", dict(instr=0, imbalance_pct=60, cooldown_ns=200_000, max_pos=10))
    h.connect()
    h.run(200)
    h.snapshot()
    E = h.E
    assert E.sv.top[0, 2] > 0                       # a book to price the dummy order against
    p = Pair()
    c, _ = p.connect()
    tcp = p.a
    sock = str(tmp_path / f"w{uuid.uuid4().hex[:6]}.sock")
    ps, pc = Mempool(512, 2048, 128), Mempool(512, 2048, 128)
    with open_port(f"memif:socket={sock},role=server", ps) as srv, \
            open_port(f"memif:socket={sock},role=client", pc) as cli:
        assert poll_both(srv, cli, lambda: srv.link_up and cli.link_up)
        S = new_warm_state(E, tcp.hot, tcp.tmpl)
        state_before = {**_copy(E, "E"), **_copy(tcp.hot, "hot"), **_copy(tcp.tmpl, "tmpl"), **_copy(tcp.txq, "txq"),
                        **_copy(tcp.rxq, "rxq"), **_copy(pc.arrays, "pool"), **_copy(cli.state, "memif")}
        n_instr = E.imap.shape[0]
        S.E.sv.top[:] = 0                   # the receive half's warm-up refreshes it from the real view
        now_us = tcp.now()
        one = np.zeros(1, np.int32)     # the loop's one-frame burst (warm mode never writes it)
        for k in range(200):
            flen = warm_path(cli.state, E, S, tcp.hot, c.slot, tcp.txq, tcp.rxq, tcp.tmpl, tcp.opts, one,
                             now_us, k % n_instr)
            if k % n_instr == 0:
                assert flen > 0
        changed = (_changed(state_before, E, "E") | _changed(state_before, tcp.hot, "hot")
                   | _changed(state_before, tcp.tmpl, "tmpl") | _changed(state_before, tcp.txq, "txq")
                   | _changed(state_before, tcp.rxq, "rxq") | _changed(state_before, pc.arrays, "pool")
                   | _changed(state_before, cli.state, "memif"))
        assert changed <= {"E.meta"}, changed
        assert np.array_equal(S.E.sv.top, E.sv.top)    # warm_receive ran the strategy on real numbers
        meta = state_before["E.meta"]
        assert E.meta[M_WARMS] == meta[M_WARMS] + 200          # its own counter, the only change
        assert np.array_equal(np.delete(E.meta, M_WARMS), np.delete(meta, M_WARMS))
        # nothing reached the peer
        out = np.zeros(16, np.int32)
        assert srv.rx_burst(out) == 0 and cli.stats().get("tx_packets", 0) == 0

        # it ran the real work on the shadow: the next NewOrderSingle of this session ...
        X = S.E
        assert X.meta[M_TXS_LEN] == 0                   # flush_oe took it, as for a real order
        n = frame_check(X.txs, 0, X.txs.shape[0])
        assert n == W.BODY + 40 and template_of(X.txs, 0) == W.NEW_ORDER
        assert rd_seqnum(X.txs, 0) == E.sess[SS_NEXT_OUT]
        assert rd_field_u64(X.txs, 0, W.F_CLORDID) == E.risk.glob[G_MAX_CLORDID] + 1
        # ... in the segment the real fast_send builds next, byte for byte (the shadow pool's
        # last buffer, freed after the warm-up)
        b = int(S.pool.free_stack[S.pool.meta[FREE_TOP] - 1])
        off = b * int(S.pool.meta[BUF_SIZE]) + int(S.pool.data_off[b])
        shadow_frame = S.pool.data[off:off + flen].tobytes()
        idx = fast_send(tcp.hot, c.slot, tcp.txq, tcp.rxq.shape[1], tcp.tmpl, p.pool.arrays, X.txs, 0, n,
                        tcp.opts, now_us)
        assert idx >= 0
        assert p.pool.read(idx) == shadow_frame


def test_warm_up_runs_the_send_path_a_real_order_runs():
    """The warm-up's shadow transmit side has the real one's types, so ``flush_oe`` (the
    segment build) is one compiled function for both: warming it warms the instructions the
    next real order executes, not a second copy of them (engine/loop_memif.warm_path)."""
    from numba import typeof

    h = Harness("taker", dict(instr=0))
    p = Pair()
    tcp = p.a
    pool = Mempool(64, 2048, 128)
    S = new_warm_state(h.E, tcp.hot, tcp.tmpl)
    assert typeof(S.E) == typeof(h.E)
    for shadow, real in ((S.pool, pool.arrays), (S.hot, tcp.hot), (S.txq, tcp.txq), (S.tmpl, tcp.tmpl)):
        assert typeof(shadow) == typeof(real)

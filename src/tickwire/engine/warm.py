"""Keeping the order path warm while the market is quiet.

Orders are rare (the taker sends ~100 a second) and market data frequent, so by the time
an order is sent, both the memory it needs (risk limits and state, the order table row,
the session, the encode buffer, the TCP connection row, template and send ring, the memif
descriptor and buffer) and the *code* that runs it (risk checks, encoder, segment build:
instruction cache, branch predictors) have been evicted. Measured in one process, after
2 ms of other work (act_on_intents alone, p50): 982 ns cold, 701 ns with its data warmed,
606 ns with its code warmed (the same function run on other data), 290 ns with both.
OpenOnload's answer is ONLOAD_MSG_WARM: run the send path on a message that is not sent.
Here, every WARM_EVERY_US of idle polling the loop runs, for one instrument (round robin):

* data: ``warm_order`` reads what the next order reads (the risk verdict of a dummy
  order at the touch, ``submit_new_dry``: nothing counted, no token spent, no kill switch;
  the order table row its ClOrdID would take; the session's next SeqNum) and prefetches
  for writing the lines it writes (stamp row, intents row, the encode buffer);
* code: the *real* functions -- ``act_on_intents`` (risk, order table, encoding),
  ``reconcile`` (an IOC's cancel), the TCP ``fast_send`` -- on a shadow state
  (``WarmState``): a copy of the engine's order-side state and of the connection's row
  and template, refreshed from the real ones (reads) before each run. The shadow's
  segment goes to a private pool and back; nothing reaches a port;
* ``tx_touch``: the transmit ring's next descriptor and buffer (memif, client role:
  slots we own that the peer does not read until we publish the head) prefetched for
  writing, the consumer index for reading. No store is made, so nothing reaches the peer.

The real state changes in nothing but the warm-up counter ``M_WARMS``
(tests/engine/test_engine_warm.py). Cost: ~0.5 us every WARM_EVERY_US of idle time; a frame
arriving meanwhile waits for it (visible in ``poll_gap``, which the bench reports).
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np
from numba import njit, types
from numba.extending import overload

from ..drivers.memif.datapath import BSIZE, CLIENT, ERROR, LINK, Q_BUF0, Q_LAST, Q_RING, Q_SIZE, ROLE, MemifState
from ..drivers.memif.proto import DESC_SIZE, RING_DESC, RING_TAIL
from ..mem.atomics import prefetch, prefetch_write
from ..order import wire_layout as W
from ..order.layout import EXEC_CANCELED, G_MAX_CLORDID, SIDE_BUY, SIDE_SELL, TIF_IOC
from ..order.orders import reconcile, submit_new_dry
from ..order.session import SS_NEXT_OUT
from ..book.mbp import BID, OFFER
from ..feed.handler import views
from .core import act_on_intents
from ..mem.ref import by_ref
from .dispatch import strat_book
from .layout import (IM_SLOT, IN_INSTR, IN_KIND, IN_PRICE, IN_QTY, IN_REF, IN_SIDE, IN_TIF, K_NEW, M_SHADOW, M_STAMP_N, M_TXS_LEN,
                     M_WARM_RX, TOP_ASK,
                     TOP_BID)

WARM_EVERY_US = 25


@njit(cache=True, _nrt=False)
def warm_order(E, i, now):
    """Read (and prefetch for writing) what a new order on engine instrument ``i`` will
    touch, changing nothing. Returns the dummy order's (price, side); price 0: no book to
    price it."""
    if i < 0 or i >= E.imap.shape[0]:
        return 0, SIDE_BUY
    top = E.sv.top
    side = SIDE_BUY
    price = top[i, TOP_ASK]
    if price <= 0:
        side = SIDE_SELL
        price = top[i, TOP_BID]
    if price <= 0:
        return 0, side
    submit_new_dry(E.risk, E.orders, now, i, side, price, 1, E.risk.glob[G_MAX_CLORDID] + 1)
    k = E.meta[M_STAMP_N] % E.stamps.shape[0]
    prefetch_write(E.stamps, k * E.stamps.strides[0])
    prefetch_write(E.intents, 0)
    off = E.meta[M_TXS_LEN]
    if off + W.MAX_FRAME <= E.txs.shape[0]:
        prefetch_write(E.txs, off)
        prefetch_write(E.txs, off + 63)
    prefetch(E.sess, SS_NEXT_OUT * 8)
    return price, side


@njit(cache=True, inline="always")
def _copy_row(dst, src):
    """dst[:] = src for 1-D int64 arrays of one length (slice assignment would need the NRT)."""
    for j in range(dst.shape[0]):
        dst[j] = src[j]


@njit(cache=True, inline="always")
def _prefetch_lines(a, first, nbytes):
    """Prefetch (for reading) every cache line of ``a``'s bytes [first, first + nbytes)."""
    for off in range(first, first + nbytes, 64):
        prefetch(a, off)


@njit(cache=True, _nrt=False)
def warm_receive(E, S, i):
    """The receive half of instrument ``i``'s next packet, real state read only: the lines
    the feed handler and the engine read for it prefetched (the feed's counters and
    sequencing scalars, its SecurityID index, the 46/48 template rows, the instrument's
    row and the book levels on both outright sides; the engine's instrument map, top of
    book, strategy parameters and state), then the strategy's ``on_book_update`` run on the
    shadow ``S.E.sv`` refreshed from the real view (its code and branch history, on the
    real numbers; whatever it asks for stays in the shadow's intents). The feed's own code
    is not run: it cannot be without changing the real book (a shadow feed would need the
    whole sequencing state replayed)."""
    if i < 0 or i >= E.imap.shape[0] or E.meta[M_WARM_RX] == 0:
        return 0
    feed = views(E.feed)
    _prefetch_lines(feed.ctr, 0, feed.ctr.shape[0] * 8)
    _prefetch_lines(feed.index, 0, feed.index.shape[0] * 8)
    row = feed.tpl.shape[1] * 8
    for tid in (46, 48):
        if tid < feed.tpl.shape[0]:
            _prefetch_lines(feed.tpl, tid * row, row)
    s = E.imap[i, IM_SLOT]
    if s >= 0 and s < feed.inst.shape[0]:
        _prefetch_lines(feed.inst, s * feed.inst.strides[0], feed.inst.strides[0])
        lv = feed.levels
        _prefetch_lines(lv, s * lv.strides[0] + BID * lv.strides[1], lv.strides[1])
        _prefetch_lines(lv, s * lv.strides[0] + OFFER * lv.strides[1], lv.strides[1])
    prefetch(E.imap, i * E.imap.strides[0])
    X = S.E
    _copy_row(X.sv.top[i], E.sv.top[i])
    _copy_row(X.sv.state, E.sv.state)
    _copy_row(X.sv.params, E.sv.params)
    _copy_row(X.sv.ids, E.sv.ids)
    _copy_row(X.risk.inst[i], E.risk.inst[i])      # the view's inst (position) is the shadow risk's
    return strat_book(X.sv, i, X.intents)


WarmState = namedtuple("WarmState", "E hot txq tmpl pool")


def new_warm_state(E, hot=None, tmpl=None) -> WarmState:
    """A shadow of the engine's order side (and, for a frame transport, of one TCP
    connection and a private 4-buffer pool) for ``warm_run``. Small: the feed and the stamp
    ring are stand-ins of the right types (the shadow never runs the feed)."""
    from ..mem.mempool import Mempool

    def cp(x):
        if isinstance(x, np.ndarray):
            return x.copy()
        return type(x)(*[cp(v) for v in x])

    risk, orders = cp(E.risk), cp(E.orders)
    sv = E.sv._replace(params=E.sv.params.copy(), state=E.sv.state.copy(), top=E.sv.top.copy(), inst=risk.inst,
                       orders=orders, ids=E.sv.ids.copy())
    feed = type(E.feed)(*[np.zeros(8, a.dtype) for a in E.feed])
    meta = np.zeros_like(E.meta)
    meta[M_SHADOW] = 1      # its send path stops before the wire (loop_memif.flush_oe)
    WE = E._replace(feed=feed, risk=risk, orders=orders, sess=E.sess.copy(), sv=sv, imap=E.imap.copy(),
                    intents=E.intents.copy(), meta=meta, stamps=np.zeros((4, E.stamps.shape[1]), np.int64),
                    rxs=np.zeros(W.MAX_FRAME, np.uint8), txs=np.zeros(4 * W.MAX_FRAME, np.uint8))
    if hot is None:       # kernel sockets: the shadow TCP parts are stand-ins, never used
        hot, txq, tmpl = np.zeros((1, 1), np.int64), np.zeros((1, 1), np.uint8), np.zeros((1, 1), np.uint8)
        pool_arrays = Mempool(n_bufs=4, buf_size=256).arrays
    else:
        hot, txq, tmpl = np.zeros((1, hot.shape[1]), np.int64), np.zeros((1, 1 << 12), np.uint8), \
            np.zeros((1, tmpl.shape[1]), np.uint8)
        pool_arrays = Mempool(n_bufs=4, buf_size=2048).arrays
    return WarmState(WE, hot, txq, tmpl, pool_arrays)


@njit(cache=True, _nrt=False)
def warm_run(E, S, i, now):
    """``warm_receive`` (the receive half: feed lines, the strategy on the shadow), then
    ``warm_order`` on the real state, then the real ``act_on_intents`` and ``reconcile``
    on the shadow ``S.E`` refreshed from it. Returns the length of the shadow's encoded
    message in ``S.E.txs`` (0: none)."""
    warm_receive(E, S, i)
    price, side = warm_order(E, i, now)
    if price <= 0:
        return 0
    X = S.E
    _copy_row(X.risk.glob, E.risk.glob)
    _copy_row(X.risk.limits[i], E.risk.limits[i])
    _copy_row(X.risk.inst[i], E.risk.inst[i])
    _copy_row(X.sess, E.sess)
    _copy_row(X.imap[i], E.imap[i])
    X.meta[M_TXS_LEN] = 0
    cid = X.risk.glob[G_MAX_CLORDID] + 1
    it = X.intents
    it[0, IN_KIND] = K_NEW
    it[0, IN_INSTR] = i
    it[0, IN_SIDE] = side
    it[0, IN_PRICE] = price
    it[0, IN_QTY] = 1
    it[0, IN_TIF] = TIF_IOC
    it[0, IN_REF] = cid
    n = 0
    if act_on_intents(by_ref(X), 1, now) == 1:
        n = X.meta[M_TXS_LEN]
        reconcile(X.risk, X.orders, EXEC_CANCELED, cid, 0, 0, 0)     # the IOC's remainder: slot free again
    return n


def tx_touch(port_state):
    """Prefetch what the port's next tx_burst of one frame writes and reads."""


@overload(tx_touch, jit_options={"cache": True})
def _ov_tx_touch(port_state):
    if isinstance(port_state, types.BaseNamedTuple) and port_state.instance_class is MemifState:
        def memif_touch(port_state):
            cfg = port_state.cfg
            if cfg[LINK] == 0 or cfg[ERROR] != 0 or cfg[ROLE] != CLIENT:
                return
            mem = port_state.mem
            q = port_state.txq[port_state.sel[1]]
            ring = q[Q_RING]
            slot = q[Q_LAST] & (q[Q_SIZE] - 1)
            prefetch(mem, ring + RING_TAIL)                        # the server's consumer index
            prefetch_write(mem, ring + RING_DESC + slot * DESC_SIZE)
            buf = q[Q_BUF0] + slot * cfg[BSIZE]                   # a client's buffers are fixed per slot
            prefetch_write(mem, buf)
            prefetch_write(mem, buf + 64)
            prefetch_write(mem, buf + 128)
        return memif_touch
    return lambda port_state: None

"""Keeping the order path warm while the market is quiet.

Orders are rare (the taker sends ~100 a second) and market data frequent, so by the time
an order is sent, the memory it needs -- risk limits and state, the order table row, the
session, the encode buffer, the TCP connection row, template and send ring, the memif
descriptor and buffer -- has been evicted (a shared VM: the other vCPU, the host).
Measured warm vs typical (session 2, memif, --rt): risk+encode 130 vs 290 ns, TCP
segment 290 vs 470 ns. OpenOnload's answer is ONLOAD_MSG_WARM: run the send path on a
message that is not sent. Here, every ~WARM_EVERY_US of idle polling the loop runs:

* ``warm_order``: for one instrument (round robin), a dummy order at the touch: the
  risk verdict (``submit_new_dry``: the same checks, nothing counted, no token spent,
  no kill switch), the order table row its ClOrdID would take, the session's next
  SeqNum (read), and the NewOrderSingle encoded into ``E.txs`` *after* ``M_TXS_LEN``:
  free space, never part of what is sent (the transport sends ``E.txs[:M_TXS_LEN]``;
  the next real encode overwrites these bytes before the length covers them);
* the transport's ``warm_send`` (stack/tcp/fastpath.py): the same message into the TCP
  send ring's free space after TX_END and a whole segment into a scratch frame that
  never reaches the wire; no connection state changes;
* ``tx_touch``: the transmit ring's next descriptor and buffer (memif, client role:
  slots we own that the peer does not read until we publish the head), prefetched for
  writing, and the consumer index prefetched for reading. No store is made, so nothing
  can reach the peer.

What changes: nothing a test can observe except bytes in free space (asserted by
tests/engine/test_engine_warm.py). Cost: ~0.2-0.5 us every WARM_EVERY_US of idle time;
a frame arriving meanwhile waits for it (visible in ``poll_gap``, which the bench reports).
"""

from __future__ import annotations

from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from ..drivers.memif.datapath import BSIZE, CLIENT, ERROR, LINK, Q_BUF0, Q_LAST, Q_RING, Q_SIZE, ROLE, MemifState
from ..drivers.memif.proto import DESC_SIZE, RING_DESC, RING_TAIL
from ..mem.atomics import _byte_ptr, prefetch
from ..order import wire_layout as W
from ..order.layout import G_MAX_CLORDID, SIDE_BUY, SIDE_SELL, TIF_IOC
from ..order.oe_codec import enc_new_order
from ..order.orders import submit_new_dry
from ..order.session import SS_NEXT_OUT
from .layout import IM_SECID, M_STAMP_N, M_TXS_LEN, TOP_ASK, TOP_BID

WARM_EVERY_US = 25


@intrinsic
def prefetch_w(typingctx, buf, offset):
    """Prefetch the line at ``buf.data + offset`` for writing (``prefetchw``): it arrives
    exclusive, so the store that follows does not wait for other copies to be invalidated.
    A hint: never faults, never changes memory."""
    if not isinstance(buf, types.Array) or not isinstance(offset, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        arr, off = args
        ptr = _byte_ptr(context, builder, buf, arr, off)
        i32 = ir.IntType(32)
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), [ptr.type, i32, i32, i32]),
                                            "llvm.prefetch.p0")
        builder.call(fn, [ptr, ir.Constant(i32, 1), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return types.void(buf, types.intp), codegen


@njit(cache=True, _nrt=False)
def warm_order(E, i, now):
    """Risk and encoding of a dummy order on engine instrument ``i``, changing no state.
    Returns the length of the message left in ``E.txs`` at ``E.meta[M_TXS_LEN]`` (free
    space), 0 when there is no book to price it or no room."""
    off = E.meta[M_TXS_LEN]
    if i < 0 or i >= E.imap.shape[0] or off + W.MAX_FRAME > E.txs.shape[0]:
        return 0
    top = E.sv.top
    side = SIDE_BUY
    price = top[i, TOP_ASK]
    if price <= 0:
        side = SIDE_SELL
        price = top[i, TOP_BID]
    if price <= 0:
        return 0
    cid = E.risk.glob[G_MAX_CLORDID] + 1
    submit_new_dry(E.risk, E.orders, now, i, side, price, 1, cid)
    # the stamp row and the intents row the next order writes
    k = E.meta[M_STAMP_N] % E.stamps.shape[0]
    prefetch_w(E.stamps, k * E.stamps.strides[0])
    prefetch_w(E.intents, 0)
    return enc_new_order(E.txs, off, E.sess[SS_NEXT_OUT], now, cid, price, 1, E.imap[i, IM_SECID], side, TIF_IOC)


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
            prefetch_w(mem, ring + RING_DESC + slot * DESC_SIZE)
            buf = q[Q_BUF0] + slot * cfg[BSIZE]                   # a client's buffers are fixed per slot
            prefetch_w(mem, buf)
            prefetch_w(mem, buf + 64)
            prefetch_w(mem, buf + 128)
        return memif_touch
    return lambda port_state: None

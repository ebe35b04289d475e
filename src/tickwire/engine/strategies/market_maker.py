"""A quoting market maker: one bid and one ask around the mid, skewed against the position.

params: P_INSTR, P_HALF_SPREAD (ticks from the mid), P_QTY, P_SKEW (ticks per lot of
position), P_TICK (price increment, mantissa), P_MAX_POS (stop quoting the side that
would grow a position beyond this).
Quotes are moved with replace (keeps one order per side); when the book is not valid
(gap, recovery) both quotes are canceled.
"""

from __future__ import annotations

import sys

import numpy as np
from numba import njit

from ...order.layout import I_POSITION, O_PRICE, O_STATE, OS_WORKING, SIDE_BUY, SIDE_SELL, TIF_DAY
from ...order.orders import find
from ..layout import TOP_ASK, TOP_BID, TOP_VALID
from ..dispatch import register_strategy, view_type
from ..strategy import ignore_execution, ignore_trade, emit_cancel, emit_new, emit_replace, new_clordid

P_INSTR, P_HALF_SPREAD, P_QTY, P_SKEW, P_TICK, P_MAX_POS = range(6)
S_BID_ID, S_ASK_ID = 0, 1

View = view_type(__name__)
globals()[View.__name__] = View      # picklable by reference (Numba cache)


def params(instr=0, half_spread=2, qty=1, skew=1, tick=1, max_pos=10) -> np.ndarray:
    return np.array([instr, half_spread, qty, skew, tick, max_pos], np.int64)


@njit(cache=True, _nrt=False)
def _quote(v, out, k, i, slot, side, px, allowed):
    cid = v.state[slot]
    s = find(v.orders, cid) if cid > 0 else -1
    if s < 0:
        v.state[slot] = 0
        if allowed:
            cid = new_clordid(v)
            v.state[slot] = cid
            k = emit_new(out, k, i, side, px, v.params[P_QTY], TIF_DAY, cid)
        return k
    if v.orders.orders[s, O_STATE] != OS_WORKING:
        return k                        # an answer is pending: wait for it
    if not allowed:
        return emit_cancel(out, k, cid)
    if v.orders.orders[s, O_PRICE] != px:
        k = emit_replace(out, k, cid, px, v.params[P_QTY])
    return k


@njit(cache=True, _nrt=False)
def on_book_update(v, i, out):
    if i != v.params[P_INSTR]:
        return 0
    k = 0
    bid = v.top[i, TOP_BID]
    ask = v.top[i, TOP_ASK]
    if v.top[i, TOP_VALID] == 0 or bid <= 0 or ask <= 0:
        for slot in (S_BID_ID, S_ASK_ID):
            cid = v.state[slot]
            if cid > 0:
                s = find(v.orders, cid)
                if s >= 0 and v.orders.orders[s, O_STATE] == OS_WORKING:
                    k = emit_cancel(out, k, cid)
        return k
    tick = v.params[P_TICK]
    pos = v.inst[i, I_POSITION]
    mid = (bid + (ask - bid) // 2) // tick * tick
    shift = v.params[P_SKEW] * pos * tick
    half = v.params[P_HALF_SPREAD] * tick
    bpx = mid - half - shift
    apx = mid + half - shift
    if bpx >= ask:
        bpx = ask - tick            # never cross: a maker quotes, it does not take
    if apx <= bid:
        apx = bid + tick
    maxp = v.params[P_MAX_POS]
    k = _quote(v, out, k, i, S_BID_ID, SIDE_BUY, bpx, pos < maxp)
    k = _quote(v, out, k, i, S_ASK_ID, SIDE_SELL, apx, pos > -maxp)
    return k


on_trade = ignore_trade


# the order table already reflects the report; a finished quote is requoted on the
# next book update (its slot no longer finds a live order)
on_execution = ignore_execution


register_strategy(sys.modules[__name__])

"""A taker: crosses the spread with an IOC when the top of book is lopsided.

params: P_INSTR, P_QTY, P_IMBALANCE_PCT (e.g. 65: buy when the bid size is >= 65% of
bid+ask size, sell in the mirror case), P_COOLDOWN_NS (minimum time between orders,
so the strategy stays below the risk order rate), P_MAX_POS, P_REPEAT_NS (the same
side at the same price is not sent again within this time: an IOC that did not move the
book would only be sent again, and pre-trade risk rejects an identical order within its
duplicate window -- 1 ms by default, order/config.py -- so a taker that knows this does
not ask).
"""

from __future__ import annotations

import sys

import numpy as np
from numba import njit

from ...order.layout import I_POSITION, SIDE_BUY, SIDE_SELL, TIF_IOC
from ..layout import TOP_ASK, TOP_ASK_QTY, TOP_BID, TOP_BID_QTY, TOP_VALID
from ..dispatch import register_strategy, view_type
from ..strategy import ignore_execution, ignore_trade, emit_new, new_clordid

P_INSTR, P_QTY, P_IMBALANCE_PCT, P_COOLDOWN_NS, P_MAX_POS, P_REPEAT_NS = range(6)
S_LAST_ORDER_NS, S_LAST_SIDE, S_LAST_PRICE = range(3)
IDS_NOW = 1          # v.ids[1] is the engine's clock (ns), written before each callback

View = view_type(__name__)
globals()[View.__name__] = View      # picklable by reference (Numba cache)


def params(instr=0, qty=1, imbalance_pct=65, cooldown_ns=1_000_000, max_pos=10,
           repeat_ns=1_000_000) -> np.ndarray:
    return np.array([instr, qty, imbalance_pct, cooldown_ns, max_pos, repeat_ns], np.int64)


@njit(cache=True, _nrt=False)
def _take(v, out, i, now, side, price):
    """Send the IOC unless it repeats the last one (same side and price) too soon."""
    if (side == v.state[S_LAST_SIDE] and price == v.state[S_LAST_PRICE]
            and now - v.state[S_LAST_ORDER_NS] < v.params[P_REPEAT_NS]):
        return 0
    v.state[S_LAST_ORDER_NS] = now
    v.state[S_LAST_SIDE] = side
    v.state[S_LAST_PRICE] = price
    return emit_new(out, 0, i, side, price, v.params[P_QTY], TIF_IOC, new_clordid(v))


@njit(cache=True, _nrt=False)
def on_book_update(v, i, out):
    if i != v.params[P_INSTR] or v.top[i, TOP_VALID] == 0:
        return 0
    now = v.ids[IDS_NOW]
    if now - v.state[S_LAST_ORDER_NS] < v.params[P_COOLDOWN_NS]:
        return 0
    bq = v.top[i, TOP_BID_QTY]
    aq = v.top[i, TOP_ASK_QTY]
    bid = v.top[i, TOP_BID]
    ask = v.top[i, TOP_ASK]
    if bid <= 0 or ask <= 0 or bq + aq <= 0:
        return 0
    pct = v.params[P_IMBALANCE_PCT]
    pos = v.inst[i, I_POSITION]
    maxp = v.params[P_MAX_POS]
    if bq * 100 >= pct * (bq + aq) and pos < maxp:
        return _take(v, out, i, now, SIDE_BUY, ask)
    if aq * 100 >= pct * (bq + aq) and pos > -maxp:
        return _take(v, out, i, now, SIDE_SELL, bid)
    return 0


on_trade = ignore_trade


on_execution = ignore_execution


register_strategy(sys.modules[__name__])

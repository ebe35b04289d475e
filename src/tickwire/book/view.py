"""Python readers over the handler's book arrays (views, not copies, until formatted)."""

from __future__ import annotations

from ..sbe.codec import decimal_str
from .mbp import EMPTY_PX, IMPLIED_OFFER, NORD, PX, QTY

SIDE_NAMES = ("bid", "offer", "implied_bid", "implied_offer")
PRICE_EXPONENT = -9     # MDP 3.0 PRICE9 / PRICENULL9


def top_of_book(levels, slot):
    """(bid px, bid qty, offer px, offer qty) as raw mantissas; px EMPTY_PX when empty.
    Reads the array in place: ``levels[slot, side, 0]`` is the best row."""
    return (int(levels[slot, 0, 0, PX]), int(levels[slot, 0, 0, QTY]),
            int(levels[slot, 1, 0, PX]), int(levels[slot, 1, 0, QTY]))


def side_rows(levels, slot, side, depth, exponent=PRICE_EXPONENT):
    rows = []
    for i in range(depth):
        px, qty, n = (int(x) for x in levels[slot, side, i])
        if px == EMPTY_PX and qty == 0:
            rows.append(None)
        else:
            rows.append({"level": i + 1, "px": decimal_str(px, exponent) if px != EMPTY_PX else None,
                         "qty": qty, "orders": n})
    while rows and rows[-1] is None:
        rows.pop()
    return rows


def book_dict(st, slot, exponent=PRICE_EXPONENT):
    from ..feed.state import (I_DEPTH, I_IDEPTH, I_MBO_STATE, I_RPT, I_SECID, I_STATE, I_STATUS, I_UPDATES,
                              STATE_NAMES)
    inst = st.inst[slot]
    out = {"SecurityID": int(inst[I_SECID]), "state": STATE_NAMES[int(inst[I_STATE])], "RptSeq": int(inst[I_RPT]),
           "updates": int(inst[I_UPDATES]), "trading_status": int(inst[I_STATUS])}
    for side in range(IMPLIED_OFFER + 1):
        depth = int(inst[I_DEPTH] if side < 2 else inst[I_IDEPTH])
        out[SIDE_NAMES[side]] = side_rows(st.levels, slot, side, depth, exponent)
    if inst[I_MBO_STATE] != 0:      # this instrument has an order-by-order book
        import numpy as np
        from .mbo import mbo_depth
        out["mbo_state"] = STATE_NAMES[int(inst[I_MBO_STATE])]
        for side, name in ((0, "mbo_bid"), (1, "mbo_offer")):
            lv = np.zeros((int(inst[I_DEPTH]), 3), np.int64)
            n = mbo_depth(st.orders, slot, side, lv)
            out[name] = [{"px": decimal_str(int(p), exponent), "qty": int(q), "orders": int(c)} for p, q, c in lv[:n]]
    return out

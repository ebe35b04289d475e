"""Engine core against the simulated venue, in-process: market data through the real feed
handler, orders through risk, the FIXP session and the venue's matching engine, fills
back through reconciliation. Same seed, same run."""

import numpy as np

from inproc import INSTR, Harness
from tickwire.engine.build import feed_view
from tickwire.book.mbp import BID, EMPTY_PX, OFFER, PX, QTY
from tickwire.engine.layout import (M_BAD_INTENTS, M_EXEC_EVENTS, M_OE_GARBAGE, M_SENT_NEW, M_STAMP_N, TOP_ASK,
                                    TOP_BID)
from tickwire.feed.state import C_GAPS, C_LOST_PACKETS, I_STATE, S_SYNCED, slot_of
from tickwire.order.layout import G_KILL, I_POSITION, S_BAD_EXEC, S_FILLS
from tickwire.order.orders import exposure_consistent
from tickwire.order.session import SS_STATE, ST_ESTABLISHED
from tickwire.sim.matching import depth
from tickwire.sim.venue import V_EXECS_OUT, V_FILLS_OUT, V_GARBAGE, V_ORDERS_IN


def books_agree(h):
    for i, (secid, _, _) in enumerate(INSTR):
        fv = feed_view(h.E)
        s = slot_of(fv, secid)
        assert s >= 0 and fv.inst[s, I_STATE] == S_SYNCED
        for sd, side in ((0, BID), (1, OFFER)):
            out = np.zeros((10, 3), np.int64)
            n = depth(h.V.book, i, sd, 10, out)
            lv = fv.levels[s, side]
            for r in range(10):
                if r < n:
                    assert (lv[r, PX], lv[r, QTY]) == (out[r, 0], out[r, 1]), (i, sd, r)
                else:
                    assert lv[r, PX] == EMPTY_PX


def test_market_maker_round_trip_is_consistent():
    h = Harness("market_maker", dict(instr=0, tick=250_000_000, half_spread=1, qty=2, max_pos=6))
    h.connect()
    assert h.E.sess[SS_STATE] == ST_ESTABLISHED
    h.run(3000)
    E, V = h.E, h.V
    books_agree(h)
    assert feed_view(E).ctr[C_GAPS] == 0
    assert E.meta[M_SENT_NEW] > 0 and V.meta[V_ORDERS_IN] > 0
    assert E.meta[M_EXEC_EVENTS] == V.meta[V_EXECS_OUT]
    assert E.orders.stats[S_FILLS] == V.meta[V_FILLS_OUT] > 0
    assert E.orders.stats[S_BAD_EXEC] == 0 and E.risk.glob[G_KILL] == 0
    assert exposure_consistent(E.risk, E.orders)
    assert abs(E.risk.inst[0, I_POSITION]) <= 6 + 2
    assert V.meta[V_GARBAGE] == 0 and E.meta[M_OE_GARBAGE] == 0 and E.meta[M_BAD_INTENTS] == 0
    # every trade the venue printed reached on_trade exactly once (one feed, no loss here)
    from tickwire.engine.layout import M_TRADE_EVENTS
    from tickwire.sim.publisher import P_TRADES
    from tickwire.order.layout import I_LAST
    assert E.meta[M_TRADE_EVENTS] == V.pub.meta[P_TRADES] > 0
    assert E.risk.inst[0, I_LAST] > 0
    # the engine's view of the venue's resting client orders matches the venue
    from tickwire.sim.matching import N_OWNER, N_USED, N_QTY, N_CUM
    nd = V.book.nodes
    venue_open = int(sum(nd[n, N_QTY] - nd[n, N_CUM] for n in range(nd.shape[0]) if nd[n, N_USED] and nd[n, N_OWNER] == 1))
    from tickwire.order.layout import I_OPEN_BUY, I_OPEN_SELL
    assert venue_open == E.risk.inst[0, I_OPEN_BUY] + E.risk.inst[0, I_OPEN_SELL]


def test_taker_produces_stamped_orders():
    h = Harness("taker", dict(instr=1, imbalance_pct=60, cooldown_ns=0, max_pos=5))
    h.connect()
    h.run(2000)
    E = h.E
    assert E.meta[M_SENT_NEW] > 10
    assert E.meta[M_STAMP_N] == E.meta[M_SENT_NEW] or E.meta[M_STAMP_N] > 0
    assert abs(E.risk.inst[1, I_POSITION]) <= 5
    books_agree(h)


def test_taker_does_not_repeat_itself_into_the_duplicate_guard():
    """The taker remembers its last IOC: the same side and price again within repeat_ns is
    not sent, so pre-trade risk's duplicate-order guard (1 ms) never has to reject it.
    Control: with repeat_ns=0 the same run does hit the guard."""
    from tickwire.order.reasons import DUPLICATE_ORDER
    rejected = {}
    for repeat_ns in (1_000_000, 0):
        h = Harness("taker", dict(instr=1, imbalance_pct=60, cooldown_ns=0, max_pos=5, repeat_ns=repeat_ns))
        h.connect()
        h.run(2000)
        assert h.E.meta[M_SENT_NEW] > 10
        rejected[repeat_ns] = int(h.E.risk.rejects[DUPLICATE_ORDER])
    assert rejected[1_000_000] == 0
    assert rejected[0] > 0


def test_same_seed_same_run():
    a = Harness("market_maker", dict(instr=0, tick=250_000_000), seed=5)
    b = Harness("market_maker", dict(instr=0, tick=250_000_000), seed=5)
    for h in (a, b):
        h.connect()
        h.run(500)
    assert (a.E.risk.inst == b.E.risk.inst).all()
    assert (a.V.book.levels == b.V.book.levels).all()

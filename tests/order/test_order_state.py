"""Order state machine reconciled with execution reports, and a hypothesis fuzz of strategy
output + venue behaviour: absurd orders never pass, exposure bookkeeping never drifts,
position never leaves its limit."""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tickwire.order import reasons as R
from tickwire.order.config import InstrumentLimits, RiskConfig, build_risk_state
from tickwire.order.layout import (EXEC_CANCEL_REJECT, EXEC_CANCELED, EXEC_NEW, EXEC_REJECTED, EXEC_REPLACED,
                                   EXEC_TRADE, G_KILL, G_KILL_REASON, I_CASH_TICKS, I_OPEN_BUY, I_OPEN_SELL,
                                   I_POSITION, O_CUM, O_LEAVES, O_PRICE, O_QTY, O_STATE, OS_PENDING_CANCEL,
                                   OS_PENDING_REPLACE, OS_WORKING, S_BAD_EXEC, S_LIVE, S_UNKNOWN_EXEC, SIDE_BUY,
                                   SIDE_SELL, STATUS_READY_TO_TRADE, TIF_DAY)
from tickwire.order.orders import (REC_BAD, REC_OK, REC_UNKNOWN, collect_cancels, exposure_consistent, find,
                                   new_order_table, reconcile, submit_cancel, submit_new, submit_replace)
from tickwire.order.risk import market_update, session_changed, status_update

T0 = 10**12
TICK = 25
MID = 500_000
LIM = dict(max_qty=10, max_notional=MID * 8, collar=10 * TICK, position_limit=20, tick=TICK)


def make(kill_on=None, cap=64, lim=None, **kw):
    cfg = RiskConfig(instruments=[InstrumentLimits(**(lim or LIM))], **kw)
    if kill_on is not None:
        cfg.kill_on = kill_on
    rs = build_risk_state(cfg)
    session_changed(rs, True)
    status_update(rs, 0, STATUS_READY_TO_TRADE, 0, 0)
    market_update(rs, 0, MID - TICK, MID + TICK, 0, 1, T0)
    return rs, new_order_table(cap)


def test_new_ack_partial_fill_full_fill():
    rs, t = make()
    assert submit_new(rs, t, T0, 0, SIDE_BUY, MID, 5, TIF_DAY, 1) == R.OK
    assert reconcile(rs, t, EXEC_NEW, 1, 900, 0, 0) == REC_OK
    s = find(t, 1)
    assert t.orders[s, O_STATE] == OS_WORKING
    assert reconcile(rs, t, EXEC_TRADE, 1, 900, 2, MID) == REC_OK
    assert rs.inst[0, I_POSITION] == 2 and rs.inst[0, I_OPEN_BUY] == 3
    assert t.orders[s, O_LEAVES] == 3 and t.orders[s, O_CUM] == 2
    assert reconcile(rs, t, EXEC_TRADE, 1, 900, 3, MID - TICK) == REC_OK
    assert find(t, 1) == -1 and t.stats[S_LIVE] == 0
    assert rs.inst[0, I_OPEN_BUY] == 0 and rs.inst[0, I_POSITION] == 5
    assert rs.inst[0, I_CASH_TICKS] == -(2 * (MID // TICK) + 3 * ((MID - TICK) // TICK))
    # a late duplicate fill for a finished order is counted and ignored
    assert reconcile(rs, t, EXEC_TRADE, 1, 900, 3, MID) == REC_UNKNOWN
    assert rs.inst[0, I_POSITION] == 5 and t.stats[S_UNKNOWN_EXEC] == 1


def test_overfill_is_a_venue_error_that_kills():
    rs, t = make()
    submit_new(rs, t, T0, 0, SIDE_SELL, MID, 2, TIF_DAY, 1)
    assert reconcile(rs, t, EXEC_TRADE, 1, 5, 3, MID) == REC_BAD
    assert rs.glob[G_KILL] == 1 and rs.glob[G_KILL_REASON] == R.KILL_VENUE_ERROR
    assert t.stats[S_BAD_EXEC] == 1
    assert rs.inst[0, I_POSITION] == 0 and rs.inst[0, I_OPEN_SELL] == 2   # state untouched
    assert exposure_consistent(rs, t)


def test_cancel_and_cancel_reject():
    rs, t = make()
    submit_new(rs, t, T0, 0, SIDE_SELL, MID, 4, TIF_DAY, 1)
    reconcile(rs, t, EXEC_NEW, 1, 7, 0, 0)
    assert submit_cancel(rs, t, T0, 1) == R.OK
    assert t.orders[find(t, 1), O_STATE] == OS_PENDING_CANCEL
    assert submit_cancel(rs, t, T0, 1) == R.NOT_CANCELABLE
    assert reconcile(rs, t, EXEC_CANCEL_REJECT, 1, 7, 0, 0) == REC_OK
    assert t.orders[find(t, 1), O_STATE] == OS_WORKING
    assert submit_cancel(rs, t, T0, 1) == R.OK
    assert reconcile(rs, t, EXEC_CANCELED, 1, 7, 0, 0) == REC_OK
    assert find(t, 1) == -1 and rs.inst[0, I_OPEN_SELL] == 0
    assert submit_cancel(rs, t, T0, 1) == R.UNKNOWN_ORDER


def test_replace_reserves_the_larger_until_acked():
    rs, t = make()
    submit_new(rs, t, T0, 0, SIDE_BUY, MID, 4, TIF_DAY, 1)
    reconcile(rs, t, EXEC_NEW, 1, 7, 0, 0)
    assert submit_replace(rs, t, T0, 1, MID - TICK, 8) == R.OK
    s = find(t, 1)
    assert t.orders[s, O_STATE] == OS_PENDING_REPLACE and rs.inst[0, I_OPEN_BUY] == 8
    # fill on the old terms while the replace is in flight
    reconcile(rs, t, EXEC_TRADE, 1, 7, 1, MID)
    assert rs.inst[0, I_OPEN_BUY] == 7                # max(leaves 3, new leaves 8-1)
    assert reconcile(rs, t, EXEC_REPLACED, 1, 7, 0, 0) == REC_OK
    assert t.orders[s, O_PRICE] == MID - TICK and t.orders[s, O_QTY] == 8 and t.orders[s, O_LEAVES] == 7
    assert exposure_consistent(rs, t)
    # replace down, venue refuses: back to the working terms
    assert submit_replace(rs, t, T0 + 10**7, 1, MID - TICK, 3) == R.OK
    assert reconcile(rs, t, EXEC_CANCEL_REJECT, 1, 7, 0, 0) == REC_OK
    assert rs.inst[0, I_OPEN_BUY] == 7 and exposure_consistent(rs, t)
    # replace to a total at or below the traded qty is refused locally
    assert submit_replace(rs, t, T0 + 2 * 10**7, 1, MID, 1) == R.BAD_QTY


def test_replace_that_breaches_position_is_refused():
    rs, t = make(kill_on=(), lim=dict(LIM, max_notional=MID * 100))
    submit_new(rs, t, T0, 0, SIDE_BUY, MID, 8, TIF_DAY, 1)
    submit_new(rs, t, T0, 0, SIDE_BUY, MID - TICK, 8, TIF_DAY, 2)
    submit_new(rs, t, T0, 0, SIDE_BUY, MID - 2 * TICK, 4, TIF_DAY, 3)     # 20 open = the limit
    reconcile(rs, t, EXEC_NEW, 1, 7, 0, 0)
    assert submit_replace(rs, t, T0, 1, MID - 3 * TICK, 8) == R.OK          # same size: no extra exposure
    reconcile(rs, t, EXEC_REPLACED, 1, 7, 0, 0)
    assert reconcile(rs, t, EXEC_TRADE, 1, 7, 4, MID - 3 * TICK) == REC_OK
    # position 4 + open 4 + 8 + 4 = 20; raising order 1's total to 9 needs one more
    assert submit_replace(rs, t, T0 + 10**8, 1, MID, 9) == R.POSITION_LIMIT
    assert submit_replace(rs, t, T0 + 10**8, 1, MID, 8) == R.OK
    assert exposure_consistent(rs, t)


def test_reject_and_unexpected_reports():
    rs, t = make()
    submit_new(rs, t, T0, 0, SIDE_BUY, MID, 1, TIF_DAY, 1)
    assert reconcile(rs, t, EXEC_REPLACED, 1, 0, 0, 0) == REC_BAD
    rs, t = make()
    submit_new(rs, t, T0, 0, SIDE_BUY, MID, 1, TIF_DAY, 1)
    assert reconcile(rs, t, EXEC_REJECTED, 1, 0, 0, 0) == REC_OK
    assert find(t, 1) == -1 and rs.inst[0, I_OPEN_BUY] == 0
    assert reconcile(rs, t, 99, 1, 0, 0, 0) == REC_UNKNOWN


def test_table_slot_in_use_is_refused_before_risk_spends_tokens():
    rs, t = make(cap=4)
    for cid in (1, 2, 3, 4):
        assert submit_new(rs, t, T0, 0, SIDE_BUY, MID - cid * TICK, 1, TIF_DAY, cid) == R.OK
    assert submit_new(rs, t, T0, 0, SIDE_BUY, MID, 1, TIF_DAY, 5) == R.TABLE_FULL   # slot 1 busy


def test_collect_cancels_lists_live_orders_once():
    rs, t = make()
    for cid in (1, 2, 3):
        submit_new(rs, t, T0, 0, SIDE_SELL, MID + cid * TICK, 1, TIF_DAY, cid)
    submit_cancel(rs, t, T0, 2)
    out = np.zeros(8, np.int64)
    n = collect_cancels(t, out)
    assert sorted(out[:n]) == [1, 3]


# ---------------------------------------------------------------------------------------------
# Fuzz: a strategy emitting anything, a venue answering anything plausible.

int64s = st.integers(-2**63, 2**63 - 1)
qtys = st.one_of(st.integers(-5, 15), int64s)
prices = st.one_of(st.integers(MID - 30 * TICK, MID + 30 * TICK), st.integers(-10, 10) .map(lambda k: MID + k * TICK),
                   int64s)
actions = st.lists(st.tuples(
    st.sampled_from(["new", "new", "cancel", "replace", "venue", "venue", "venue", "time"]),
    st.sampled_from([SIDE_BUY, SIDE_SELL, 0, 7]), prices, qtys, st.integers(0, 10**9), st.integers(0, 50)),
    max_size=120)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(actions, st.booleans())
def test_fuzzed_strategy_output_never_passes_risk(acts, kill_on_breach):
    rs, t = make(kill_on=None if kill_on_breach else (), order_rate=50, order_burst=5, cap=64)
    now = T0
    cid = 0
    live = {}          # cid -> dict, venue's view
    sent = []          # (now, side, price, qty) of every order that passed risk
    max_pos = 0
    for kind, side, price, qty, dt, pick in acts:
        if kind == "time":
            now += dt
            market_update(rs, 0, MID - TICK, MID + TICK, 0, 1, now)
            continue
        if kind == "new":
            cid += 1
            r = submit_new(rs, t, now, 0, side, price, qty, TIF_DAY, cid)
            if r == R.OK:
                sent.append((now, side, price, qty))
                live[cid] = dict(state="pn", leaves=qty, side=side, pend=None)
        elif kind == "cancel" and live:
            c = sorted(live)[pick % len(live)]
            if submit_cancel(rs, t, now, c) == R.OK:
                live[c]["state"] = "pc"
        elif kind == "replace" and live:
            c = sorted(live)[pick % len(live)]
            if submit_replace(rs, t, now, c, price, qty) == R.OK:
                assert 0 < qty <= LIM["max_qty"] and abs(price - MID) <= LIM["collar"]
                live[c]["state"] = "pr"
                live[c]["pend"] = qty
        elif kind == "venue" and live:
            c = sorted(live)[pick % len(live)]
            o = live[c]
            s = find(t, c)
            if o["state"] == "pn" and dt % 3 == 0:
                assert reconcile(rs, t, EXEC_REJECTED, c, 0, 0, 0) == REC_OK
                del live[c]
            elif dt % 2 == 0:
                q = 1 + dt % max(1, int(t.orders[s, O_LEAVES]))
                px = int(t.orders[s, O_PRICE])        # a resting order fills at its limit
                assert reconcile(rs, t, EXEC_TRADE, c, c, q, px) == REC_OK
                if o["state"] == "pn":
                    o["state"] = "w"      # a fill implies the ack
                if t.orders[s, O_STATE] == 0 or find(t, c) < 0:
                    del live[c]
            elif o["state"] == "pr":
                reconcile(rs, t, EXEC_REPLACED, c, c, 0, 0)
                o["state"] = "w"
                if find(t, c) < 0:
                    del live[c]
            else:
                assert reconcile(rs, t, EXEC_CANCELED, c, c, 0, 0) == REC_OK
                del live[c]
        assert exposure_consistent(rs, t)
        pos = int(rs.inst[0, I_POSITION])
        assert abs(pos) <= LIM["position_limit"]
        assert pos + rs.inst[0, I_OPEN_BUY] <= LIM["position_limit"]
        assert pos - rs.inst[0, I_OPEN_SELL] >= -LIM["position_limit"]
    for ts, side, price, qty in sent:
        assert side in (SIDE_BUY, SIDE_SELL)
        assert 0 < qty <= LIM["max_qty"]
        assert price % TICK == 0 and abs(price - MID) <= LIM["collar"]
        assert qty * price <= LIM["max_notional"]
    # order rate: never more than burst + rate * elapsed
    if sent:
        span = sent[-1][0] - sent[0][0]
        assert len(sent) <= 5 + 50 * span // 10**9 + 1
    if kill_on_breach and rs.rejects[[R.MAX_QTY, R.BAD_QTY, R.PRICE_COLLAR, R.BAD_PRICE]].sum():
        assert rs.glob[G_KILL] == 1


def test_fills_an_order_could_not_have_had_are_venue_errors():
    """Through the limit (a buy above, a sell below), off the tick grid, or so large that
    the cash in ticks would overflow: not booked, counted, the kill switch engaged."""
    one = dict(LIM, tick=1, collar=10)     # a 1-unit tick: price x qty can overflow int64
    cases = [(SIDE_BUY, MID + TICK, 1, LIM), (SIDE_SELL, MID - TICK, 1, LIM), (SIDE_BUY, MID - 1, 1, LIM),
             (SIDE_SELL, 1 << 62, 2, one)]
    for side, px, qty, lim in cases:
        rs, t = make(lim=lim)
        assert submit_new(rs, t, T0, 0, side, MID, 2, TIF_DAY, 1) == R.OK
        assert reconcile(rs, t, EXEC_TRADE, 1, 5, qty, px) == REC_BAD, (side, px)
        assert rs.glob[G_KILL] == 1 and rs.glob[G_KILL_REASON] == R.KILL_VENUE_ERROR
        assert rs.inst[0, I_POSITION] == 0 and rs.inst[0, I_CASH_TICKS] == 0 and t.stats[S_BAD_EXEC] == 1
    # price improvement is a fill like any other
    rs, t = make()
    submit_new(rs, t, T0, 0, SIDE_SELL, MID, 2, TIF_DAY, 1)
    assert reconcile(rs, t, EXEC_TRADE, 1, 5, 2, MID + 4 * TICK) == REC_OK
    assert rs.inst[0, I_CASH_TICKS] == 2 * (MID // TICK + 4)

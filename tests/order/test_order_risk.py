"""Pre-trade risk: one test per check, plus the kill switch and the token buckets."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from tickwire.order import reasons as R
from tickwire.order.config import InstrumentLimits, RiskConfig, build_risk_state, reject_counts
from tickwire.order.layout import (G_KILL, G_KILL_REASON, I_OPEN_BUY, I_OPEN_SELL, SIDE_BUY, SIDE_SELL,
                                   STATUS_READY_TO_TRADE)
from tickwire.order.risk import check_cancel, check_new, check_new_dry, commit_new, kill_engage, kill_reset, market_update, \
    session_changed, status_update

T0 = 1_000_000_000_000
TICK = 250_000_000            # 0.25 in PRICE9
MID = 5000 * 1_000_000_000    # 5000.00


def make(**kw):
    inst = kw.pop("inst", dict(max_qty=10, max_notional=MID * 20, collar=10 * TICK, position_limit=15, tick=TICK))
    cfg = RiskConfig(instruments=[InstrumentLimits(**inst), InstrumentLimits(**inst)], **kw)
    rs = build_risk_state(cfg)
    session_changed(rs, True)
    for i in range(2):
        status_update(rs, i, STATUS_READY_TO_TRADE, 0, 0)
        market_update(rs, i, MID - TICK, MID + TICK, 0, 1, T0)
    return rs


class Ids:
    def __init__(self):
        self.n = 0

    def __call__(self):
        self.n += 1
        return self.n


def new(rs, ids, side=SIDE_BUY, price=MID, qty=1, i=0, now=T0, commit=True):
    cid = ids()
    r = check_new(rs, now, i, side, price, qty, cid)
    if r == R.OK and commit:
        commit_new(rs, now, i, side, price, qty, cid)
    return r


def test_accepts_a_sane_order_and_reserves_exposure():
    rs, ids = make(), Ids()
    assert new(rs, ids, qty=3) == R.OK
    assert rs.inst[0, I_OPEN_BUY] == 3 and rs.inst[0, I_OPEN_SELL] == 0
    assert rs.rejects.sum() == 0


@pytest.mark.parametrize("kw,reason", [
    (dict(qty=0), R.BAD_QTY), (dict(qty=-5), R.BAD_QTY), (dict(qty=11), R.MAX_QTY),
    (dict(qty=2**62), R.MAX_QTY), (dict(price=0), R.BAD_PRICE), (dict(price=-MID), R.BAD_PRICE),
    (dict(price=MID + 1), R.TICK_SIZE), (dict(price=MID + 11 * TICK), R.PRICE_COLLAR),
    (dict(price=MID - 11 * TICK, side=SIDE_SELL), R.PRICE_COLLAR),
    (dict(price=2**63 - 1 - ((2**63 - 1) % TICK)), R.PRICE_COLLAR), (dict(side=3), R.BAD_SIDE),
    (dict(i=2), R.BAD_INSTRUMENT), (dict(i=-1), R.BAD_INSTRUMENT),
])
def test_each_refusal_is_counted_under_its_reason(kw, reason):
    rs, ids = make(), Ids()
    assert new(rs, ids, **kw) == reason
    assert rs.rejects[reason] == 1 and rs.rejects.sum() == 1
    assert rs.inst[:, I_OPEN_BUY].sum() == 0


def test_notional_cap_by_division_without_overflow():
    rs, ids = make(inst=dict(max_qty=10**9, max_notional=MID * 5, collar=10 * TICK, position_limit=10**9, tick=TICK),
                   kill_on=()), Ids()
    assert new(rs, ids, qty=5) == R.OK
    assert new(rs, ids, qty=6) == R.MAX_NOTIONAL
    assert new(rs, ids, qty=10**9) == R.MAX_NOTIONAL


def test_position_limit_counts_open_orders_and_position():
    rs, ids = make(kill_on=()), Ids()
    assert new(rs, ids, qty=10) == R.OK
    assert new(rs, ids, qty=5, price=MID - TICK) == R.OK          # 15 open
    assert new(rs, ids, qty=1, price=MID - 2 * TICK) == R.POSITION_LIMIT
    # sells are limited on their own side: -15 allowed
    assert new(rs, ids, qty=10, side=SIDE_SELL) == R.OK
    assert new(rs, ids, qty=5, side=SIDE_SELL, price=MID + TICK) == R.OK
    assert new(rs, ids, qty=1, side=SIDE_SELL, price=MID + 2 * TICK) == R.POSITION_LIMIT


def test_trading_status_and_stale_book():
    rs, ids = make(kill_on=()), Ids()
    status_update(rs, 0, 2, 0, 0)   # Halt
    assert new(rs, ids) == R.TRADING_STATUS
    status_update(rs, 0, STATUS_READY_TO_TRADE, 0, 0)
    market_update(rs, 0, MID - TICK, MID + TICK, 0, 0, T0)  # book invalid (gap)
    assert new(rs, ids) == R.STALE_BOOK
    market_update(rs, 0, MID - TICK, MID + TICK, 0, 1, T0)
    assert new(rs, ids, now=T0 + 2_000_000_001) == R.STALE_BOOK   # default stale_ns = 2 s
    assert new(rs, ids, now=T0 + 1_000) == R.OK


def test_exchange_price_band():
    rs, ids = make(kill_on=()), Ids()
    status_update(rs, 0, STATUS_READY_TO_TRADE, MID + TICK, MID - TICK)
    assert new(rs, ids, price=MID + 2 * TICK) == R.PRICE_BAND
    assert new(rs, ids, price=MID + TICK) == R.OK


def test_no_reference_price():
    rs, ids = make(kill_on=()), Ids()
    market_update(rs, 0, 0, 0, 0, 1, T0)
    assert new(rs, ids) == R.NO_REFERENCE


def test_duplicate_clordid_and_duplicate_order():
    rs = make(kill_on=())
    assert check_new(rs, T0, 0, SIDE_BUY, MID, 1, 7) == R.OK
    commit_new(rs, T0, 0, SIDE_BUY, MID, 1, 7)
    assert check_new(rs, T0 + 10**7, 0, SIDE_BUY, MID - TICK, 1, 7) == R.DUPLICATE_CLORDID
    assert check_new(rs, T0 + 10**7, 0, SIDE_BUY, MID - TICK, 1, 3) == R.DUPLICATE_CLORDID
    # same side/price/qty within the 1 ms window: duplicate; after it: fine
    assert check_new(rs, T0 + 500_000, 0, SIDE_BUY, MID, 1, 8) == R.DUPLICATE_ORDER
    assert check_new(rs, T0 + 1_000_001, 0, SIDE_BUY, MID, 1, 9) == R.OK


def test_order_token_bucket_refills_with_time():
    rs, ids = make(order_rate=10, order_burst=3, kill_on=()), Ids()
    res = [new(rs, ids, price=MID - k * TICK) for k in range(5)]
    assert res == [R.OK] * 3 + [R.ORDER_RATE] * 2
    # 10/s -> one token per 100 ms
    assert new(rs, ids, now=T0 + 99_000_000, price=MID + TICK) == R.ORDER_RATE
    assert new(rs, ids, now=T0 + 200_000_000, price=MID + 2 * TICK) == R.OK
    assert rs.rejects[R.ORDER_RATE] == 3


def test_message_bucket_covers_cancels_and_blocks_new():
    rs, ids = make(message_rate=1, message_burst=2, kill_on=()), Ids()
    assert new(rs, ids) == R.OK
    assert check_cancel(rs, T0) == R.OK
    assert check_cancel(rs, T0) == R.MESSAGE_RATE
    assert new(rs, ids, price=MID - TICK) == R.MESSAGE_RATE
    assert rs.glob[G_KILL] == 0          # kill_on=() : a rate refusal only blocks


def test_limit_breach_trips_kill_switch_and_it_latches():
    rs, ids = make(), Ids()
    assert new(rs, ids, qty=1000) == R.MAX_QTY
    assert rs.glob[G_KILL] == 1 and rs.glob[G_KILL_REASON] == R.KILL_BREACH
    assert new(rs, ids) == R.KILLED
    session_changed(rs, False)
    session_changed(rs, True)            # session coming back does not clear a breach
    assert rs.glob[G_KILL] == 1
    kill_reset(rs)
    assert new(rs, ids) == R.OK
    assert reject_counts(rs) == {"max_qty": 1, "killed": 1}


def test_session_loss_kill_clears_on_reconnect_but_manual_does_not():
    rs, ids = make(), Ids()
    session_changed(rs, False)
    assert rs.glob[G_KILL_REASON] == R.KILL_SESSION_LOSS
    assert new(rs, ids) == R.KILLED
    session_changed(rs, True)
    assert new(rs, ids) == R.OK
    kill_engage(rs, R.KILL_MANUAL)
    session_changed(rs, True)
    assert new(rs, ids, price=MID - TICK) == R.KILLED


def test_stale_clock_going_backwards_never_refills():
    rs, ids = make(order_rate=1, order_burst=1, kill_on=()), Ids()
    assert new(rs, ids) == R.OK
    assert new(rs, ids, now=T0 - 10**12, price=MID - TICK) == R.ORDER_RATE
    assert new(rs, ids, now=T0 + 10, price=MID - 2 * TICK) == R.ORDER_RATE


def test_config_rejects_absurd_limits():
    with pytest.raises(ValueError):
        build_risk_state(RiskConfig(order_rate=0))
    with pytest.raises(ValueError):
        build_risk_state(RiskConfig(instruments=[InstrumentLimits(max_qty=0)]))
    with pytest.raises(ValueError):
        build_risk_state(RiskConfig(kill_on=(999,)))
    cfg = RiskConfig.from_dict({"instruments": [{"max_qty": 3, "tick": 5}], "kill_on": ["max_qty"]})
    rs = build_risk_state(cfg)
    assert rs.limits[0, 0] == 3


def _risk_arrays(rs):
    return [a.copy() for a in rs]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([SIDE_BUY, SIDE_SELL, 0, 3]), st.integers(-3, 14),
                          st.integers(-12, 12), st.integers(0, 2), st.integers(-2, 3), st.integers(0, 3_000_000)),
                min_size=1, max_size=40))
def test_dry_check_answers_as_check_new_and_changes_nothing(orders):
    """check_new_dry (the engine's idle warm-up, engine/warm.py) must give the verdict
    check_new gives, for every reason including the rate buckets, and leave every
    risk array as it was (no count, no token, no kill switch)."""
    rs = make(order_rate=5, order_burst=3, message_rate=1000, message_burst=4)
    now, cid = T0, 0
    for side, qty, dpx, i, dcid, dt in orders:
        now += dt
        cid = max(cid + dcid, 0)
        price = MID + dpx * TICK
        before = _risk_arrays(rs)
        dry = check_new_dry(rs, now, i, side, price, qty, cid)
        assert all(np.array_equal(a, b) for a, b in zip(before, rs))
        r = check_new(rs, now, i, side, price, qty, cid)
        assert dry == r
        if r == R.OK:
            commit_new(rs, now, i, side, price, qty, cid)


# --- session 4: the checks without a division agree with the arithmetic they replace -------

@settings(max_examples=400, deadline=None)
@given(st.one_of(st.integers(1, 10**12), st.integers(0, 62).map(lambda k: 1 << k),
                 st.integers(1, 10**6).map(lambda k: k * 250_000_000)),
       st.integers(1, 2**63 - 1), st.booleans())
def test_tick_test_without_division_agrees_with_modulo(tick, price, multiple):
    from tickwire.order.config import tick_divisibility
    from tickwire.order.layout import L_N, L_TICK_INV, L_TICK_MAXQ, L_TICK_SHIFT
    from tickwire.order.risk import _on_tick
    if multiple:                                  # half the cases on the tick grid
        price = max(tick, price - price % tick)
    lim = np.zeros((1, L_N), np.int64)
    lim[0, L_TICK_INV], lim[0, L_TICK_SHIFT], lim[0, L_TICK_MAXQ] = tick_divisibility(tick)
    assert _on_tick(lim, 0, price) == (price % tick == 0)


@settings(max_examples=400, deadline=None)
@given(st.integers(1, 2**30 - 1), st.integers(1, 2**63 - 1), st.integers(1, 2**63 - 1))
def test_notional_without_division_agrees_with_the_exact_product(qty, price, cap):
    from tickwire.order.risk import _over_notional
    assert _over_notional(qty, price, cap) == (qty * price > cap)      # Python ints: exact


class _BucketModel:
    """The token bucket as documented (risk.py), in Python integers: refill by elapsed time
    (capped at full, never on a clock step back), a new order needs a token in both buckets
    before either is spent, a cancel needs a message token."""

    def __init__(self, rate, burst):
        self.rate, self.full, self.tok, self.ts = rate, burst * 10**9, burst * 10**9, 0

    def refilled(self, now):
        if now - self.ts <= 0:
            return self.tok
        return min(self.full, self.tok + (now - self.ts) * self.rate)

    def store(self, now, t):
        self.tok = t
        self.ts = max(self.ts, now)


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 50), st.integers(1, 5), st.integers(1, 80), st.integers(1, 8),
       st.lists(st.tuples(st.integers(-50_000_000, 400_000_000), st.booleans()), min_size=1, max_size=60))
def test_token_buckets_follow_the_reference_model(o_rate, o_burst, m_rate, m_burst, steps):
    """Each bucket is refilled once per order now (the refill limits precomputed by the
    config): the verdicts and the buckets must still be exactly those of the model."""
    from tickwire.order.layout import G_MSG_TOKENS, G_MSG_TS, G_ORD_TOKENS, G_ORD_TS
    rs = make(order_rate=o_rate, order_burst=o_burst, message_rate=m_rate, message_burst=m_burst, kill_on=())
    o, m = _BucketModel(o_rate, o_burst), _BucketModel(m_rate, m_burst)
    now = T0
    for k, (dt, is_new) in enumerate(steps):
        now += dt
        if is_new:
            px = MID + (k % 3 - 1) * TICK
            r = check_new(rs, now, 0, SIDE_BUY, px, 1, k + 1)     # no commit: no duplicate guard
            tm, to = m.refilled(now), o.refilled(now)
            want = R.MESSAGE_RATE if tm < 10**9 else R.ORDER_RATE if to < 10**9 else R.OK
            if want == R.OK:
                m.store(now, tm - 10**9)
                o.store(now, to - 10**9)
        else:
            r = check_cancel(rs, now)
            tm = m.refilled(now)
            want = R.OK if tm >= 10**9 else R.MESSAGE_RATE
            m.store(now, tm - 10**9 if want == R.OK else tm)
        assert r == want, (k, dt, is_new)
        assert (rs.glob[G_ORD_TOKENS], rs.glob[G_ORD_TS]) == (o.tok, o.ts)
        assert (rs.glob[G_MSG_TOKENS], rs.glob[G_MSG_TS]) == (m.tok, m.ts)

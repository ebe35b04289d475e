"""The Numba matching engine against the pure-Python reference, on seeded random flow,
plus hand-written price-time-priority cases."""

import numpy as np
import pytest

from reference_matching import RefBook
from tickwire.sim.matching import (BUY, E_LEAVES, E_OID, E_PRICE, E_QTY, E_TYPE, EV_ACK, EV_CANCELED, EV_FILL,
                                   EV_REJECTED, EV_TRADE, M_EV_DROPPED, M_FREE_TOP, OID_MASK, SELL, T_DAY, T_IOC,
                                   T_MARKET, cancel_order, depth, drain, new_book, new_order, replace_order,
                                   top_of_book)

INSTR = [(1_000_000, 25), (50_000, 1)]


def rows(ev):
    return [tuple(int(x) for x in r) for r in ev]


def test_price_then_time_priority():
    b = new_book(INSTR, n_levels=256)
    a = new_order(b, 0, SELL, 1_000_100, 5, T_DAY, 1, 11)
    c = new_order(b, 0, SELL, 1_000_100, 5, T_DAY, 2, 21)
    d = new_order(b, 0, SELL, 1_000_075, 1, T_DAY, 3, 31)   # better price, later
    drain(b)
    new_order(b, 0, BUY, 1_000_100, 4, T_DAY, 9, 91)
    ev = drain(b)
    fills = [(int(r[E_OID]), int(r[E_QTY]), int(r[E_PRICE])) for r in ev if r[E_TYPE] == EV_FILL and r[1] != 9]
    assert fills == [(d, 1, 1_000_075), (a, 3, 1_000_100)]
    tob = np.zeros(4, np.int64)
    top_of_book(b, 0, tob)
    assert list(tob) == [0, 0, 1_000_100, 7]
    out = np.zeros((4, 3), np.int64)
    assert depth(b, 0, 1, 4, out) == 1 and list(out[0]) == [1_000_100, 7, 2]
    assert c > 0


def test_ioc_and_market_remainders_are_canceled():
    b = new_book(INSTR, n_levels=256)
    new_order(b, 1, BUY, 50_010, 3, T_DAY, 1, 1)
    drain(b)
    new_order(b, 1, SELL, 50_000, 5, T_IOC, 2, 2)
    ev = drain(b)
    assert [int(r[E_TYPE]) for r in ev] == [EV_ACK, EV_FILL, EV_FILL, EV_TRADE, 6, EV_CANCELED]
    assert ev[-1][E_QTY] == 2
    new_order(b, 1, BUY, 0, 4, T_MARKET, 3, 3)          # empty ask side: all canceled
    ev = drain(b)
    assert [int(r[E_TYPE]) for r in ev] == [EV_ACK, EV_CANCELED]


def test_bad_input_is_rejected_not_crashing():
    b = new_book(INSTR, n_levels=64)
    for args in [(5, BUY, 1_000_000, 1), (-1, BUY, 1_000_000, 1), (0, 3, 1_000_000, 1), (0, BUY, 1_000_001, 1),
                 (0, BUY, 10**18, 1), (0, BUY, -25, 1), (0, BUY, 1_000_000, 0), (0, BUY, 1_000_000, 2**62)]:
        assert new_order(b, *args, T_DAY, 1, 1) == 0
    ev = drain(b)
    assert all(r[E_TYPE] == EV_REJECTED for r in ev) and len(ev) == 8
    assert not cancel_order(b, 12345, 1, 1) and not cancel_order(b, -1, 1, 1) and not cancel_order(b, 2**62, 1, 1)
    oid = new_order(b, 0, BUY, 1_000_000, 1, T_DAY, 1, 1)
    assert not cancel_order(b, oid, 2, 1)                 # not the owner
    assert cancel_order(b, oid, 1, 1) and not cancel_order(b, oid, 1, 1)


def test_node_reuse_refuses_stale_order_ids():
    b = new_book(INSTR, n_levels=64, capacity=4)
    oid = new_order(b, 0, BUY, 1_000_000, 1, T_DAY, 1, 1)
    cancel_order(b, oid, 1, 1)
    oid2 = new_order(b, 0, BUY, 1_000_000, 1, T_DAY, 1, 2)
    assert oid2 & OID_MASK == oid & OID_MASK and oid2 != oid
    assert not cancel_order(b, oid, 1, 1)
    for k in range(3):
        new_order(b, 0, BUY, 1_000_000, 1, T_DAY, 1, 3 + k)
    assert new_order(b, 0, BUY, 1_000_000, 1, T_DAY, 1, 9) == 0   # book full -> rejected
    assert b.meta[M_FREE_TOP] == 0


@pytest.mark.parametrize("seed", range(12))
def test_same_events_as_reference(seed):
    rng = np.random.default_rng(seed)
    n_levels = 64
    b = new_book(INSTR, n_levels=n_levels, capacity=1 << 12)
    ref = RefBook(INSTR, n_levels=n_levels)
    live = []    # (oid, owner)
    for step in range(1500):
        op = rng.integers(0, 10)
        owner = int(rng.integers(1, 4))
        i = int(rng.integers(0, 2))
        base, tick = INSTR[i]
        if op < 6 or not live:
            side = int(rng.integers(1, 3))
            k = int(rng.integers(n_levels // 2 - 8, n_levels // 2 + 8))
            if rng.random() < 0.02:
                k = int(rng.integers(-3, n_levels + 3))
            price = (base // tick + k) * tick
            qty = int(rng.integers(1, 20)) if rng.random() > 0.01 else int(rng.integers(-2, 1))
            tif = [T_DAY, T_DAY, T_DAY, T_IOC, T_MARKET][int(rng.integers(0, 5))]
            node = int(b.free[b.meta[M_FREE_TOP] - 1]) if b.meta[M_FREE_TOP] else -1
            o1 = new_order(b, i, side, price, qty, tif, owner, step + 1)
            o2 = ref.new_order(i, side, price, qty, tif, owner, step + 1, node)
            assert o1 == o2
            if o1 and tif == T_DAY:
                live.append((o1, owner))
        elif op < 8:
            oid, own = live.pop(int(rng.integers(0, len(live))))
            if rng.random() < 0.1:
                own = owner
            assert cancel_order(b, oid, own, step + 1) == ref.cancel_order(oid, own, step + 1)
        else:
            oid, own = live[int(rng.integers(0, len(live)))]
            bi = [x for x in ref.orders.values() if x["oid"] == oid]
            ii = bi[0]["instr"] if bi else 0
            bs, tk = INSTR[ii]
            price = (bs // tk + int(rng.integers(n_levels // 2 - 8, n_levels // 2 + 8))) * tk
            qty = int(rng.integers(1, 25))
            assert replace_order(b, oid, own, step + 1, price, qty) == ref.replace_order(oid, own, step + 1, price, qty)
        got = rows(drain(b))
        assert got == ref.ev, f"step {step}"
        ref.ev.clear()
    assert b.meta[M_EV_DROPPED] == 0
    # books agree at the end, level by level
    for i in range(2):
        for sd in range(2):
            out = np.zeros((n_levels, 3), np.int64)
            n = depth(b, i, sd, n_levels, out)
            exp = sorted(((p, sum(o["qty"] - o["cum"] for o in lv), len(lv))
                          for p, lv in ref.sides[i][sd].items() if lv), reverse=(sd == 0))
            assert [tuple(int(x) for x in r) for r in out[:n]] == exp

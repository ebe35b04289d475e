"""A misbehaving venue: session loss (simulator killed), garbage on the order session,
venue restart. The engine halts trading with a reason, keeps a consistent state and
resumes when the venue is back; fuzzed strategy output never reaches the wire."""

import struct
from importlib.resources import files

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numba import njit

from inproc import MID, TICK, Harness
from tickwire.engine.build import take_txs
from tickwire.engine.core import act_on_intents, oe_disconnected, oe_input
from tickwire.mem.ref import by_ref
from tickwire.engine.layout import (IN_INSTR, IN_KIND, IN_PRICE, IN_QTY, IN_REF, IN_SIDE, IN_TIF, M_BAD_INTENTS,
                                    M_OE_GARBAGE)
from tickwire.order import reasons as R
from tickwire.order import wire_layout as W
from tickwire.order.layout import G_KILL, G_KILL_REASON, I_OPEN_BUY, I_OPEN_SELL, S_BAD_EXEC, S_LIVE
from tickwire.order.orders import exposure_consistent
from tickwire.order.session import SS_STATE, ST_DOWN, ST_ESTABLISHED
from tickwire.sbe import load
from tickwire.sbe.codec import Codec
from tickwire.sim.matching import N_OWNER, N_USED
from tickwire.sim.venue import V_COD_CANCELS, build_venue, venue_disconnected


@njit(cache=True, _nrt=False)
def _act_on_intents(E, n, now):
    """The engine calls act_on_intents with its state by reference (mem/ref.py)."""
    return act_on_intents(by_ref(E), n, now)


def client_resting(V):
    nd = V.book.nodes
    return int(((nd[:, N_USED] == 1) & (nd[:, N_OWNER] == 1)).sum())


def mm():
    h = Harness("market_maker", dict(instr=0, tick=TICK, half_spread=3, qty=1, max_pos=5))
    h.connect()
    h.run(300)
    assert h.E.orders.stats[S_LIVE] > 0 and client_resting(h.V) > 0
    return h


def test_session_loss_halts_then_resumes_with_cancel_on_disconnect():
    h = mm()
    E, V = h.E, h.V
    # the simulator's connection dies: both sides notice
    venue_disconnected(V, h.now)
    oe_disconnected(E)
    assert E.risk.glob[G_KILL] == 1 and E.risk.glob[G_KILL_REASON] == R.KILL_SESSION_LOSS
    assert client_resting(V) == 0 and V.meta[V_COD_CANCELS] > 0
    live_before = int(E.orders.stats[S_LIVE])
    assert live_before > 0                  # we have not heard about the cancels yet
    h.run(50)                               # market data keeps flowing; nothing may be sent
    assert take_txs(E) == b""
    # reconnect: re-Establish with the same UUID, fetch the missed cancel reports
    h.connect()
    assert E.sess[SS_STATE] == ST_ESTABLISHED and E.risk.glob[G_KILL] == 0
    assert E.orders.stats[S_LIVE] <= client_resting(V) + 2
    assert exposure_consistent(E.risk, E.orders)
    h.run(300)
    assert E.orders.stats[S_BAD_EXEC] == 0 and client_resting(V) > 0


def test_garbage_on_the_order_session_terminates_and_stops_trading():
    h = mm()
    E = h.E
    junk = np.frombuffer(b"\x00\x30\xbe\xef" + bytes(60), np.uint8).copy()
    oe_input(E, junk, 0, len(junk), h.now)
    assert E.meta[M_OE_GARBAGE] == 1 and E.sess[SS_STATE] == ST_DOWN
    assert E.risk.glob[G_KILL] == 1
    tx = take_txs(E)
    assert struct.unpack_from("<H", tx, 4 + 2)[0] == W.TERMINATE


def test_venue_restart_forgets_orders_and_renegotiates():
    h = mm()
    E = h.E
    oe_disconnected(E)
    fresh = build_venue([(1001, MID, TICK), (1002, MID // 2, TICK)], seed=9)
    h.V = fresh
    h.connect()
    assert E.sess[SS_STATE] == ST_ESTABLISHED
    assert E.orders.stats[S_LIVE] == 0 and E.risk.inst[0, I_OPEN_BUY] == 0 and E.risk.inst[0, I_OPEN_SELL] == 0
    assert E.risk.glob[G_KILL] == 0
    h.run(200)
    assert E.orders.stats[S_BAD_EXEC] == 0


_H = {}


def _harness():
    if "h" not in _H:
        h = Harness("market_maker", dict(instr=0, tick=TICK, half_spread=3, qty=1, max_pos=5))
        h.connect()
        h.run(50)
        _H["h"] = h
    return _H["h"]


big = st.integers(-2**63, 2**63 - 1)
intent = st.tuples(st.sampled_from([0, 1, 1, 1, 2, 3, 9]), st.one_of(st.integers(-1, 3), big),
                   st.one_of(st.sampled_from([1, 2]), big),
                   st.one_of(st.integers(-20, 20).map(lambda k: MID + k * TICK), big, st.integers(-5, 5)),
                   st.one_of(st.integers(-3, 15), big), st.one_of(st.sampled_from([0, 3, 7, 0x101]), big),
                   st.one_of(st.integers(0, 10**6), big))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(intent, min_size=1, max_size=16))
def test_fuzzed_strategy_output_never_reaches_the_wire(rows):
    h = _harness()
    E = h.E
    E.risk.glob[G_KILL] = 0
    take_txs(E)
    for k, (kind, i, side, px, qty, tif, ref) in enumerate(rows):
        E.intents[k] = 0
        E.intents[k, IN_KIND], E.intents[k, IN_INSTR], E.intents[k, IN_SIDE] = kind, i, side
        E.intents[k, IN_PRICE], E.intents[k, IN_QTY], E.intents[k, IN_TIF], E.intents[k, IN_REF] = px, qty, tif, ref
    h.now += 10_000_000
    _act_on_intents(E, len(rows), h.now)
    wire = take_txs(E)
    codec = Codec(load(str(files("tickwire.order") / "schemas" / "orderentry.xml")))
    off = 0
    lim = E.risk.limits
    while off < len(wire):
        n = struct.unpack_from(">H", wire, off)[0]
        m, _ = codec.decode(wire[off + 4:off + n])
        if m["_templateId"] == W.NEW_ORDER:
            i = [s for s in range(E.imap.shape[0]) if E.imap[s, 0] == m["SecurityID"]]
            assert len(i) == 1
            i = i[0]
            px, q = m["Price"]["mantissa"], m["OrderQty"]
            assert 0 < q <= lim[i, 0] and px > 0 and px % lim[i, 4] == 0
            assert q * px <= lim[i, 1]
            assert m["Side"] in ("Buy", "Sell")
        if m["_templateId"] in (W.NEW_ORDER, W.REPLACE_REQUEST):
            assert m["TimeInForce"] in ("Day", "IOC"), m
        off += n
    assert exposure_consistent(E.risk, E.orders)


def test_an_order_with_a_time_in_force_we_do_not_send_is_a_bad_intent():
    """Only Day and IOC go out: anything else would be stored in the order row and sent
    again by every Replace of it (review, session 9), so the intent is refused and counted."""
    h = _harness()
    E = h.E
    E.risk.glob[G_KILL] = 0
    take_txs(E)
    bad = int(E.meta[M_BAD_INTENTS])
    for k, tif in enumerate((0x101, 1, -3)):
        E.intents[k] = 0
        E.intents[k, IN_KIND], E.intents[k, IN_INSTR], E.intents[k, IN_SIDE] = 1, 0, 1
        E.intents[k, IN_PRICE], E.intents[k, IN_QTY] = MID - 5 * TICK, 1
        E.intents[k, IN_TIF], E.intents[k, IN_REF] = tif, 7_000_000 + k
    h.now += 10_000_000
    assert _act_on_intents(E, 3, h.now) == 0
    assert take_txs(E) == b"" and E.meta[M_BAD_INTENTS] == bad + 3
    assert exposure_consistent(E.risk, E.orders)

"""The order state machine, reconciled with execution reports.

Every live order has one row in ``OrderTable.orders``; its slot is ``ClOrdID & (cap-1)``.
ClOrdIDs increase (risk.check_new refuses a repeat), so a slot is reused only after
``cap`` newer orders, and a report finds its order with one compare.

States (layout.OS_*):  FREE -> PENDING_NEW -> WORKING -> (PENDING_CANCEL | PENDING_REPLACE)
    ack(NEW)            PENDING_NEW -> WORKING
    TRADE               any live state; leaves 0 -> done (slot freed)
    CANCELED            any live state -> done (also IOC remainder, cancel-on-disconnect)
    REPLACED            PENDING_REPLACE -> WORKING with the new price/qty
    REJECTED            PENDING_NEW -> done
    CANCEL_REJECT       PENDING_CANCEL/PENDING_REPLACE -> WORKING (terms unchanged)

Exposure bookkeeping: each order *reserves* open quantity on its side
(``O_RESERVED``); ``inst[I_OPEN_BUY/SELL]`` is always the sum of the reservations of live
orders. A pending replace reserves max(current leaves, new leaves) until the venue answers,
so the worst case is covered either way.

A report that contradicts our state (fill larger than leaves, price <= 0, replace
ack with no replace pending) is counted in S_BAD_EXEC and engages the kill switch
with KILL_VENUE_ERROR: we no longer know our position for sure, so we stop adding risk.
A report for a ClOrdID with no live order (late duplicate, already done) is counted in
S_UNKNOWN_EXEC and ignored.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..mem.hotpath import into_runtime_free_callers
from . import reasons as R
from .layout import (EXEC_CANCEL_REJECT, EXEC_CANCELED, EXEC_NEW, EXEC_REJECTED, EXEC_REPLACED, EXEC_TRADE,
                     I_BUY_QTY, I_CASH_TICKS, I_OPEN_BUY, I_OPEN_SELL, I_POSITION, I_SELL_QTY, L_TICK, O_CLORDID,
                     O_CUM, O_EXCH_ID, O_INSTR, O_LEAVES, O_N, O_PEND_PRICE, O_PEND_QTY, O_PRICE, O_QTY,
                     O_RESERVED, O_SIDE, O_STATE, O_TIF, O_TIME, OS_FREE, OS_PENDING_CANCEL, OS_PENDING_NEW,
                     OS_PENDING_REPLACE, OS_WORKING, S_ACKS, S_BAD_EXEC, S_CANCEL_REJECTED, S_CANCELED,
                     S_FILLED_QTY, S_FILLS, S_LIVE, S_N, S_REJECTED, S_REPLACED, S_SENT_CANCEL, S_SENT_NEW,
                     S_SENT_REPLACE, S_UNKNOWN_EXEC, SIDE_BUY, OrderTable)
from .risk import check_cancel, check_new, check_new_dry, check_replace, commit_new, kill_engage

# reconcile() results
REC_OK, REC_UNKNOWN, REC_BAD = 0, 1, 2


def new_order_table(capacity: int = 1024) -> OrderTable:
    if capacity <= 0 or capacity & (capacity - 1):
        raise ValueError(f"order table capacity must be a power of two, got {capacity}")
    return OrderTable(np.zeros((capacity, O_N), np.int64), np.zeros(S_N, np.int64))


@njit(cache=True, inline="always")
def _slot(table, clordid):
    return clordid & (table.orders.shape[0] - 1)


@njit(cache=True, _nrt=False)
def find(table, clordid):
    """Slot of the live order with this ClOrdID, or -1."""
    if clordid <= 0:
        return -1
    s = _slot(table, clordid)
    o = table.orders
    if o[s, O_STATE] != OS_FREE and o[s, O_CLORDID] == clordid:
        return s
    return -1


@njit(cache=True, inline="always")
def _reserve(risk, o, s, value):
    """Set this order's reservation to ``value``, adjusting the side's open exposure."""
    i = o[s, O_INSTR]
    d = value - o[s, O_RESERVED]
    if o[s, O_SIDE] == SIDE_BUY:
        risk.inst[i, I_OPEN_BUY] += d
    else:
        risk.inst[i, I_OPEN_SELL] += d
    o[s, O_RESERVED] = value


@njit(cache=True, inline="always")
def _target_reservation(o, s):
    if o[s, O_STATE] == OS_PENDING_REPLACE:
        nl = o[s, O_PEND_QTY] - o[s, O_CUM]
        return nl if nl > o[s, O_LEAVES] else o[s, O_LEAVES]
    return o[s, O_LEAVES]


@njit(cache=True, inline="always")
def _done(risk, table, s):
    o = table.orders
    _reserve(risk, o, s, 0)
    o[s, O_STATE] = OS_FREE
    table.stats[S_LIVE] -= 1


# --- outbound: what the strategy asks for --------------------------------------------------

# inlined into runtime-free callers (the engine's act_on_intents): see risk.check_new
@njit(cache=True, _nrt=False, inline=into_runtime_free_callers)
def submit_new(risk, table, now, i, side, price, qty, tif, clordid):
    """Risk-check a new order and, if accepted, enter it as PENDING_NEW. Returns a
    reasons.* code; OK means the caller must now encode and send it."""
    if clordid > 0 and table.orders[_slot(table, clordid), O_STATE] != OS_FREE:
        risk.rejects[R.TABLE_FULL] += 1
        return R.TABLE_FULL
    r = check_new(risk, now, i, side, price, qty, clordid)
    if r != R.OK:
        return r
    commit_new(risk, now, i, side, price, qty, clordid)
    o = table.orders
    s = _slot(table, clordid)
    o[s, O_CLORDID] = clordid
    o[s, O_INSTR] = i
    o[s, O_SIDE] = side
    o[s, O_PRICE] = price
    o[s, O_QTY] = qty
    o[s, O_LEAVES] = qty
    o[s, O_CUM] = 0
    o[s, O_STATE] = OS_PENDING_NEW
    o[s, O_EXCH_ID] = 0
    o[s, O_PEND_PRICE] = 0
    o[s, O_PEND_QTY] = 0
    o[s, O_TIF] = tif
    o[s, O_RESERVED] = qty   # commit_new already added qty to the open exposure
    o[s, O_TIME] = now
    table.stats[S_LIVE] += 1
    table.stats[S_SENT_NEW] += 1
    return R.OK


@njit(cache=True, _nrt=False)
def submit_new_dry(risk, table, now, i, side, price, qty, clordid):
    """What ``submit_new`` would answer, changing nothing (no count, no token, no row):
    reads the same risk state and table row, for warming the order path while idle."""
    if clordid > 0 and table.orders[_slot(table, clordid), O_STATE] != OS_FREE:
        return R.TABLE_FULL
    return check_new_dry(risk, now, i, side, price, qty, clordid)


@njit(cache=True, _nrt=False)
def submit_cancel(risk, table, now, clordid):
    s = find(table, clordid)
    if s < 0:
        risk.rejects[R.UNKNOWN_ORDER] += 1
        return R.UNKNOWN_ORDER
    st = table.orders[s, O_STATE]
    if st != OS_WORKING and st != OS_PENDING_NEW:
        risk.rejects[R.NOT_CANCELABLE] += 1
        return R.NOT_CANCELABLE
    r = check_cancel(risk, now)
    if r != R.OK:
        return r
    table.orders[s, O_STATE] = OS_PENDING_CANCEL
    table.stats[S_SENT_CANCEL] += 1
    return R.OK


@njit(cache=True, _nrt=False)
def submit_replace(risk, table, now, clordid, price, qty):
    """Replace price and total quantity of a working order (same ClOrdID, as iLink 3 allows)."""
    s = find(table, clordid)
    if s < 0:
        risk.rejects[R.UNKNOWN_ORDER] += 1
        return R.UNKNOWN_ORDER
    o = table.orders
    if o[s, O_STATE] != OS_WORKING:
        risk.rejects[R.NOT_CANCELABLE] += 1
        return R.NOT_CANCELABLE
    if qty <= o[s, O_CUM]:
        # new total at or below what already traded: nothing would be left to work
        risk.rejects[R.BAD_QTY] += 1
        return R.BAD_QTY
    new_leaves = qty - o[s, O_CUM]
    extra = new_leaves - o[s, O_RESERVED]
    r = check_replace(risk, now, o[s, O_INSTR], o[s, O_SIDE], price, qty, extra)
    if r != R.OK:
        return r
    o[s, O_STATE] = OS_PENDING_REPLACE
    o[s, O_PEND_PRICE] = price
    o[s, O_PEND_QTY] = qty
    _reserve(risk, o, s, _target_reservation(o, s))
    table.stats[S_SENT_REPLACE] += 1
    return R.OK


# --- inbound: execution reports ------------------------------------------------------------

@njit(cache=True, _nrt=False)
def reconcile(risk, table, exec_type, clordid, exch_id, last_qty, last_px):
    """Apply one execution report. Returns REC_OK, REC_UNKNOWN or REC_BAD."""
    s = find(table, clordid)
    st = table.stats
    if s < 0:
        st[S_UNKNOWN_EXEC] += 1
        return REC_UNKNOWN
    o = table.orders
    state = o[s, O_STATE]
    if exec_type == EXEC_NEW:
        if state != OS_PENDING_NEW:
            # a duplicate ack is harmless; counted so a venue that repeats itself shows up
            st[S_UNKNOWN_EXEC] += 1
            return REC_UNKNOWN
        o[s, O_STATE] = OS_WORKING
        o[s, O_EXCH_ID] = exch_id
        st[S_ACKS] += 1
        return REC_OK
    if exec_type == EXEC_TRADE:
        i = o[s, O_INSTR]
        tick = risk.limits[i, L_TICK]
        # A fill our order could not have had: more than is left, a price through our limit
        # (a buy above it, a sell below: the report is sequenced after any Replaced, so
        # O_PRICE is the limit it traded under), off the tick grid, or so large that the
        # cash in ticks would overflow. Booking it would corrupt position and P&L.
        through = last_px > o[s, O_PRICE] if o[s, O_SIDE] == SIDE_BUY else last_px < o[s, O_PRICE]
        if last_qty <= 0 or last_qty > o[s, O_LEAVES] or last_px <= 0 or through or last_px % tick != 0 \
                or last_px // tick > (1 << 62) // last_qty:
            st[S_BAD_EXEC] += 1
            kill_engage(risk, R.KILL_VENUE_ERROR)
            return REC_BAD
        if state == OS_PENDING_NEW:
            o[s, O_STATE] = OS_WORKING          # a fill implies the ack
            o[s, O_EXCH_ID] = exch_id
        inst = risk.inst
        o[s, O_LEAVES] -= last_qty
        o[s, O_CUM] += last_qty
        if o[s, O_SIDE] == SIDE_BUY:
            inst[i, I_POSITION] += last_qty
            inst[i, I_BUY_QTY] += last_qty
            inst[i, I_CASH_TICKS] -= last_qty * (last_px // tick)
        else:
            inst[i, I_POSITION] -= last_qty
            inst[i, I_SELL_QTY] += last_qty
            inst[i, I_CASH_TICKS] += last_qty * (last_px // tick)
        st[S_FILLS] += 1
        st[S_FILLED_QTY] += last_qty
        if o[s, O_LEAVES] == 0:
            _done(risk, table, s)
        else:
            _reserve(risk, o, s, _target_reservation(o, s))
        return REC_OK
    if exec_type == EXEC_CANCELED:
        st[S_CANCELED] += 1
        _done(risk, table, s)
        return REC_OK
    if exec_type == EXEC_REJECTED:
        if state != OS_PENDING_NEW:
            st[S_BAD_EXEC] += 1
            kill_engage(risk, R.KILL_VENUE_ERROR)
            return REC_BAD
        st[S_REJECTED] += 1
        _done(risk, table, s)
        return REC_OK
    if exec_type == EXEC_REPLACED:
        if state != OS_PENDING_REPLACE:
            st[S_BAD_EXEC] += 1
            kill_engage(risk, R.KILL_VENUE_ERROR)
            return REC_BAD
        o[s, O_PRICE] = o[s, O_PEND_PRICE]
        o[s, O_QTY] = o[s, O_PEND_QTY]
        o[s, O_LEAVES] = o[s, O_QTY] - o[s, O_CUM]
        o[s, O_STATE] = OS_WORKING
        st[S_REPLACED] += 1
        if o[s, O_LEAVES] <= 0:
            _done(risk, table, s)
        else:
            _reserve(risk, o, s, o[s, O_LEAVES])
        return REC_OK
    if exec_type == EXEC_CANCEL_REJECT:
        if state != OS_PENDING_CANCEL and state != OS_PENDING_REPLACE:
            st[S_UNKNOWN_EXEC] += 1
            return REC_UNKNOWN
        o[s, O_STATE] = OS_WORKING
        st[S_CANCEL_REJECTED] += 1
        _reserve(risk, o, s, o[s, O_LEAVES])
        return REC_OK
    st[S_BAD_EXEC] += 1
    return REC_BAD


@njit(cache=True, _nrt=False)
def collect_cancels(table, out):
    """ClOrdIDs of live orders not yet being canceled (kill switch path; O(capacity), run
    only while the kill switch is engaged). Returns the count written to ``out``."""
    o = table.orders
    n = 0
    for s in range(o.shape[0]):
        st = o[s, O_STATE]
        if (st == OS_WORKING or st == OS_PENDING_NEW) and n < out.shape[0]:
            out[n] = o[s, O_CLORDID]
            n += 1
    return n


@njit(cache=True)
def exposure_consistent(risk, table):
    """Invariant check for tests and the control plane: open exposure == sum of reservations,
    and no order reserves less than its leaves."""
    n_i = risk.inst.shape[0]
    buy = np.zeros(n_i, np.int64)
    sell = np.zeros(n_i, np.int64)
    o = table.orders
    live = 0
    for s in range(o.shape[0]):
        if o[s, O_STATE] == OS_FREE:
            continue
        live += 1
        if o[s, O_RESERVED] < o[s, O_LEAVES]:
            return False
        if o[s, O_SIDE] == SIDE_BUY:
            buy[o[s, O_INSTR]] += o[s, O_RESERVED]
        else:
            sell[o[s, O_INSTR]] += o[s, O_RESERVED]
    if live != table.stats[S_LIVE]:
        return False
    for i in range(n_i):
        if buy[i] != risk.inst[i, I_OPEN_BUY] or sell[i] != risk.inst[i, I_OPEN_SELL]:
            return False
    return True


@njit(cache=True, _nrt=False)
def forget_all(risk, table):
    """The venue lost our session (new FIXP UUID): every working order is gone there, so
    it is gone here. Counted as canceled; exposure released; positions stay."""
    o = table.orders
    n = 0
    for s in range(o.shape[0]):
        if o[s, O_STATE] != OS_FREE:
            _done(risk, table, s)
            table.stats[S_CANCELED] += 1
            n += 1
    return n

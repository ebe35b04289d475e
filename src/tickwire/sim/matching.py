"""Price-time-priority matching engine for several instruments, in Numba arrays.

Prices are int64 mantissas; each instrument has a tick and a window of ``n_levels`` price
levels starting at ``base`` (level k is price ``(base_ticks + k) * tick``). A price outside
the window is rejected, which keeps every level lookup O(1) (a real venue's price band does
the same job). Each level is a FIFO doubly linked list of order nodes, so insert, cancel and
fill-at-head are O(1); finding the next best level after one empties scans towards worse
prices (bounded by n_levels).

Exchange order id = node index | generation << 24, so a cancel finds its node in O(1) and a
stale id (node reused) is refused.

Every operation appends events to ``ev`` (one int64 row each, see EV_*): execution reports
for the owner(s) and market-data changes (level totals, trades) for the publisher.
Order of events for one aggressive order: ACK, then per maker touched (FILL maker, FILL
taker, TRADE), then LEVEL for each level whose total changed, then CANCELED for an IOC or
market remainder. pure-Python reference in tests/sim/reference_matching.py.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np
from numba import njit

# Event types; the first six are the order-entry ExecType codes (order/layout.py EXEC_*).
EV_ACK, EV_FILL, EV_CANCELED, EV_REPLACED, EV_REJECTED, EV_CANCEL_REJECT, EV_LEVEL, EV_TRADE = range(8)
EV_NAMES = ("ack", "fill", "canceled", "replaced", "rejected", "cancel_reject", "level", "trade")
# ev row: type, owner, clordid, order id, instr, side, price, qty (last qty / level total), leaves, count
E_TYPE, E_OWNER, E_CLORDID, E_OID, E_INSTR, E_SIDE, E_PRICE, E_QTY, E_LEAVES, E_COUNT = range(10)
E_N = 10

# order types (time in force)
T_DAY, T_IOC, T_MARKET = 0, 3, 1
BUY, SELL = 1, 2

# cfg[i, *]
C_BASE_TICKS, C_TICK, C_NLEVELS = range(3)
# levels[i, side0/1, k, *]
LV_HEAD, LV_TAIL, LV_QTY, LV_COUNT = range(4)
# nodes[n, *]
(N_OID, N_OWNER, N_CLORDID, N_INSTR, N_SIDE, N_LEVEL, N_QTY, N_CUM, N_NEXT, N_PREV, N_USED) = range(11)
N_N = 11
# meta[*]
M_FREE_TOP, M_EV_COUNT, M_EV_DROPPED, M_GEN, M_ORDERS, M_TRADES, M_REJECTS = range(7)
M_N = 8

# reject reasons carried in E_LEAVES of a REJECTED / CANCEL_REJECT event
RJ_BAD_INSTR, RJ_BAD_QTY, RJ_BAD_PRICE, RJ_BOOK_FULL, RJ_UNKNOWN, RJ_NOT_OWNER, RJ_BAD_SIDE = range(1, 8)

OID_BITS = 24
OID_MASK = (1 << OID_BITS) - 1

MatchBook = namedtuple("MatchBook", "cfg levels best nodes free meta ev")


def new_book(instruments, n_levels: int = 4096, capacity: int = 1 << 16, ev_capacity: int = 1 << 16) -> MatchBook:
    """``instruments``: list of (base_price, tick) in price mantissa units."""
    if capacity > OID_MASK + 1:
        raise ValueError("order capacity exceeds the order id space")
    n = len(instruments)
    cfg = np.zeros((n, 3), np.int64)
    for i, (base, tick) in enumerate(instruments):
        if tick <= 0 or base <= 0 or base % tick:
            raise ValueError(f"instrument {i}: base {base} must be a positive multiple of tick {tick}")
        cfg[i] = (base // tick, tick, n_levels)
    levels = np.zeros((n, 2, n_levels, 4), np.int64)
    levels[:, :, :, LV_HEAD] = -1
    levels[:, :, :, LV_TAIL] = -1
    best = np.full((n, 2), -1, np.int64)
    nodes = np.zeros((capacity, N_N), np.int64)
    free = np.arange(capacity - 1, -1, -1, dtype=np.int64)
    meta = np.zeros(M_N, np.int64)
    meta[M_FREE_TOP] = capacity
    meta[M_GEN] = 1
    return MatchBook(cfg, levels, best, nodes, free, meta, np.zeros((ev_capacity, E_N), np.int64))


@njit(cache=True, inline="always")
def _emit(b, typ, owner, clordid, oid, instr, side, price, qty, leaves, count):
    m = b.meta
    k = m[M_EV_COUNT]
    if k >= b.ev.shape[0]:
        m[M_EV_DROPPED] += 1
        return
    e = b.ev
    e[k, E_TYPE] = typ
    e[k, E_OWNER] = owner
    e[k, E_CLORDID] = clordid
    e[k, E_OID] = oid
    e[k, E_INSTR] = instr
    e[k, E_SIDE] = side
    e[k, E_PRICE] = price
    e[k, E_QTY] = qty
    e[k, E_LEAVES] = leaves
    e[k, E_COUNT] = count
    m[M_EV_COUNT] = k + 1


@njit(cache=True, inline="always")
def _price(b, i, lvl):
    return (b.cfg[i, C_BASE_TICKS] + lvl) * b.cfg[i, C_TICK]


@njit(cache=True, inline="always")
def _emit_level(b, i, sd, lvl):
    L = b.levels[i, sd, lvl]
    _emit(b, EV_LEVEL, 0, 0, 0, i, sd + 1, _price(b, i, lvl), L[LV_QTY], 0, L[LV_COUNT])


@njit(cache=True, inline="always")
def _better(sd, a, c):
    """Is level a better than level c for side index sd (0 bid: higher; 1 ask: lower)?"""
    return a > c if sd == 0 else a < c


@njit(cache=True)
def _rescan_best(b, i, sd, start):
    n = b.cfg[i, C_NLEVELS]
    k = start
    step = -1 if sd == 0 else 1
    while 0 <= k < n:
        if b.levels[i, sd, k, LV_COUNT] > 0:
            b.best[i, sd] = k
            return
        k += step
    b.best[i, sd] = -1


@njit(cache=True, inline="always")
def _unlink(b, n):
    """Remove node n from its level's FIFO (totals adjusted by the caller)."""
    nd = b.nodes
    i = nd[n, N_INSTR]
    sd = nd[n, N_SIDE] - 1
    lvl = nd[n, N_LEVEL]
    L = b.levels[i, sd, lvl]
    p = nd[n, N_PREV]
    q = nd[n, N_NEXT]
    if p >= 0:
        nd[p, N_NEXT] = q
    else:
        L[LV_HEAD] = q
    if q >= 0:
        nd[q, N_PREV] = p
    else:
        L[LV_TAIL] = p
    L[LV_COUNT] -= 1


@njit(cache=True, inline="always")
def _free_node(b, n):
    b.nodes[n, N_USED] = 0
    b.free[b.meta[M_FREE_TOP]] = n
    b.meta[M_FREE_TOP] += 1


@njit(cache=True)
def _match(b, i, side, lim_lvl, qty, owner, clordid, oid, market):
    """Trade ``qty`` of an aggressor against the opposite side up to level ``lim_lvl``.
    Returns the remaining quantity."""
    osd = 2 - side          # opposite side index: buy (1) hits asks (1), sell (2) hits bids (0)
    nd = b.nodes
    while qty > 0:
        lvl = b.best[i, osd]
        if lvl < 0:
            break
        if not market and _better(osd, lim_lvl, lvl):
            break   # e.g. buy limit below the best ask: no cross
        L = b.levels[i, osd, lvl]
        px = _price(b, i, lvl)
        while qty > 0 and L[LV_HEAD] >= 0:
            n = L[LV_HEAD]
            avail = nd[n, N_QTY] - nd[n, N_CUM]
            q = qty if qty < avail else avail
            nd[n, N_CUM] += q
            qty -= q
            L[LV_QTY] -= q
            mleaves = nd[n, N_QTY] - nd[n, N_CUM]
            _emit(b, EV_FILL, nd[n, N_OWNER], nd[n, N_CLORDID], nd[n, N_OID], i, nd[n, N_SIDE], px, q, mleaves, 0)
            _emit(b, EV_FILL, owner, clordid, oid, i, side, px, q, qty, 0)
            _emit(b, EV_TRADE, 0, 0, 0, i, side, px, q, 0, 0)
            b.meta[M_TRADES] += 1
            if mleaves == 0:
                _unlink(b, n)
                _free_node(b, n)
        _emit_level(b, i, osd, lvl)
        if L[LV_COUNT] == 0:
            _rescan_best(b, i, osd, lvl)
    return qty


@njit(cache=True)
def _rest(b, i, side, lvl, qty, cum, owner, clordid, oid, n):
    """Append node n (already allocated) at the tail of its level."""
    sd = side - 1
    nd = b.nodes
    nd[n, N_OID] = oid
    nd[n, N_OWNER] = owner
    nd[n, N_CLORDID] = clordid
    nd[n, N_INSTR] = i
    nd[n, N_SIDE] = side
    nd[n, N_LEVEL] = lvl
    nd[n, N_QTY] = qty
    nd[n, N_CUM] = cum
    nd[n, N_USED] = 1
    L = b.levels[i, sd, lvl]
    nd[n, N_NEXT] = -1
    nd[n, N_PREV] = L[LV_TAIL]
    if L[LV_TAIL] >= 0:
        nd[L[LV_TAIL], N_NEXT] = n
    else:
        L[LV_HEAD] = n
    L[LV_TAIL] = n
    L[LV_COUNT] += 1
    L[LV_QTY] += qty - cum
    if b.best[i, sd] < 0 or _better(sd, lvl, b.best[i, sd]):
        b.best[i, sd] = lvl
    _emit_level(b, i, sd, lvl)


@njit(cache=True, inline="always")
def _level_of(b, i, price):
    """Level index of a price, or -1 when it is not on the tick grid or outside the window."""
    tick = b.cfg[i, C_TICK]
    if price <= 0 or price % tick != 0:
        return -1
    k = price // tick - b.cfg[i, C_BASE_TICKS]
    if k < 0 or k >= b.cfg[i, C_NLEVELS]:
        return -1
    return k


@njit(cache=True)
def new_order(b, i, side, price, qty, tif, owner, clordid):
    """Enter an order. Returns its exchange order id (> 0), or 0 when rejected."""
    b.meta[M_ORDERS] += 1
    if i < 0 or i >= b.cfg.shape[0]:
        _emit(b, EV_REJECTED, owner, clordid, 0, i, side, price, qty, RJ_BAD_INSTR, 0)
        b.meta[M_REJECTS] += 1
        return 0
    if side != BUY and side != SELL:
        _emit(b, EV_REJECTED, owner, clordid, 0, i, side, price, qty, RJ_BAD_SIDE, 0)
        b.meta[M_REJECTS] += 1
        return 0
    if qty <= 0 or qty > 1_000_000_000:
        _emit(b, EV_REJECTED, owner, clordid, 0, i, side, price, qty, RJ_BAD_QTY, 0)
        b.meta[M_REJECTS] += 1
        return 0
    market = tif == T_MARKET
    lvl = 0
    if not market:
        lvl = _level_of(b, i, price)
        if lvl < 0:
            _emit(b, EV_REJECTED, owner, clordid, 0, i, side, price, qty, RJ_BAD_PRICE, 0)
            b.meta[M_REJECTS] += 1
            return 0
    if b.meta[M_FREE_TOP] == 0:
        _emit(b, EV_REJECTED, owner, clordid, 0, i, side, price, qty, RJ_BOOK_FULL, 0)
        b.meta[M_REJECTS] += 1
        return 0
    # take the node now so the order id exists for the ack; released if nothing rests
    b.meta[M_FREE_TOP] -= 1
    n = b.free[b.meta[M_FREE_TOP]]
    gen = b.meta[M_GEN]
    b.meta[M_GEN] = gen + 1 if gen < (1 << 38) else 1
    oid = (gen << OID_BITS) | n
    b.nodes[n, N_OID] = oid
    b.nodes[n, N_USED] = 1
    _emit(b, EV_ACK, owner, clordid, oid, i, side, price, qty, qty, 0)
    left = _match(b, i, side, lvl, qty, owner, clordid, oid, market)
    if left > 0 and tif == T_DAY:
        _rest(b, i, side, lvl, qty, qty - left, owner, clordid, oid, n)
        return oid
    _free_node(b, n)
    if left > 0:
        _emit(b, EV_CANCELED, owner, clordid, oid, i, side, price, left, 0, 0)
    return oid


@njit(cache=True, inline="always")
def _lookup(b, oid, owner):
    """Node of a live resting order owned by ``owner``; -RJ_* code otherwise."""
    n = oid & OID_MASK
    if oid <= 0 or n >= b.nodes.shape[0]:
        return -RJ_UNKNOWN
    nd = b.nodes
    if nd[n, N_USED] == 0 or nd[n, N_OID] != oid:
        return -RJ_UNKNOWN
    if nd[n, N_OWNER] != owner:
        return -RJ_NOT_OWNER
    return n


@njit(cache=True)
def cancel_order(b, oid, owner, clordid):
    n = _lookup(b, oid, owner)
    if n < 0:
        _emit(b, EV_CANCEL_REJECT, owner, clordid, oid, -1, 0, 0, 0, -n, 0)
        return False
    nd = b.nodes
    i = nd[n, N_INSTR]
    sd = nd[n, N_SIDE] - 1
    lvl = nd[n, N_LEVEL]
    left = nd[n, N_QTY] - nd[n, N_CUM]
    _unlink(b, n)
    b.levels[i, sd, lvl, LV_QTY] -= left
    _emit(b, EV_CANCELED, owner, nd[n, N_CLORDID], oid, i, sd + 1, _price(b, i, lvl), left, 0, 0)
    _free_node(b, n)
    _emit_level(b, i, sd, lvl)
    if b.levels[i, sd, lvl, LV_COUNT] == 0 and b.best[i, sd] == lvl:
        _rescan_best(b, i, sd, lvl)
    return True


@njit(cache=True)
def replace_order(b, oid, owner, clordid, price, qty):
    """New price and total quantity. Same price and lower quantity keeps time priority;
    anything else loses it (re-entered at the tail, and may trade if it now crosses)."""
    n = _lookup(b, oid, owner)
    if n < 0:
        _emit(b, EV_CANCEL_REJECT, owner, clordid, oid, -1, 0, price, qty, -n, 0)
        return False
    nd = b.nodes
    i = nd[n, N_INSTR]
    side = nd[n, N_SIDE]
    sd = side - 1
    lvl = nd[n, N_LEVEL]
    cum = nd[n, N_CUM]
    new_lvl = _level_of(b, i, price)
    if new_lvl < 0 or qty <= cum or qty > 1_000_000_000:
        _emit(b, EV_CANCEL_REJECT, owner, clordid, oid, i, side, price, qty,
              RJ_BAD_PRICE if new_lvl < 0 else RJ_BAD_QTY, 0)
        return False
    old_left = nd[n, N_QTY] - cum
    if new_lvl == lvl and qty <= nd[n, N_QTY]:
        nd[n, N_QTY] = qty
        b.levels[i, sd, lvl, LV_QTY] -= old_left - (qty - cum)
        _emit(b, EV_REPLACED, owner, nd[n, N_CLORDID], oid, i, side, price, qty, qty - cum, 0)
        _emit_level(b, i, sd, lvl)
        return True
    _unlink(b, n)
    b.levels[i, sd, lvl, LV_QTY] -= old_left
    _emit_level(b, i, sd, lvl)
    if b.levels[i, sd, lvl, LV_COUNT] == 0 and b.best[i, sd] == lvl:
        _rescan_best(b, i, sd, lvl)
    ocl = nd[n, N_CLORDID]
    _emit(b, EV_REPLACED, owner, ocl, oid, i, side, price, qty, qty - cum, 0)
    left = _match(b, i, side, new_lvl, qty - cum, owner, ocl, oid, False)
    if left > 0:
        _rest(b, i, side, new_lvl, qty, qty - left, owner, ocl, oid, n)
    else:
        _free_node(b, n)
    return True


@njit(cache=True)
def top_of_book(b, i, out):
    """out[:] = bid price, bid qty, ask price, ask qty (0 when a side is empty)."""
    for sd in range(2):
        lvl = b.best[i, sd]
        if lvl < 0:
            out[2 * sd] = 0
            out[2 * sd + 1] = 0
        else:
            out[2 * sd] = _price(b, i, lvl)
            out[2 * sd + 1] = b.levels[i, sd, lvl, LV_QTY]


@njit(cache=True)
def depth(b, i, sd, max_levels, out):
    """Best ``max_levels`` non-empty levels of one side: rows of (price, qty, count). O(window)."""
    k = b.best[i, sd]
    n = 0
    step = -1 if sd == 0 else 1
    while k >= 0 and k < b.cfg[i, C_NLEVELS] and n < max_levels:
        if b.levels[i, sd, k, LV_COUNT] > 0:
            out[n, 0] = _price(b, i, k)
            out[n, 1] = b.levels[i, sd, k, LV_QTY]
            out[n, 2] = b.levels[i, sd, k, LV_COUNT]
            n += 1
        k += step
    return n


def drain(b: MatchBook) -> np.ndarray:
    """Python helper: copy out and clear the events."""
    k = int(b.meta[M_EV_COUNT])
    out = b.ev[:k].copy()
    b.meta[M_EV_COUNT] = 0
    return out

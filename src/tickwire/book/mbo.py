"""Market-by-order books: one order table for all instruments, in Numba arrays.

    orders[row, O_*]   OrderID, MDOrderPriority, price mantissa, display qty, instrument
                       slot, side (0 bid / 1 offer); O_ID == FREE_ID for a free row
    oindex[h]          OrderID hash -> row + 1 (open addressing, linear probing, deletion
                       by backward shift so probe chains stay intact; no tombstones)
    free[k]            stack of free rows; meta[M_FREE_TOP] is its height

Updates are O(1) (MDP 3.0 MBO: New / Change (Update) / Delete by OrderID, notes/mdp3.md
§3 template 47). Sorting is done only when a depth view is asked for: ``mbo_depth``
aggregates one side of one instrument into price levels in priority order (price, then
MDOrderPriority: lower value = higher priority, §4).
"""

from __future__ import annotations

import numpy as np
from numba import njit

O_ID, O_PRIO, O_PX, O_QTY, O_SLOT, O_SIDE = range(6)
N_OCOLS = 8
FREE_ID = np.iinfo(np.int64).min      # never a valid OrderID bit pattern in practice (2^63)
M_FREE_TOP, M_COUNT = 0, 1
N_META = 2

MBO_OK, MBO_DUPLICATE, MBO_UNKNOWN, MBO_FULL, MBO_BAD_ID = 0, 1, 2, 3, 4


def new_mbo(max_orders: int):
    """(orders, oindex, free, meta) sized for ``max_orders`` resting orders."""
    hsize = 1
    while hsize < 2 * max_orders:
        hsize <<= 1
    orders = np.zeros((max_orders, N_OCOLS), np.int64)
    orders[:, O_ID] = FREE_ID
    free = np.arange(max_orders - 1, -1, -1, dtype=np.int64)
    meta = np.zeros(N_META, np.int64)
    meta[M_FREE_TOP] = max_orders
    return orders, np.zeros(hsize, np.int64), free, meta


@njit(cache=True, inline="always", _nrt=False)
def _home(oid, mask):
    # Fibonacci hashing of the 64-bit id (multiplicative; ids are often sequential)
    return ((oid * -7046029254386353131) >> 20) & mask


@njit(cache=True, _nrt=False)
def mbo_find(orders, oindex, oid):
    mask = oindex.size - 1
    h = _home(oid, mask)
    for _ in range(oindex.size):
        e = oindex[h]
        if e == 0:
            return -1
        if orders[e - 1, O_ID] == oid:
            return e - 1
        h = (h + 1) & mask
    return -1


@njit(cache=True, _nrt=False)
def mbo_add(orders, oindex, free, meta, oid, prio, px, qty, slot, side):
    if oid == FREE_ID:      # the one id a row cannot hold: it marks free rows
        return MBO_BAD_ID
    if mbo_find(orders, oindex, oid) >= 0:
        return MBO_DUPLICATE
    if meta[M_FREE_TOP] == 0:
        return MBO_FULL
    meta[M_FREE_TOP] -= 1
    row = free[meta[M_FREE_TOP]]
    orders[row, O_ID] = oid
    orders[row, O_PRIO] = prio
    orders[row, O_PX] = px
    orders[row, O_QTY] = qty
    orders[row, O_SLOT] = slot
    orders[row, O_SIDE] = side
    mask = oindex.size - 1
    h = _home(oid, mask)
    while oindex[h] != 0:
        h = (h + 1) & mask
    oindex[h] = row + 1
    meta[M_COUNT] += 1
    return MBO_OK


@njit(cache=True, _nrt=False)
def mbo_update(orders, oindex, oid, prio, px, qty, side, slot):
    """Change order ``oid`` of instrument ``slot``; an id resting in another instrument's
    book is unknown here (an entry must not move another instrument's order)."""
    row = mbo_find(orders, oindex, oid)
    if row < 0 or orders[row, O_SLOT] != slot:
        return MBO_UNKNOWN
    orders[row, O_PRIO] = prio      # the venue sends the new priority (a qty increase loses it)
    orders[row, O_PX] = px
    orders[row, O_QTY] = qty
    orders[row, O_SIDE] = side
    return MBO_OK


@njit(cache=True, _nrt=False)
def _unlink(orders, oindex, row):
    """Remove row's index entry, then shift later chain members back (Knuth 6.4 R)."""
    mask = oindex.size - 1
    h = _home(orders[row, O_ID], mask)
    while oindex[h] != row + 1:
        h = (h + 1) & mask
    oindex[h] = 0
    j = h
    while True:
        j = (j + 1) & mask
        e = oindex[j]
        if e == 0:
            return
        k = _home(orders[e - 1, O_ID], mask)
        # move e into the hole at h unless its home lies cyclically in (h, j]
        if (h <= j and (k <= h or k > j)) or (h > j and (k <= h and k > j)):
            oindex[h] = e
            oindex[j] = 0
            h = j


@njit(cache=True, _nrt=False)
def mbo_delete(orders, oindex, free, meta, oid, slot):
    row = mbo_find(orders, oindex, oid)
    if row < 0 or orders[row, O_SLOT] != slot:
        return MBO_UNKNOWN
    _unlink(orders, oindex, row)
    orders[row, O_ID] = FREE_ID
    free[meta[M_FREE_TOP]] = row
    meta[M_FREE_TOP] += 1
    meta[M_COUNT] -= 1
    return MBO_OK


@njit(cache=True, _nrt=False)
def mbo_clear_instrument(orders, oindex, free, meta, slot):
    for row in range(orders.shape[0]):
        if orders[row, O_ID] != FREE_ID and orders[row, O_SLOT] == slot:
            _unlink(orders, oindex, row)
            orders[row, O_ID] = FREE_ID
            free[meta[M_FREE_TOP]] = row
            meta[M_FREE_TOP] += 1
            meta[M_COUNT] -= 1


@njit(cache=True)
def mbo_depth(orders, slot, side, out):
    """Aggregate one side into ``out[level] = (px, qty, norders)``, best first; returns
    the number of levels written (at most out.shape[0]). Scans the table: a view for
    strategies at EndOfEvent or for tools, not a per-update operation."""
    n = 0
    rows = np.empty(orders.shape[0], np.int64)
    for r in range(orders.shape[0]):
        if orders[r, O_ID] != FREE_ID and orders[r, O_SLOT] == slot and orders[r, O_SIDE] == side:
            rows[n] = r
            n += 1
    keys = np.empty(n, np.int64)
    for i in range(n):
        px = orders[rows[i], O_PX]
        keys[i] = -px if side == 0 else px
    order = np.argsort(keys, kind="mergesort")
    levels = 0
    last = 0
    for i in range(n):
        r = rows[order[i]]
        px = orders[r, O_PX]
        if levels == 0 or px != last:
            if levels == out.shape[0]:
                break
            out[levels, 0] = px
            out[levels, 1] = 0
            out[levels, 2] = 0
            levels += 1
            last = px
        out[levels - 1, 1] += orders[r, O_QTY]
        out[levels - 1, 2] += 1
    return levels


@njit(cache=True)
def mbo_queue(orders, slot, side, px, out_rows):
    """Rows of the orders resting at ``px`` in priority order; returns how many."""
    n = 0
    for r in range(orders.shape[0]):
        if (orders[r, O_ID] != FREE_ID and orders[r, O_SLOT] == slot and orders[r, O_SIDE] == side
                and orders[r, O_PX] == px and n < out_rows.size):
            out_rows[n] = r
            n += 1
    prios = np.empty(n, np.int64)
    for i in range(n):
        prios[i] = orders[out_rows[i], O_PRIO]
    order = np.argsort(prios, kind="mergesort")
    tmp = out_rows[:n].copy()
    for i in range(n):
        out_rows[i] = tmp[order[i]]
    return n

"""The strategy API: three user functions compiled by Numba.

A strategy is a module (or any object) with three ``@njit`` functions::

    on_book_update(v, i, out) -> int
        Book of instrument ``i`` changed (published only at EndOfEvent by the feed).
    on_trade(v, i, price, qty, aggressor_side, out) -> int
        A trade printed on the market (TradeSummary 48).
    on_execution(v, i, clordid, exec_type, side, last_px, last_qty, out) -> int
        One of our orders changed (order.layout EXEC_*: NEW, TRADE, CANCELED, REPLACED,
        REJECTED, CANCEL_REJECT), after the order table and position were updated.

Each returns how many intents it wrote to ``out`` (rows of engine.layout IN_*):

    K_NEW      instr, side (1 buy / 2 sell), price (int64 mantissa), qty, tif (0 day / 3 IOC),
               ref = a new ClOrdID from ``new_clordid(v)``
    K_CANCEL   ref = ClOrdID of the order to cancel
    K_REPLACE  ref = ClOrdID, price, qty (new total)

``v`` is a StrategyView: ``params`` (int64, the user's configuration), ``state`` (int64
scratch the strategy owns), ``top[i]`` (TOP_*: best bid/ask, sizes, last, valid),
``inst[i]`` (risk state: I_POSITION, I_OPEN_BUY, ...; read-only by convention),
``orders`` (the order table: ``order.orders.find(v.orders, clordid)``).

Whatever a strategy writes goes through pre-trade risk before anything is encoded:
a strategy cannot put an absurd order on the wire (tests/engine fuzz this).
"""

from __future__ import annotations

from numba import njit

from .layout import IN_INSTR, IN_KIND, IN_PRICE, IN_QTY, IN_REF, IN_SIDE, IN_TIF, K_CANCEL, K_NEW, K_REPLACE


@njit(cache=True, inline="always")
def new_clordid(v):
    v.ids[0] += 1
    return v.ids[0]


@njit(cache=True, inline="always")
def emit_new(out, k, i, side, price, qty, tif, clordid):
    if k >= out.shape[0]:
        return k
    out[k, IN_KIND] = K_NEW
    out[k, IN_INSTR] = i
    out[k, IN_SIDE] = side
    out[k, IN_PRICE] = price
    out[k, IN_QTY] = qty
    out[k, IN_TIF] = tif
    out[k, IN_REF] = clordid
    return k + 1


@njit(cache=True, inline="always")
def emit_cancel(out, k, clordid):
    if k >= out.shape[0]:
        return k
    out[k, IN_KIND] = K_CANCEL
    out[k, IN_REF] = clordid
    return k + 1


@njit(cache=True, inline="always")
def emit_replace(out, k, clordid, price, qty):
    if k >= out.shape[0]:
        return k
    out[k, IN_KIND] = K_REPLACE
    out[k, IN_REF] = clordid
    out[k, IN_PRICE] = price
    out[k, IN_QTY] = qty
    return k + 1


def load_strategy(name: str):
    """'market_maker', 'taker' (built in) or 'package.module' of the user's own."""
    import importlib
    mod = importlib.import_module(name if "." in name else f"tickwire.engine.strategies.{name}")
    for fn in ("on_book_update", "on_trade", "on_execution"):
        if not hasattr(mod, fn):
            raise ValueError(f"strategy {name}: missing {fn}()")
    return mod


@njit(cache=True, _nrt=False)
def ignore_trade(v, i, price, qty, aggressor, out):
    """For strategies that do not react to trades: ``on_trade = ignore_trade``."""
    return 0


@njit(cache=True, _nrt=False)
def ignore_execution(v, i, clordid, exec_type, side, last_px, last_qty, out):
    """For strategies that need nothing beyond the order table: ``on_execution = ignore_execution``."""
    return 0

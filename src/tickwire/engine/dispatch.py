"""Calling the user's strategy from the compiled loop without giving up the on-disk cache.

Passing a Numba function as an argument makes the caller uncacheable (the dispatcher's
identity is part of the type). Instead each strategy module declares its own view type
(``View = view_type(__name__)``), registers its three callbacks for it, and the loop calls
``strat_book(v, ...)`` etc.; an ``@overload`` picks the callbacks from the type of ``v``
at compile time, exactly as drivers/port.py dispatches rx_burst by the driver's state
type. The loop compiled for one strategy is cached like any other function.
Caveat (numba-hot-path.md §6): editing a strategy does not invalidate a cached loop that
inlined it; clear the cache (``NUMBA_CACHE_DIR``) after changing a strategy.
"""

from __future__ import annotations

import sys
from collections import namedtuple

from numba.core import types
from numba.extending import overload

_IMPLS: dict[type, object] = {}

FIELDS = "params state top inst orders ids"


def view_type(module_name: str):
    """A StrategyView namedtuple class owned by ``module_name`` (picklable by reference)."""
    # The class name carries the module: Numba's cache keys a signature by the type's
    # *name*, so two strategies' views must not share one (or a cached loop compiled for
    # one strategy would be loaded for the other).
    name = "View_" + module_name.replace(".", "_")
    cls = namedtuple(name, FIELDS)
    cls.__module__ = module_name
    cls.__qualname__ = name
    return cls


def register_strategy(module) -> type:
    cls = module.View
    _IMPLS[cls] = module
    return cls


def _impl(v):
    if isinstance(v, types.BaseNamedTuple):
        return _IMPLS.get(v.instance_class)
    return None


def strat_book(v, i, out):
    return _IMPLS[type(v)].on_book_update(v, i, out)


def strat_trade(v, i, price, qty, aggressor, out):
    return _IMPLS[type(v)].on_trade(v, i, price, qty, aggressor, out)


def strat_exec(v, i, clordid, exec_type, side, last_px, last_qty, out):
    return _IMPLS[type(v)].on_execution(v, i, clordid, exec_type, side, last_px, last_qty, out)


@overload(strat_book, jit_options={"cache": True})
def _ov_book(v, i, out):
    m = _impl(v)
    if m is not None:
        f = m.on_book_update
        return lambda v, i, out: f(v, i, out)


@overload(strat_trade, jit_options={"cache": True})
def _ov_trade(v, i, price, qty, aggressor, out):
    m = _impl(v)
    if m is not None:
        f = m.on_trade
        return lambda v, i, price, qty, aggressor, out: f(v, i, price, qty, aggressor, out)


@overload(strat_exec, jit_options={"cache": True})
def _ov_exec(v, i, clordid, exec_type, side, last_px, last_qty, out):
    m = _impl(v)
    if m is not None:
        f = m.on_execution
        return lambda v, i, clordid, exec_type, side, last_px, last_qty, out: \
            f(v, i, clordid, exec_type, side, last_px, last_qty, out)

"""Calling the user's strategy from the compiled loop without giving up the on-disk cache.

Passing a Numba function as an argument makes the caller uncacheable (the dispatcher's
identity is part of the type). Instead each strategy module declares its own view type
(``View = view_type(__name__)``), registers its three callbacks for it, and the loop calls
``strat_book(v, ...)`` etc.; an ``@overload`` picks the callbacks from the type of ``v``
at compile time, exactly as drivers/port.py dispatches rx_burst by the driver's state
type. The loop compiled for one strategy is cached like any other function.
Numba's cache checks only the caller's own source file (numba-hot-path.md §6), so a loop
that inlined a strategy would not notice the strategy being edited. The view's type name
therefore carries a digest of the strategy module's source: an edited strategy is a new
signature, compiled afresh, and the old cached loop is simply not looked up again. (A
strategy's helpers in *other* files are not covered: keep a strategy in one file or clear
``NUMBA_CACHE_DIR`` after editing its helpers.)
"""

from __future__ import annotations

import hashlib
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
    # one strategy would be loaded for the other) -- and the source digest, so that an
    # edited strategy is not served from a loop cached for its previous version.
    name = "View_" + module_name.replace(".", "_") + "_" + _source_digest(module_name)
    cls = namedtuple(name, FIELDS)
    cls.__module__ = module_name
    cls.__qualname__ = name
    module = sys.modules.get(module_name)
    if module is not None:
        _answer_stale_views(module)
    return cls


def _answer_stale_views(module) -> None:
    """Numba unpickles a cache index whole: an entry compiled for an earlier version of the
    strategy names a view class (``View_<module>_<old digest>``) that no longer exists, and
    the failed lookup would abort the load. The module answers such names with a stand-in
    class (PEP 562 module ``__getattr__``); the stand-in is a different type, so that entry
    never matches and the loop is compiled for the strategy as it is now."""
    previous = module.__dict__.get("__getattr__")

    def __getattr__(attr):
        if attr.startswith("View_"):
            return namedtuple(attr, FIELDS)
        if previous is not None:
            return previous(attr)
        raise AttributeError(f"module {module.__name__!r} has no attribute {attr!r}")

    module.__getattr__ = __getattr__


def _source_digest(module_name: str) -> str:
    path = getattr(sys.modules.get(module_name), "__file__", None)
    if not path:
        return "nosrc"      # defined interactively: nothing on disk to go stale
    with open(path, "rb") as f:
        return hashlib.sha1(f.read()).hexdigest()[:12]


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

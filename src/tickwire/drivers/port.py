"""The Port contract: every driver looks like this to the layers above.

From Python::

    with open_port("memif:socket=/run/tw.sock,role=client", pool) as port:
        bufs = np.empty(32, np.int32)
        n = port.rx_burst(bufs)            # we now own bufs[:n]
        sent = port.tx_burst(bufs, n)      # the port took bufs[:sent]; the rest are still ours

From Numba (the engine loop), with the same names::

    from tickwire.drivers.port import rx_burst, tx_burst
    n = rx_burst(port.state, pool.arrays, bufs, 32)

``rx_burst``/``tx_burst`` are plain Python functions that Numba compiles through
``@overload``: at compile time the overload looks up the driver implementation
registered for the type of ``state`` (each driver's state is its own namedtuple of
numpy arrays). The call inlines the driver's njit function, so a loop over a
memif port and a loop over an AF_XDP port are each compiled straight through, and
both stay cacheable (no function pointers, no dispatcher arguments).

Ownership (DPDK rules): rx_burst allocates from ``pool`` and returns buffers the
caller owns; tx_burst sends ``bufs[:sent]``, frees them back to ``pool`` and
returns ``sent``; ``bufs[sent:n]`` stay with the caller.

The control plane (connection handshakes, link changes, peer errors) is serviced
by ``port.poll()`` from Python between bounded runs of the loop, never per packet.
"""

from __future__ import annotations

import importlib

from numba import types
from numba.extending import overload

from ..mem.hotpath import into_runtime_free_callers
from .counters import Counters
from .spec import SpecArgs, SpecError, parse_spec

_RX_IMPLS: dict[type, object] = {}
_TX_IMPLS: dict[type, object] = {}
_REFLECT_IMPLS: dict[type, object] = {}


def register_burst(state_type: type, rx_impl, tx_impl) -> None:
    """Called by each driver module at import: its state namedtuple -> njit functions."""
    _RX_IMPLS[state_type] = rx_impl
    _TX_IMPLS[state_type] = tx_impl


def register_reflect(state_type: type, impl) -> None:
    """A driver with a one-copy macswap reflect registers it here (memif's server does)."""
    _REFLECT_IMPLS[state_type] = impl


def rx_burst(state, pool, bufs, n):
    """Receive up to ``n`` frames into buffers from ``pool``; returns the count."""
    return _RX_IMPLS[type(state)](state, pool, bufs, n)


def tx_burst(state, pool, bufs, n):
    """Transmit ``bufs[:n]`` (from ``pool``); returns how many the port took."""
    return _TX_IMPLS[type(state)](state, pool, bufs, n)


def reflect(state, n):
    """Outside the Port contract, for echo loops: reflect up to ``n`` received frames
    straight back out with MACs swapped, inside the driver (no pool alloc/free, one copy).
    Returns the frames reflected, or -1 - reflected when what is left (chained or short
    frames, a full TX ring) needs rx_burst/tx_burst; -1 for ports without one."""
    impl = _REFLECT_IMPLS.get(type(state))
    return -1 if impl is None else impl(state, n)


def _resolve(table, state):
    if isinstance(state, types.BaseNamedTuple):
        return table.get(state.instance_class)
    return None


# Inlined into runtime-free callers, the forwarding lambda leaves the caller calling the
# driver's function itself, which a driver can have inlined in turn (memif does).
@overload(rx_burst, inline=into_runtime_free_callers)  # not cached: its index would pickle every caller's state type, and one from a non-importable module (a test's) breaks loading for everybody; callers are cached with it inlined
def _rx_burst_ov(state, pool, bufs, n):
    impl = _resolve(_RX_IMPLS, state)
    if impl is not None:
        return lambda state, pool, bufs, n: impl(state, pool, bufs, n)


@overload(tx_burst, inline=into_runtime_free_callers)  # not cached: see rx_burst
def _tx_burst_ov(state, pool, bufs, n):
    impl = _resolve(_TX_IMPLS, state)
    if impl is not None:
        return lambda state, pool, bufs, n: impl(state, pool, bufs, n)


@overload(reflect, inline=into_runtime_free_callers)  # not cached: see rx_burst
def _reflect_ov(state, n):
    impl = _resolve(_REFLECT_IMPLS, state)
    if impl is not None:
        return lambda state, n: impl(state, n)
    return lambda state, n: -1


class Port:
    """Base class. A driver sets ``state`` (namedtuple of arrays whose type was given
    to ``register_burst``), ``counters`` and ``pool`` and implements ``poll``/``close``."""

    spec: str = ""
    state = None
    counters: Counters
    pool = None

    # --- data path (Python face; Numba code calls the module-level functions) ---
    def rx_burst(self, bufs, n: int | None = None) -> int:
        return rx_burst(self.state, self.pool.arrays, bufs, len(bufs) if n is None else n)

    def tx_burst(self, bufs, n: int | None = None) -> int:
        return tx_burst(self.state, self.pool.arrays, bufs, len(bufs) if n is None else n)

    # --- control plane ---------------------------------------------------------
    @property
    def link_up(self) -> bool:
        raise NotImplementedError

    def poll(self) -> None:
        """Service the control plane (non-blocking). Drivers without one do nothing."""

    def stats(self) -> dict[str, int]:
        return self.counters.as_dict()

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


def open_port(spec: str, pool=None) -> Port:
    """Open a port from its spec string. ``pool`` is the mempool RX buffers come from
    (a default pool is made when omitted). The driver module is
    ``tickwire.drivers.<scheme>`` and must define ``open(args: SpecArgs, pool, spec)``."""
    scheme, args = parse_spec(spec)
    try:
        module = importlib.import_module(f"tickwire.drivers.{scheme}")
    except ModuleNotFoundError as e:
        if e.name != f"tickwire.drivers.{scheme}":
            raise
        raise SpecError(f"port spec {spec!r}: no driver named {scheme!r}") from None
    if not callable(getattr(module, "open", None)):  # a helper module (counters, spec, ...), not a driver
        raise SpecError(f"port spec {spec!r}: no driver named {scheme!r}")
    if pool is None:
        from ..mem.mempool import Mempool
        pool = Mempool()
    sargs = SpecArgs(scheme, args)
    port = module.open(sargs, pool, spec)
    return port

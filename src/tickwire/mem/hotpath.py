"""The decorator for compiled hot loops: ``@hot`` = ``njit(cache=True, _nrt=False)``.

Why not plain ``njit``: with Numba's runtime (NRT) on, every array held in a local,
passed to a helper, or read out of a namedtuple gets an atomic incref/decref, and
LLVM's refcount pruning gives up on loops with branches. Measured on a mempool
alloc+free (a branch for "pool empty"): 76 ns with NRT, 8 ns without. Hot loops
never allocate, so they need no runtime: without it they compile to what C would.
A ``@hot`` function that tries to allocate (np.empty, list, ...) fails to compile,
which is the check we want. Helpers called from hot code should be
``numba.extending.register_jitable`` so they are compiled into their caller.
"""

from __future__ import annotations

from numba import njit
from numba.core.targetconfig import ConfigStack


def hot(fn=None, **options):
    """``@hot`` or ``@hot(nogil=True)``: a cached, runtime-free njit function."""
    opts = {"cache": True, "_nrt": False, **options}
    if fn is None:
        return lambda f: njit(**opts)(f)
    return njit(**opts)(fn)


def into_runtime_free_callers(expr, caller_info, callee_info) -> bool:
    """Numba inline cost model (``njit(inline=into_runtime_free_callers)``): inline into
    callers compiled without the runtime (``@hot`` loops), call otherwise.

    Why: a call passes every array of its tuple arguments field by field (a port state and
    the pool: ~108 words on the stack for memif; the engine state: ~180), often for a few
    dozen instructions of work. Inlined into a caller that has the runtime, each array
    taken out of a namedtuple would get an atomic incref/decref instead (memif empty poll
    40 -> 180 ns), so such callers keep the call. The compiling caller's flags are the
    top of Numba's ConfigStack while it compiles. Used by the send path (order/, stack/tcp
    fast_send) and the port bursts (drivers/port.py, memif's data path). The inlined
    caller compiles longer from a cold cache: compile loops before a peer starts its clock."""
    flags = ConfigStack.top_or_none()
    return flags is not None and not flags.nrt

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


def hot(fn=None, **options):
    """``@hot`` or ``@hot(nogil=True)``: a cached, runtime-free njit function."""
    opts = {"cache": True, "_nrt": False, **options}
    if fn is None:
        return lambda f: njit(**opts)(f)
    return njit(**opts)(fn)

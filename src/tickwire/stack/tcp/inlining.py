"""Numba inline cost model for the per-message send functions (``fast_send``, and order/'s
``check_new``, ``commit_new``, ``submit_new``, ``enc_new_order``): inline into callers
compiled without Numba's runtime (``@hot`` loops, the engine), call otherwise.

Why: a call passes every array of its tuple arguments field by field (the risk state, the
connection tables, the pool's six arrays: 37-90 words on the stack) for a few dozen
instructions of work; inlined into a caller that has the runtime, each array taken out of
a namedtuple would get an atomic incref/decref instead, so such callers keep the call.
The compiling caller's flags are the top of Numba's ConfigStack while it compiles. (The
memif driver used the same model in session 4; this copy keeps the send path independent
of the driver layer's choices.)"""

from __future__ import annotations

from numba.core.targetconfig import ConfigStack


def into_runtime_free_callers(expr, caller_info, callee_info) -> bool:
    flags = ConfigStack.top_or_none()
    return flags is not None and not flags.nrt

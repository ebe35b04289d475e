"""Passing a state tuple to a compiled function by reference instead of by value.

Numba passes a namedtuple argument field by field: every array becomes ~7-9 machine words
(meminfo, parent, size, itemsize, data, shape, strides), so a call taking the engine
state has 177-189 LLVM arguments, and each call that LLVM does not inline stores them all
on the stack and the callee reads them back. Measured in one process (a call that does a
few stores, not inlined): ~37 ns by value, ~2.5 ns through a pointer (docs/engine.md).

    EP = by_ref(E)      # once, in the loop: E stored in a stack slot of the caller
    f(EP, ...)          # one pointer passed
    E = deref(EP)       # in f: LLVM loads only the fields f uses

The slot lives as long as the function that called ``by_ref``: pass the pointer down,
never return it or keep it. Runtime-free (``@hot``) functions only, and typing refuses
anything else: with Numba's runtime on, the tuple's variable is released right after
``by_ref`` (its last use), which can free arrays the slot still points to, and ``deref``
would count as a new reference, released (freeing the engine's arrays) at the end.
Intrinsics: inlined, cacheable (notes/numba-hot-path.md §2).

``deref``'s result is registered with Numba's alias analysis as memory the caller can see
(like an argument). Without that, Numba's dead-code elimination (run on a function after it
inlines an ``@overload``, e.g. a port's tx_burst) dropped stores with a variable index into
its arrays whose temporary was dead afterwards: ``pool.data_len[idx] = n`` in the segment
build vanished when the transmit side came through ``deref`` (session 6; the "sent without
building anything" of session 5; tests/test_ref.py).
"""

from __future__ import annotations

from numba import types
from numba.core import cgutils, ir_utils
from numba.extending import intrinsic


def _runtime_free_only(context, what):
    """Checked when lowering, per call site (typing results are cached per signature, so
    a check there would not see a second caller)."""
    if context.enable_nrt:
        raise TypeError(f"{what}: only in runtime-free (@hot, _nrt=False) functions (mem/ref.py)")


@intrinsic
def by_ref(typingctx, x):
    """A pointer to a copy of ``x`` in the caller's stack frame (its entry block)."""
    sig = types.CPointer(x)(x)

    def codegen(context, builder, sig, args):
        _runtime_free_only(context, "by_ref")
        dm = context.data_model_manager[sig.args[0]]
        slot = cgutils.alloca_once(builder, dm.get_data_type())
        builder.store(dm.as_data(builder, args[0]), slot)
        return slot
    return sig, codegen


@intrinsic
def deref(typingctx, p):
    """The tuple ``p`` points to (``by_ref``)."""
    if not isinstance(p, types.CPointer):
        return None
    sig = p.dtype(p)

    def codegen(context, builder, sig, args):
        _runtime_free_only(context, "deref")
        return context.data_model_manager[sig.return_type].load_from_data_pointer(builder, args[0])
    return sig, codegen


def _deref_points_to_visible_memory(lhs, args, alias_map, arg_aliases):
    """Numba alias analysis (ir_utils.find_potential_aliases): what ``deref`` returns lives
    beyond the function, as an argument does, so stores into it are never dead."""
    arg_aliases.add(lhs)


ir_utils.alias_func_extensions[("deref", deref._defn.__module__)] = _deref_points_to_visible_memory

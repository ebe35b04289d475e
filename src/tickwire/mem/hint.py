"""Branch hints for compiled hot code: ``if likely(c):`` / ``if unlikely(c):``.

LLVM's llvm.expect.i1 becomes branch-weight metadata, which the optimizer uses to lay
out the hot path straight (rare paths moved out of the way) and which the register
allocator uses as block frequencies: spill and reload code goes to the blocks marked
rare instead of the loop's common path. Without a hint LLVM guesses (about 50/50 for a
compare of loaded values), and the feed's entry loop spilled and reloaded its live values
on every entry (session 7 asm of feed_run). Only for branches whose outcome is known to
be lopsided (bounds checks, bad input, recovery states); never for data-dependent ones.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic


def _expect(value):
    @intrinsic
    def hint(typingctx, c):
        if not isinstance(c, types.Boolean):
            return None

        def codegen(context, builder, sig, args):
            i1 = ir.IntType(1)
            fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(i1, [i1, i1]), "llvm.expect.i1")
            return builder.call(fn, [args[0], ir.Constant(i1, value)])

        return types.boolean(c), codegen

    return hint


likely = _expect(1)
unlikely = _expect(0)

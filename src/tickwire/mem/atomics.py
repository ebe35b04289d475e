"""Memory-ordering primitives for Numba hot paths.

Why this module exists: Numba compiles ``a[i]`` to a plain LLVM load, and LLVM may
hoist a plain load out of a loop whose body does not write memory. A poll loop on a
ring index written by another process then compiles to an infinite self-loop
(see shared/notes/numba-hot-path.md §1). Each function below is a Numba
``@intrinsic`` that emits exactly one LLVM instruction (an atomic load/store with an
explicit ordering, a fence, ``pause``, ``rdtscp`` or ``memcpy``). Intrinsics inline
into the caller, contain no ctypes pointers, and are therefore safe with
``cache=True``.

Addressing: shared memory (memif regions, AF_XDP rings, NIC BARs) is handed to
the hot path as one flat ``uint8`` array, and every field is addressed by its byte
offset, exactly as in the C headers the layouts come from. ``load_u32(buf, off)``
reads the little-endian u32 at ``buf[off:off+4]``. No bounds check is done here:
callers validate offsets taken from a peer before using them (house rule).

On x86-64 (TSO) acquire loads and release stores compile to plain ``mov``; the
ordering matters for the *compiler*, and for the CPU on arm64.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

_INT = {8: types.uint8, 16: types.uint16, 32: types.uint32, 64: types.uint64}


def _byte_ptr(context, builder, arrty, arr, offset):
    """i8* to ``arr.data + offset`` (no wraparound, no bounds check)."""
    ary = context.make_array(arrty)(context, builder, arr)
    base = builder.bitcast(ary.data, ir.IntType(8).as_pointer())
    return builder.gep(base, [offset])


def _typed_ptr(context, builder, arrty, arr, offset, bits):
    return builder.bitcast(
        _byte_ptr(context, builder, arrty, arr, offset), ir.IntType(bits).as_pointer()
    )


def _make_load(bits, ordering):
    rettype = _INT[bits]

    @intrinsic
    def load(typingctx, buf, offset):
        if not isinstance(buf, types.Array) or not isinstance(offset, types.Integer):
            return None
        sig = rettype(buf, types.intp)

        def codegen(context, builder, signature, args):
            arr, off = args
            ptr = _typed_ptr(context, builder, buf, arr, off, bits)
            if ordering is None:
                return builder.load(ptr, align=1)
            return builder.load_atomic(ptr, ordering, align=bits // 8)

        return sig, codegen

    return load


def _make_store(bits, ordering):
    valtype = _INT[bits]

    @intrinsic
    def store(typingctx, buf, offset, value):
        if not isinstance(buf, types.Array) or not isinstance(offset, types.Integer):
            return None
        sig = types.void(buf, types.intp, valtype)

        def codegen(context, builder, signature, args):
            arr, off, val = args
            ptr = _typed_ptr(context, builder, buf, arr, off, bits)
            if ordering is None:
                builder.store(val, ptr, align=1)
            else:
                builder.store_atomic(val, ptr, ordering, align=bits // 8)
            return context.get_dummy_value()

        return sig, codegen

    return store


# Plain accesses (may be merged/reordered by the compiler; for data and descriptors
# that are published by a later release store).
load_u8, load_u16, load_u32, load_u64 = (_make_load(b, None) for b in (8, 16, 32, 64))
store_u8, store_u16, store_u32, store_u64 = (_make_store(b, None) for b in (8, 16, 32, 64))

# Acquire loads: read a peer's producer/consumer index, then read what it published.
load_acquire_u16, load_acquire_u32, load_acquire_u64 = (
    _make_load(b, "acquire") for b in (16, 32, 64)
)
# Relaxed loads: re-read on every iteration, no ordering with other accesses.
load_relaxed_u16, load_relaxed_u32, load_relaxed_u64 = (
    _make_load(b, "monotonic") for b in (16, 32, 64)
)
# Release stores: publish an index after the descriptors and data it covers.
store_release_u16, store_release_u32, store_release_u64 = (
    _make_store(b, "release") for b in (16, 32, 64)
)


@intrinsic
def fence_seq_cst(typingctx):
    """Full fence (``lock or`` on x86): orders a store before a later load."""

    def codegen(context, builder, signature, args):
        builder.fence("seq_cst")
        return context.get_dummy_value()

    return types.void(), codegen


@intrinsic
def compiler_barrier(typingctx):
    """Stops the compiler from moving memory accesses across this point; emits nothing."""

    def codegen(context, builder, signature, args):
        builder.fence("seq_cst", "singlethread")
        return context.get_dummy_value()

    return types.void(), codegen


@intrinsic
def cpu_pause(typingctx):
    """x86 ``pause``: spin-wait hint (cheaper ping-pong on a shared line, notes §9)."""

    def codegen(context, builder, signature, args):
        fnty = ir.FunctionType(ir.VoidType(), [])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.x86.sse2.pause")
        builder.call(fn, [])
        return context.get_dummy_value()

    return types.void(), codegen


@intrinsic
def rdtscp(typingctx):
    """Time-stamp counter via ``rdtscp`` (waits for earlier loads to retire; notes §9)."""

    def codegen(context, builder, signature, args):
        i64, i32 = ir.IntType(64), ir.IntType(32)
        fnty = ir.FunctionType(ir.LiteralStructType([i64, i32]), [])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.x86.rdtscp")
        return builder.extract_value(builder.call(fn, []), 0)

    return types.int64(), codegen


@intrinsic
def rdtsc(typingctx):
    """Time-stamp counter via plain ``rdtsc`` (``llvm.readcyclecounter``): not ordered with
    the instructions around it, so it may read a few tens of ns early or late, but it does
    not stall the pipeline as ``rdtscp`` does (~18 vs ~37 ns per call measured on the
    development VM, and rdtscp waits for every earlier instruction). For *intermediate*
    stage stamps only; the two ends of a measured span stay ``rdtscp`` (notes §9)."""

    def codegen(context, builder, signature, args):
        fnty = ir.FunctionType(ir.IntType(64), [])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.readcyclecounter")
        return builder.call(fn, [])

    return types.int64(), codegen


@intrinsic
def memcpy(typingctx, dst, dst_off, src, src_off, nbytes):
    """``memcpy(dst.data + dst_off, src.data + src_off, nbytes)`` on byte offsets.

    Lowers to ``llvm.memcpy``; a constant size becomes one vector move (notes §3).
    The regions must not overlap. No bounds check: validate first.
    """
    if not (isinstance(dst, types.Array) and isinstance(src, types.Array)):
        return None

    def codegen(context, builder, signature, args):
        d, doff, s, soff, n = args
        dp = _byte_ptr(context, builder, dst, d, doff)
        sp = _byte_ptr(context, builder, src, s, soff)
        cgutils.raw_memcpy(builder, dp, sp, n, 1)
        return context.get_dummy_value()

    return types.void(dst, types.intp, src, types.intp, types.intp), codegen


def _make_prefetch(rw):
    @intrinsic
    def prefetch_line(typingctx, buf, offset):
        if not isinstance(buf, types.Array) or not isinstance(offset, types.Integer):
            return None

        def codegen(context, builder, signature, args):
            arr, off = args
            ptr = _byte_ptr(context, builder, buf, arr, off)
            i32 = ir.IntType(32)
            fnty = ir.FunctionType(ir.VoidType(), [ptr.type, i32, i32, i32])
            fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
            # (address, rw = 0 read / 1 write, locality = 3: keep in all levels, cache type = data)
            builder.call(fn, [ptr, ir.Constant(i32, rw), ir.Constant(i32, 3), ir.Constant(i32, 1)])
            return context.get_dummy_value()

        return types.void(buf, types.intp), codegen

    return prefetch_line


# Prefetch the cache line at ``buf.data + offset``: ``prefetch`` for reading (``prefetcht0``),
# ``prefetch_write`` for writing (``prefetchw``: the line arrives owned, so the stores that
# follow need no further transfer). Neither ever faults, so an address taken from a peer may
# be prefetched before it is checked; used to overlap a ring's dependent line transfers
# (index -> descriptor -> frame) and the misses of a whole burst.
prefetch = _make_prefetch(0)
prefetch_write = _make_prefetch(1)

"""libc calls from nopython code that keep the caller cacheable.

A ctypes function pointer inside an njit function makes it uncacheable ("uses
dynamic globals"). Declaring the libc symbol *by name* in an intrinsic works:
the JIT resolves the name against symbols already loaded in the process
(shared/notes/numba-hot-path.md §6, §8). Used for eventfd kicks (memif interrupt
mode), AF_XDP wakeups (sendto/recvfrom with a NULL buffer) and poll.

All return the raw libc result (-1 on error); ``errno()`` reads errno.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

_i8p = ir.IntType(8).as_pointer()
_i32, _i64 = ir.IntType(32), ir.IntType(64)


def _libc(builder, name, ret, args):
    return cgutils.get_or_insert_function(builder.module, ir.FunctionType(ret, args), name)


def _data_ptr(context, builder, arrty, arr, offset):
    ary = context.make_array(arrty)(context, builder, arr)
    return builder.gep(builder.bitcast(ary.data, _i8p), [offset])


@intrinsic
def sys_write(typingctx, fd, buf, offset, nbytes):
    """write(fd, buf.data + offset, nbytes)"""
    if not isinstance(buf, types.Array):
        return None

    def codegen(context, builder, sig, args):
        fdv, arr, off, n = args
        fn = _libc(builder, "write", _i64, [_i32, _i8p, _i64])
        return builder.call(fn, [builder.trunc(fdv, _i32), _data_ptr(context, builder, buf, arr, off), n])

    return types.int64(types.int64, buf, types.intp, types.intp), codegen


@intrinsic
def sys_read(typingctx, fd, buf, offset, nbytes):
    """read(fd, buf.data + offset, nbytes)"""
    if not isinstance(buf, types.Array):
        return None

    def codegen(context, builder, sig, args):
        fdv, arr, off, n = args
        fn = _libc(builder, "read", _i64, [_i32, _i8p, _i64])
        return builder.call(fn, [builder.trunc(fdv, _i32), _data_ptr(context, builder, buf, arr, off), n])

    return types.int64(types.int64, buf, types.intp, types.intp), codegen


@intrinsic
def sys_kick_sendto(typingctx, fd, flags):
    """sendto(fd, NULL, 0, flags, NULL, 0): the AF_XDP TX wakeup."""

    def codegen(context, builder, sig, args):
        fdv, fl = args
        fn = _libc(builder, "sendto", _i64, [_i32, _i8p, _i64, _i32, _i8p, _i32])
        null = ir.Constant(_i8p, None)
        return builder.call(fn, [builder.trunc(fdv, _i32), null, ir.Constant(_i64, 0),
                                 builder.trunc(fl, _i32), null, ir.Constant(_i32, 0)])

    return types.int64(types.int64, types.int64), codegen


@intrinsic
def sys_kick_recvfrom(typingctx, fd, flags):
    """recvfrom(fd, NULL, 0, flags, NULL, NULL): the AF_XDP RX (fill ring) wakeup."""

    def codegen(context, builder, sig, args):
        fdv, fl = args
        fn = _libc(builder, "recvfrom", _i64, [_i32, _i8p, _i64, _i32, _i8p, _i8p])
        null = ir.Constant(_i8p, None)
        return builder.call(fn, [builder.trunc(fdv, _i32), null, ir.Constant(_i64, 0),
                                 builder.trunc(fl, _i32), null, null])

    return types.int64(types.int64, types.int64), codegen


@intrinsic
def errno(typingctx):
    """The calling thread's errno (via __errno_location)."""

    def codegen(context, builder, sig, args):
        fn = _libc(builder, "__errno_location", _i32.as_pointer(), [])
        return builder.sext(builder.load(builder.call(fn, [])), _i64)

    return types.int64(), codegen

"""libc socket calls from Numba nopython code, kept cacheable.

Why intrinsics: a ctypes function pointer inside an ``@njit`` function makes it
uncacheable ("uses dynamic globals"). Declaring the libc symbol *by name* in the
LLVM module (``cgutils.get_or_insert_function``) lets the JIT resolve it against
the libc already loaded in the process, and the caller stays ``cache=True``
(shared/notes/numba-hot-path.md §6, §8).

Buffers are numpy arrays addressed by byte offset (as in ``tickwire.mem.atomics``);
no bounds check is done here -- callers validate offset and length first.
"""

from __future__ import annotations



from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic




MSG_DONTWAIT = 0x40
MSG_NOSIGNAL = 0x4000
EAGAIN, EINTR, ENOBUFS, EBUSY, ENETDOWN = 11, 4, 105, 16, 100

_i8p = ir.IntType(8).as_pointer()
_i32, _i64 = ir.IntType(32), ir.IntType(64)


def _ptr(context, builder, arrty, arr, off):
    ary = context.make_array(arrty)(context, builder, arr)
    return builder.gep(builder.bitcast(ary.data, _i8p), [off])


def _fn(builder, name, ret, args):
    return cgutils.get_or_insert_function(builder.module, ir.FunctionType(ret, args), name)


@intrinsic
def sys_sendto(typingctx, fd, buf, off, length, flags, addr, addrlen):
    """``sendto(fd, buf+off, length, flags, addrlen ? addr : NULL, addrlen)`` -> ssize_t."""
    if not (isinstance(buf, types.Array) and isinstance(addr, types.Array)):
        return None
    sig = types.int64(fd, buf, types.intp, types.intp, flags, addr, addrlen)

    def codegen(context, builder, signature, args):
        vfd, vbuf, voff, vlen, vfl, vaddr, valen = args
        p = _ptr(context, builder, buf, vbuf, voff)
        alen = builder.trunc(valen, _i32) if valen.type.width > 32 else valen
        ap = _ptr(context, builder, addr, vaddr, ir.Constant(_i64, 0))
        ap = builder.select(builder.icmp_unsigned("==", alen, ir.Constant(_i32, 0)),
                            ir.Constant(_i8p, None), ap)
        fn = _fn(builder, "sendto", _i64, [_i32, _i8p, _i64, _i32, _i8p, _i32])
        return builder.call(fn, [builder.trunc(vfd, _i32) if vfd.type.width > 32 else vfd, p, vlen,
                                 builder.trunc(vfl, _i32) if vfl.type.width > 32 else vfl, ap, alen])

    return sig, codegen


@intrinsic
def sys_recvfrom(typingctx, fd, buf, off, length, flags, addr):
    """``recvfrom(fd, buf+off, length, flags, addr, (socklen_t*)(addr+16))`` -> ssize_t.

    ``addr`` is a uint8 array of at least 20 bytes: a sockaddr_in at 0 and its
    socklen_t at 16, which the caller sets to 16 before the call."""
    if not (isinstance(buf, types.Array) and isinstance(addr, types.Array)):
        return None
    sig = types.int64(fd, buf, types.intp, types.intp, flags, addr)

    def codegen(context, builder, signature, args):
        vfd, vbuf, voff, vlen, vfl, vaddr = args
        p = _ptr(context, builder, buf, vbuf, voff)
        ap = _ptr(context, builder, addr, vaddr, ir.Constant(_i64, 0))
        lp = _ptr(context, builder, addr, vaddr, ir.Constant(_i64, 16))
        fn = _fn(builder, "recvfrom", _i64, [_i32, _i8p, _i64, _i32, _i8p, _i8p])
        return builder.call(fn, [builder.trunc(vfd, _i32) if vfd.type.width > 32 else vfd, p, vlen,
                                 builder.trunc(vfl, _i32) if vfl.type.width > 32 else vfl, ap, lp])

    return sig, codegen


@intrinsic
def xsk_kick_tx(typingctx, fd):
    """AF_XDP TX wake-up: ``sendto(fd, NULL, 0, MSG_DONTWAIT, NULL, 0)`` (if_xdp.h need_wakeup).
    In copy mode the kernel transmits inside this very call (notes/af_xdp.md §5)."""
    def codegen(context, builder, signature, args):
        (vfd,) = args
        null = ir.Constant(_i8p, None)
        fn = _fn(builder, "sendto", _i64, [_i32, _i8p, _i64, _i32, _i8p, _i32])
        return builder.call(fn, [builder.trunc(vfd, _i32), null, ir.Constant(_i64, 0),
                                 ir.Constant(_i32, MSG_DONTWAIT), null, ir.Constant(_i32, 0)])

    return types.int64(types.int64), codegen


@intrinsic
def xsk_kick_rx(typingctx, fd):
    """AF_XDP RX wake-up: ``recvfrom(fd, NULL, 0, MSG_DONTWAIT, NULL, NULL)``."""
    def codegen(context, builder, signature, args):
        (vfd,) = args
        null = ir.Constant(_i8p, None)
        fn = _fn(builder, "recvfrom", _i64, [_i32, _i8p, _i64, _i32, _i8p, _i8p])
        return builder.call(fn, [builder.trunc(vfd, _i32), null, ir.Constant(_i64, 0),
                                 ir.Constant(_i32, MSG_DONTWAIT), null, null])

    return types.int64(types.int64), codegen


@intrinsic
def sys_errno(typingctx):
    """The calling thread's errno (``*__errno_location()``)."""
    def codegen(context, builder, signature, args):
        fn = _fn(builder, "__errno_location", _i32.as_pointer(), [])
        return builder.sext(builder.load(builder.call(fn, [])), _i64)

    return types.int64(), codegen


@intrinsic
def sys_write(typingctx, fd, buf, off, length):
    """``write(fd, buf+off, length)`` -> ssize_t (the memif eventfd kick)."""
    if not isinstance(buf, types.Array):
        return None

    def codegen(context, builder, signature, args):
        vfd, vbuf, voff, vlen = args
        fn = _fn(builder, "write", _i64, [_i32, _i8p, _i64])
        return builder.call(fn, [builder.trunc(vfd, _i32), _ptr(context, builder, buf, vbuf, voff), vlen])

    return types.int64(types.int64, buf, types.intp, types.intp), codegen

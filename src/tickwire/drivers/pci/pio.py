"""Port I/O from the hot path: a 2-byte ``pwrite`` on an I/O BAR file.

Legacy virtio's queue doorbell lives in an I/O-port BAR, which cannot be mmapped
(notes qemu-guest §6); the kernel turns a 1/2/4-byte pread/pwrite on the sysfs
``resourceN`` file (or the VFIO region) into an in/out instruction. ``pwrite`` is
declared by name in the LLVM module so callers stay ``cache=True``
(notes numba-hot-path §6).
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic


@intrinsic
def pwrite_u16(typingctx, fd, offset, value):
    """``pwrite(fd, &value, 2, offset)`` -> bytes written (2) or -1."""
    sig = types.int64(types.int64, types.int64, types.int64)

    def codegen(context, builder, signature, args):
        vfd, voff, vval = args
        i16, i32, i64 = ir.IntType(16), ir.IntType(32), ir.IntType(64)
        slot = cgutils.alloca_once(builder, i16)
        builder.store(builder.trunc(vval, i16), slot)
        fnty = ir.FunctionType(i64, [i32, ir.IntType(8).as_pointer(), i64, i64])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "pwrite")
        return builder.call(fn, [builder.trunc(vfd, i32), builder.bitcast(slot, ir.IntType(8).as_pointer()),
                                 ir.Constant(i64, 2), voff])

    return sig, codegen

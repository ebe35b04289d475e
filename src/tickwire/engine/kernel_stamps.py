"""When the kernel received a datagram: the start of the kernel path's tick-to-trade.

The fair wire-to-wire start for a kernel-socket engine is the moment the kernel took the
datagram in, not the moment ``recvfrom`` returned it (that leaves out the kernel's own
IP/UDP work, the socket queue and the receive syscall). The kernel records that moment as
the packet's software receive timestamp (``skb->tstamp``, CLOCK_REALTIME, taken when the
packet enters the receive path: ``net_timestamp_check`` in ``netif_rx``, which on
loopback runs inside the sender's ``sendto``) once timestamping is enabled on the socket.

Two ways to read it (socket(7), Documentation/networking/timestamping.rst):
``SO_TIMESTAMPNS`` delivers it as a control message of ``recvmsg``; ``ioctl(SIOCGSTAMPNS)``
returns the timestamp of the last datagram passed to the user. The engine uses the ioctl:
the ``udp:`` port receives with ``recvfrom`` (one code path for every user), and the ioctl
can be made *after* the order is sent, so its cost is not charged to the kernel path.
It is the same timestamp: with SOCK_TIMESTAMP set (by the first SIOCGSTAMPNS) every
receive stores ``skb->tstamp`` as the socket's last stamp (``sock_recv_cmsgs`` in
include/net/sock.h). Setting SO_TIMESTAMPNS instead would stop that store, so it is not set.
Caveat from the kernel: a datagram that arrived before timestamping was enabled carries
no stamp, and the ioctl then returns the current time; such a stamp is later than the end
of the order it started and is discarded (counted) by the caller.

The end of the kernel path is taken with ``clock_gettime(CLOCK_REALTIME)`` right after
``send`` returned on the order-entry socket, so start and end are on the same clock.
Both calls are libc symbols declared by name (cacheable, shared/notes/numba-hot-path.md §6).
"""

from __future__ import annotations

import errno
import fcntl

from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from ..drivers.libc_calls import _ptr

SIOCGSTAMPNS = 0x8907        # include/uapi/asm-generic/sockios.h (SIOCGSTAMPNS_OLD: 64-bit time_t on x86-64)
CLOCK_REALTIME = 0
_i8p = ir.IntType(8).as_pointer()
_i32, _i64 = ir.IntType(32), ir.IntType(64)


def _timespec_call(name, fnty, extra):
    """An intrinsic ``f(n, ts) -> int64`` calling libc ``name((int) n, *extra, (struct timespec *) ts)``."""
    @intrinsic
    def call(typingctx, n, ts):
        if not isinstance(n, types.Integer) or not isinstance(ts, types.Array):
            return None

        def codegen(context, builder, signature, args):
            vn, vts = args
            p = _ptr(context, builder, ts, vts, ir.Constant(_i64, 0))
            fn = cgutils.get_or_insert_function(builder.module, fnty, name)
            r = builder.call(fn, [builder.trunc(vn, _i32) if vn.type.width > 32 else vn, *extra, p])
            return builder.sext(r, _i64)

        return types.int64(n, ts), codegen
    return call


# int ioctl(int, unsigned long, ...): declared variadic, so the call sets %al as the ABI wants
_ioctl_timespec = _timespec_call("ioctl", ir.FunctionType(_i32, [_i32, _i64], var_arg=True),
                                 [ir.Constant(_i64, SIOCGSTAMPNS)])
_clock_gettime = _timespec_call("clock_gettime", ir.FunctionType(_i32, [_i32, _i8p]), [])


@njit(cache=True, inline="always")
def realtime_ns(ts):
    """CLOCK_REALTIME now, in ns (``ts``: int64[2] scratch for the struct timespec)."""
    _clock_gettime(CLOCK_REALTIME, ts)
    return ts[0] * 1_000_000_000 + ts[1]


@njit(cache=True, inline="always")
def last_rx_stamp_ns(fd, ts):
    """CLOCK_REALTIME ns at which the kernel received the last datagram read from ``fd``
    (see the module docstring), or -1 when there is none."""
    if _ioctl_timespec(fd, ts) != 0:
        return -1
    return ts[0] * 1_000_000_000 + ts[1]


def enable_rx_stamps(fd: int) -> None:
    """Turn on receive timestamps for a socket: the first SIOCGSTAMPNS does it (and answers
    ENOENT, nothing received yet)."""
    try:
        fcntl.ioctl(fd, SIOCGSTAMPNS, bytes(16))
    except OSError as e:
        if e.errno != errno.ENOENT:
            raise

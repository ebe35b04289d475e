"""Big-endian field access on a flat ``uint8`` array, for Numba and Python.

Every header in ``tickwire.wire`` is addressed as ``(buf, off)``: the frame's
bytes live in one ``uint8`` array (a mempool's ``data``, a ring, a file image)
and ``off`` is the byte offset of the header. Network byte order is big-endian
(RFC 1700 "Data Notations"). A 16- or 32-bit field of a contiguous ``uint8``
array is read or written as one unaligned access plus a byte swap (LLVM emits
``movbe``/``bswap``/``rol``); byte by byte, each byte paid its own load or store
and Numba's negative-index wraparound code. Other arrays (strided views, other
dtypes) keep the byte-wise form, which honours strides. All values are int64
(house rule: never mix uint64 and int64 in one variable, notes/numba-hot-path.md §5).

No bounds checks here: the ``*_check`` functions of each header validate
lengths against the frame end before any field is read.

Per-packet functions in wire/ and stack/ are ``@hot`` (= ``njit(cache=True, _nrt=False)``,
mem/hotpath.py): they
never allocate, and without Numba's reference-counting runtime they carry no
NRT_incref/NRT_decref calls for every array taken from a tuple (measured: the
stack's per-frame cost fell from ~130 to ~80 ns). Only functions that build
arrays (igmp_build_due, the Python faces) keep the runtime.
"""

from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.extending import overload

from ..mem.atomics import load_u16, load_u32, store_u16, store_u32


def _one_access(buf, store=False):
    """True when ``buf`` is a C-contiguous uint8 array, where byte offset == index and
    the mem.atomics intrinsics (which address ``data + offset``) apply; for a store, also
    writable (a read-only array must stay a compile error, as ``buf[i] = v`` makes it)."""
    return (isinstance(buf, types.Array) and buf.layout == "C" and buf.dtype == types.uint8
            and (buf.mutable or not store))


@njit(cache=True, inline="always")
def _swap16(x):
    return ((x & 0xFF) << 8) | ((x >> 8) & 0xFF)


@njit(cache=True, inline="always")
def _swap32(x):
    return ((x & 0xFF) << 24) | ((x & 0xFF00) << 8) | ((x >> 8) & 0xFF00) | ((x >> 24) & 0xFF)


def _rd16(buf, off):
    """Typing stub: the big-endian u16 at ``buf[off]``, chosen per array type below."""


def _rd32(buf, off):
    """Typing stub: the big-endian u32 at ``buf[off]``."""


def _wr16(buf, off, v):
    """Typing stub: store the low 16 bits of ``v`` big-endian at ``buf[off]``."""


def _wr32(buf, off, v):
    """Typing stub: store the low 32 bits of ``v`` big-endian at ``buf[off]``."""


@njit(cache=True, inline="always")
def _rd_bytes(buf, off, width):
    """Byte by byte, honouring the array's strides (the form for strided views)."""
    v = np.int64(0)
    for i in range(width):
        v = (v << 8) | np.int64(buf[off + i])
    return v


@njit(cache=True, inline="always")
def _wr_bytes(buf, off, v, width):
    for i in range(width):
        buf[off + i] = (v >> (8 * (width - 1 - i))) & 0xFF


@overload(_rd16, jit_options={"cache": True}, inline="always")
def _ov_rd16(buf, off):
    if _one_access(buf):
        return lambda buf, off: _swap16(np.int64(load_u16(buf, off)))
    return lambda buf, off: _rd_bytes(buf, off, 2)


@overload(_rd32, jit_options={"cache": True}, inline="always")
def _ov_rd32(buf, off):
    if _one_access(buf):
        return lambda buf, off: _swap32(np.int64(load_u32(buf, off)))
    return lambda buf, off: _rd_bytes(buf, off, 4)


@overload(_wr16, jit_options={"cache": True}, inline="always")
def _ov_wr16(buf, off, v):
    if _one_access(buf, store=True):
        return lambda buf, off, v: store_u16(buf, off, np.uint16(_swap16(v)))
    return lambda buf, off, v: _wr_bytes(buf, off, v, 2)


@overload(_wr32, jit_options={"cache": True}, inline="always")
def _ov_wr32(buf, off, v):
    if _one_access(buf, store=True):
        return lambda buf, off, v: store_u32(buf, off, np.uint32(_swap32(v)))
    return lambda buf, off, v: _wr_bytes(buf, off, v, 4)


@njit(cache=True, inline="always")
def rd8(buf, off):
    return np.int64(buf[off])


@njit(cache=True, inline="always")
def rd16(buf, off):
    return _rd16(buf, off)


@njit(cache=True, inline="always")
def rd32(buf, off):
    return _rd32(buf, off)


@njit(cache=True, inline="always")
def rd48(buf, off):
    """A MAC address as an int64 (first octet most significant)."""
    return (rd16(buf, off) << 32) | rd32(buf, off + 2)


@njit(cache=True, inline="always")
def wr8(buf, off, v):
    buf[off] = v & 0xFF


@njit(cache=True, inline="always")
def wr16(buf, off, v):
    _wr16(buf, off, v)


@njit(cache=True, inline="always")
def wr32(buf, off, v):
    _wr32(buf, off, v)


@njit(cache=True, inline="always")
def wr48(buf, off, v):
    wr16(buf, off, v >> 32)
    wr32(buf, off + 2, v & 0xFFFFFFFF)


# --- Python conveniences (tools and tests) ----------------------------------------

def mac_to_int(mac: str) -> int:
    parts = mac.split(":")
    if len(parts) != 6:
        raise ValueError(f"bad MAC address {mac!r}")
    return int("".join(f"{int(p, 16):02x}" for p in parts), 16)


def int_to_mac(v: int) -> str:
    return ":".join(f"{(v >> s) & 0xFF:02x}" for s in range(40, -8, -8))


def ip_to_int(ip: str) -> int:
    parts = ip.split(".")
    if len(parts) != 4 or not all(p.isdigit() and 0 <= int(p) <= 255 for p in parts):
        raise ValueError(f"bad IPv4 address {ip!r}")
    a, b, c, d = (int(p) for p in parts)
    return (a << 24) | (b << 16) | (c << 8) | d


def int_to_ip(v: int) -> str:
    return ".".join(str((v >> s) & 0xFF) for s in (24, 16, 8, 0))


def as_array(data) -> np.ndarray:
    """A writable uint8 copy of ``data`` (bytes-like) for the njit functions."""
    return np.frombuffer(bytes(data), np.uint8).copy()

"""Little-endian field access on a flat ``uint8`` array, for Numba (SBE byteOrder
littleEndian, the MDP 3.0 wire order; notes/mdp3.md §1).

Each reader is one unaligned load (mem.atomics plain loads) widened to int64, so the
hot path never mixes uint64 and int64 (notes/numba-hot-path.md §5). ``rd_u64``
returns the bit pattern as int64: order ids and null sentinels compare exactly.
No bounds checks here: callers validate every offset against the message end first.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..mem.atomics import load_u8, load_u16, load_u32, load_u64, store_u8, store_u16, store_u32, store_u64


@njit(cache=True, inline="always")
def rd_u8(buf, off):
    return np.int64(load_u8(buf, off))


@njit(cache=True, inline="always")
def rd_i8(buf, off):
    return np.int64(np.int8(load_u8(buf, off)))


@njit(cache=True, inline="always")
def rd_u16(buf, off):
    return np.int64(load_u16(buf, off))


@njit(cache=True, inline="always")
def rd_i16(buf, off):
    return np.int64(np.int16(load_u16(buf, off)))


@njit(cache=True, inline="always")
def rd_u32(buf, off):
    return np.int64(load_u32(buf, off))


@njit(cache=True, inline="always")
def rd_i32(buf, off):
    return np.int64(np.int32(load_u32(buf, off)))


@njit(cache=True, inline="always")
def rd_i64(buf, off):
    return np.int64(load_u64(buf, off))


@njit(cache=True, inline="always")
def wr_u8(buf, off, v):
    store_u8(buf, off, np.uint8(v & 0xFF))


@njit(cache=True, inline="always")
def wr_u16(buf, off, v):
    store_u16(buf, off, np.uint16(v & 0xFFFF))


@njit(cache=True, inline="always")
def wr_u32(buf, off, v):
    store_u32(buf, off, np.uint32(v & 0xFFFFFFFF))


@njit(cache=True, inline="always")
def wr_u64(buf, off, v):
    store_u64(buf, off, np.uint64(v))

"""Register access from Python (control plane) with the same intrinsics the hot
path uses: each call is exactly one access of the stated width, never cached,
merged or split by the compiler (virtio 1.2 §4.1.3.1 requires natural-width
accesses to its configuration structures)."""

from __future__ import annotations

import numpy as np
from numba import njit

from ...mem.atomics import load_acquire_u16, load_acquire_u32, load_u8, store_release_u16, store_release_u32, store_u8
from ...mem.atomics import fence_seq_cst


@njit(cache=True)
def rd8(bar, off):
    fence_seq_cst()
    return load_u8(bar, off)


@njit(cache=True)
def rd16(bar, off):
    return load_acquire_u16(bar, off)


@njit(cache=True)
def rd32(bar, off):
    return load_acquire_u32(bar, off)


@njit(cache=True)
def wr8(bar, off, value):
    store_u8(bar, off, np.uint8(value & 0xFF))
    fence_seq_cst()


@njit(cache=True)
def wr16(bar, off, value):
    store_release_u16(bar, off, np.uint16(value & 0xFFFF))


@njit(cache=True)
def wr32(bar, off, value):
    store_release_u32(bar, off, np.uint32(value & 0xFFFFFFFF))

"""Register access from Python (control plane) with the same intrinsics the hot
path uses, so a read is never cached or merged by the compiler."""

from __future__ import annotations

import numpy as np
from numba import njit

from ...mem.atomics import load_acquire_u32, store_release_u32


@njit(cache=True)
def rd32(bar, off):
    return load_acquire_u32(bar, off)


@njit(cache=True)
def wr32(bar, off, value):
    store_release_u32(bar, off, np.uint32(value & 0xFFFFFFFF))

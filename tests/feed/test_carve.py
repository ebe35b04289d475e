"""carve() views must own a reference to the flat array's memory: ordinary (NRT)
Numba code that makes and drops many views, while the flat array itself is a
temporary, must not free the memory early (it once corrupted the heap)."""

import numpy as np
from numba import njit

from tickwire.feed.carve import carve


@njit
def _views_outlive_their_source(n):
    total = 0
    for i in range(n):
        flat = np.arange(64, dtype=np.int64)      # dies at the end of each iteration...
        v = carve(flat, 8, (4, 4))                # ...but the view keeps its memory alive
        flat = np.zeros(1, np.int64)
        total += v[3, 3] + v[0, 0]
    return total


def test_carved_views_keep_their_memory_alive():
    assert _views_outlive_their_source(20000) == 20000 * (8 + 23)

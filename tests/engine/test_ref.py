"""engine/ref.py: a state tuple passed by reference reaches the callee whole, and the
intrinsics refuse functions compiled with Numba's runtime (where the tuple's arrays can
be released while the pointer still points at them)."""

from collections import namedtuple

import numpy as np
import pytest
from numba import njit

from tickwire.engine.ref import by_ref, deref
from tickwire.mem.hotpath import hot

Pair = namedtuple("Pair", "a b")


@hot
def _fill(P, v):
    T = deref(P)
    T.a[0] = v
    T.b[T.b.shape[0] - 1] = v + 1
    return T.a.shape[0] + T.b.shape[0]


@hot
def _through_pointer(t, v):
    return _fill(by_ref(t), v)


def test_callee_sees_and_writes_the_callers_arrays():
    t = Pair(np.zeros(3, np.int64), np.zeros(5, np.int64))
    assert _through_pointer(t, 7) == 8
    assert t.a[0] == 7 and t.b[4] == 8


def test_refused_where_the_runtime_counts_references():
    @njit(cache=False)
    def with_runtime(t):
        return _fill(by_ref(t), 1)

    with pytest.raises(TypeError, match="runtime-free"):
        with_runtime(Pair(np.zeros(3, np.int64), np.zeros(5, np.int64)))

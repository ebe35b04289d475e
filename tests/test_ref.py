"""mem/ref.py: a state tuple passed by reference reaches the callee whole, its stores
survive Numba's dead-code elimination, and the intrinsics refuse functions compiled with
Numba's runtime (where the tuple's arrays can be released while the pointer still points
at them)."""

from collections import namedtuple

import numpy as np
import pytest
from numba import njit
from numba.extending import overload

from tickwire.mem.ref import by_ref, deref
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


def _bump(x):
    pass


@overload(_bump, inline="always")
def _ov_bump(x):
    def impl(x):
        x[0] += 1
    return impl


@hot
def _store_then_inline_an_overload(P, i, v):
    T = deref(P)
    T.a[i] = v          # a variable index, and the temporary T.a is dead after this line
    _bump(T.b)          # inlining an overload makes Numba run dead-code elimination here


@hot
def _store_through_pointer(t, i, v):
    _store_then_inline_an_overload(by_ref(t), i, v)


def test_stores_into_a_dereferenced_tuple_are_not_dead_code():
    """Session 6: Numba took ``T`` (from ``deref``) for a local value, so after an inlined
    overload its dead-code elimination removed ``T.a[i] = v`` (the segment build's
    ``pool.data_len[idx] = n`` vanished the same way)."""
    t = Pair(np.zeros(3, np.int64), np.zeros(5, np.int64))
    _store_through_pointer(t, 1, 9)
    assert t.a[1] == 9 and t.b[0] == 1


def test_refused_where_the_runtime_counts_references():
    @njit(cache=False)
    def with_runtime(t):
        return _fill(by_ref(t), 1)

    with pytest.raises(TypeError, match="runtime-free"):
        with_runtime(Pair(np.zeros(3, np.int64), np.zeros(5, np.int64)))

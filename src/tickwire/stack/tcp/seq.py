"""TCP sequence-number arithmetic (RFC 9293 §3.4): 32-bit numbers compared modulo 2**32.

``a < b`` means "b lies less than 2**31 ahead of a" (RFC 1982 serial-number
arithmetic). Every comparison of sequence or acknowledgment numbers in the stack
goes through these helpers; a plain ``<`` is wrong once the space wraps.

The functions are ``@njit`` so the fast path inlines them, and they also run as
ordinary Python when called from the slow path (Numba dispatchers accept Python
ints). The slow path uses the pure-Python twins ``lt``/``le``/... for speed
(a dispatcher call costs ~100 ns more than a Python function).
"""

from __future__ import annotations

from numba import njit

MASK = 0xFFFFFFFF
HALF = 0x80000000


def add(a: int, n: int) -> int:
    return (a + n) & MASK


def sub(a: int, b: int) -> int:
    """Signed distance a - b in (-2**31, 2**31]."""
    d = (a - b) & MASK
    return d - 0x100000000 if d >= HALF else d


def lt(a: int, b: int) -> bool:
    return sub(a, b) < 0


def le(a: int, b: int) -> bool:
    return sub(a, b) <= 0


def gt(a: int, b: int) -> bool:
    return sub(a, b) > 0


def ge(a: int, b: int) -> bool:
    return sub(a, b) >= 0


def between(lo: int, x: int, hi: int) -> bool:
    """lo <= x < hi in sequence space (the window test of RFC 9293 §3.4)."""
    return ((x - lo) & MASK) < ((hi - lo) & MASK)


# --- Numba twins (int64 in, int64 out; callers keep every seq in int64 variables) ---

@njit(cache=True, inline="always")
def seq_sub(a, b):
    d = (a - b) & 0xFFFFFFFF
    if d >= 0x80000000:
        d -= 0x100000000
    return d


@njit(cache=True, inline="always")
def seq_add(a, n):
    return (a + n) & 0xFFFFFFFF


@njit(cache=True, inline="always")
def seq_lt(a, b):
    return seq_sub(a, b) < 0


@njit(cache=True, inline="always")
def seq_le(a, b):
    return seq_sub(a, b) <= 0

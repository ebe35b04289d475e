"""Single-producer / single-consumer ring of u64 items in shared memory.

Layout (byte offsets from the ring's base inside a ``uint8`` region, x86 cache
lines of 64 bytes so producer and consumer never write the same line):

    0    u64 producer index   (written only by the producer, free-running)
    64   u64 consumer index   (written only by the consumer, free-running)
    128  u64 capacity         (power of two, written once at init)
    192  u64 slots[capacity]

The producer writes slots, then publishes ``producer`` with a release store; the
consumer acquires ``producer``, reads slots, then releases ``consumer``. Items are
opaque u64s: buffer indices, or (offset << 32 | length) packet descriptors.

The header is shared with the other process, so every value read from it is checked
before it is used: a capacity that is not a power of two or does not fit the region, or
indices more than a capacity apart, make both bursts return ``RING_CORRUPT`` (-1) and
touch no slot (the caller drops the peer with that reason).
"""

from __future__ import annotations

import numpy as np

from .atomics import load_acquire_u64, load_u64, store_release_u64, store_u64
from .hotpath import hot

PROD, CONS, CAP, SLOTS = 0, 64, 128, 192
RING_CORRUPT = -1


def ring_bytes(capacity: int) -> int:
    return SLOTS + 8 * capacity


def ring_init(buf: np.ndarray, base: int, capacity: int) -> None:
    if capacity <= 0 or capacity & (capacity - 1):
        raise ValueError(f"ring capacity must be a power of two, got {capacity}")
    if base < 0 or base + ring_bytes(capacity) > buf.size:
        raise ValueError("ring does not fit in its region")
    buf[base:base + ring_bytes(capacity)] = 0
    buf[base + CAP:base + CAP + 8] = np.frombuffer(np.uint64(capacity).tobytes(), np.uint8)


@hot
def _capacity(buf, base):
    """The ring's capacity if its header is sane and its slots fit ``buf``, else 0."""
    if base < 0 or base + SLOTS > buf.size:
        return np.uint64(0)
    cap = load_u64(buf, base + CAP)
    if cap == 0 or (cap & (cap - np.uint64(1))) != 0 or cap > np.uint64((buf.size - base - SLOTS) // 8):
        return np.uint64(0)
    return cap


@hot
def ring_enqueue_burst(buf, base, items, n):
    """Append up to ``n`` items; returns how many fit, or RING_CORRUPT."""
    cap = _capacity(buf, base)
    if cap == 0:
        return np.intp(RING_CORRUPT)
    prod = load_u64(buf, base + PROD)  # only we write it (but it is shared memory: checked too)
    cons = load_acquire_u64(buf, base + CONS)
    if prod - cons > cap:
        return np.intp(RING_CORRUPT)
    free = cap - (prod - cons)
    k = min(np.uint64(max(min(n, items.shape[0]), 0)), free)
    for i in range(k):
        slot = (prod + np.uint64(i)) & (cap - np.uint64(1))
        store_u64(buf, base + SLOTS + 8 * np.intp(slot), np.uint64(items[i]))
    store_release_u64(buf, base + PROD, prod + k)
    return np.intp(k)


@hot
def ring_dequeue_burst(buf, base, out, n):
    """Remove up to ``n`` items into ``out``; returns how many were taken, or RING_CORRUPT."""
    cap = _capacity(buf, base)
    if cap == 0:
        return np.intp(RING_CORRUPT)
    cons = load_u64(buf, base + CONS)
    prod = load_acquire_u64(buf, base + PROD)
    if prod - cons > cap:
        return np.intp(RING_CORRUPT)
    k = min(np.uint64(max(min(n, out.shape[0]), 0)), prod - cons)
    for i in range(k):
        slot = (cons + np.uint64(i)) & (cap - np.uint64(1))
        out[i] = load_u64(buf, base + SLOTS + 8 * np.intp(slot))
    store_release_u64(buf, base + CONS, cons + k)
    return np.intp(k)


@hot
def ring_count(buf, base):
    return np.intp(load_acquire_u64(buf, base + PROD) - load_acquire_u64(buf, base + CONS))

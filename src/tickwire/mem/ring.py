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
"""

from __future__ import annotations

import numpy as np

from .atomics import load_acquire_u64, load_u64, store_release_u64, store_u64
from .hotpath import hot

PROD, CONS, CAP, SLOTS = 0, 64, 128, 192


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
def ring_enqueue_burst(buf, base, items, n):
    """Append up to ``n`` items; returns how many fit."""
    cap = load_u64(buf, base + CAP)
    prod = load_u64(buf, base + PROD)  # only we write it
    cons = load_acquire_u64(buf, base + CONS)
    free = cap - (prod - cons)
    k = min(np.uint64(n), free)
    for i in range(k):
        slot = (prod + np.uint64(i)) & (cap - np.uint64(1))
        store_u64(buf, base + SLOTS + 8 * np.intp(slot), np.uint64(items[i]))
    store_release_u64(buf, base + PROD, prod + k)
    return np.intp(k)


@hot
def ring_dequeue_burst(buf, base, out, n):
    """Remove up to ``n`` items into ``out``; returns how many were taken."""
    cap = load_u64(buf, base + CAP)
    cons = load_u64(buf, base + CONS)
    prod = load_acquire_u64(buf, base + PROD)
    k = min(np.uint64(n), prod - cons)
    for i in range(k):
        slot = (cons + np.uint64(i)) & (cap - np.uint64(1))
        out[i] = load_u64(buf, base + SLOTS + 8 * np.intp(slot))
    store_release_u64(buf, base + CONS, cons + k)
    return np.intp(k)


@hot
def ring_count(buf, base):
    return np.intp(load_acquire_u64(buf, base + PROD) - load_acquire_u64(buf, base + CONS))

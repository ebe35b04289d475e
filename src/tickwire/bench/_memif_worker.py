"""One side of a memif benchmark, run as its own process (pinned to one CPU).

    python -m tickwire.bench._memif_worker MODE SPEC SECONDS CPU [SAMPLES [PINGPONG_FD]]

MODE: tx (64-byte frames, burst 32, as fast as the ring takes them), rx (count),
echo (macswap), ping (one frame out, wait for it back, record the round trip),
(echo and ping given PINGPONG_FD, a memfd both hold, also run the plain ping-pong over
it before and after the echo: same two processes, same vCPU placement; see _beside),
pingpong-a / pingpong-b (a plain cache-line ping-pong over a memfd: SPEC is its fd),
pingpong3-a / pingpong3-b (the same, moving memif's index, descriptor and frame lines),
pingpong3p-a / pingpong3p-b (that, prefetching descriptor and frame on every empty poll),
pingpong3r-a / pingpong3r-b (that, with descriptor and frame moving on per slot as in a ring).
Prints one JSON line. Measurement loops run entirely inside Numba.
"""

from __future__ import annotations

import json
import mmap
import os
import sys
import time

import numpy as np
from numba.extending import register_jitable

from ..drivers.port import open_port, rx_burst, tx_burst
from ..mem.atomics import cpu_pause, load_acquire_u64, prefetch, rdtscp, store_release_u64
from ..mem.hotpath import hot
from ..mem.mempool import Mempool, pool_alloc, pool_alloc_burst, pool_free, pool_free_burst
from ..tools.echo import echo_slice
from ..tools.slices import wait_for_link
from ..tsc import TscClock

FRAME = bytes.fromhex(  # testpmd's txonly frame (notes/memif.md §8): 64 bytes, IPv4/UDP 9 -> 9
    "02 00 00 00 00 00  02 00 00 00 00 aa  08 00"
    "45 00 00 32 00 00 00 00 40 11 ee 93 c6 12 00 01 c6 12 00 02"
    "00 09 00 09 00 1e 00 00") + bytes(22)


@hot
def tx_loop(state, pool, bufs, burst, cycles):
    sent = 0
    end = rdtscp() + cycles
    while rdtscp() < end:
        got = pool_alloc_burst(pool, bufs, burst)
        for i in range(got):
            pool.data_len[bufs[i]] = 64
        n = tx_burst(state, pool, bufs, got)
        pool_free_burst(pool, bufs[n:], got - n)
        sent += n
    return sent


@hot
def rx_loop(state, pool, bufs, burst, cycles, idle_cycles, window_cycles, bin_cycles, out):
    """Count frames until ``cycles`` pass, the stream has been idle for ``idle_cycles``
    after it started, or ``window_cycles`` have passed since its first frame (a sender that
    never stops, testpmd's txonly); out = [count, first tsc, last tsc, then the frames of
    each ``bin_cycles`` bin from the first frame, as many bins as ``out`` has room for].
    Why bins: testpmd's receive rate is the median of its per-second samples (stats-period
    1, the first dropped); a tickwire receiver is counted the same way (bench/memif.py)."""
    count = 0
    first = 0
    last = 0
    nbins = out.shape[0] - 3
    for k in range(nbins):
        out[3 + k] = 0
    start = rdtscp()
    while True:
        # stamped before the poll: a process descheduled after an empty poll polls once
        # more on its return before it may call the stream idle (it used to stop with the
        # ring full when the sleep outlasted idle_cycles)
        now = rdtscp()
        n = rx_burst(state, pool, bufs, burst)
        if n:
            if count == 0:
                first = now
            count += n
            last = now
            b = (now - first) // bin_cycles
            if b < nbins:
                out[3 + b] += n
            pool_free_burst(pool, bufs, n)
            if now - first > window_cycles:
                break
        elif (count and now - last > idle_cycles) or now - start > cycles:
            break
    out[0], out[1], out[2] = count, first, last


@hot
def ping_loop(state, pool, bufs, rtts, warmup, timeout_cycles):
    """Send one frame, spin until it comes back; rtts[i] = cycles. Returns samples taken.
    The pool is used through the inlined single-buffer helpers, as a latency-minded
    caller would (a call passing the pool's six arrays costs more than the work)."""
    total = rtts.shape[0] + warmup
    k = 0
    for i in range(total):
        idx = pool_alloc(pool)
        if idx < 0:
            return k
        bufs[0] = idx
        pool.data_len[idx] = 64
        t0 = rdtscp()
        if tx_burst(state, pool, bufs, 1) != 1:
            pool_free(pool, idx)
            continue
        while True:
            n = rx_burst(state, pool, bufs, 1)
            t1 = rdtscp()
            if n:
                pool_free(pool, bufs[0])
                break
            if t1 - t0 > timeout_cycles:
                return k
        if i >= warmup:
            rtts[k] = t1 - t0
            k += 1
    return k


@hot
def pingpong(buf, leader, rtts, warmup):
    """Two cache lines, each written by one side: the plain shared-memory round trip."""
    total = rtts.shape[0] + warmup
    for i in range(1, total + 1):
        seq = np.uint64(i)
        if leader:
            t0 = rdtscp()
            store_release_u64(buf, 0, seq)
            while load_acquire_u64(buf, 64) != seq:
                cpu_pause()
            if i > warmup:
                rtts[i - 1 - warmup] = rdtscp() - t0
        else:
            while load_acquire_u64(buf, 0) != seq:
                cpu_pause()
            store_release_u64(buf, 64, seq)


# per-direction layout of the memif-shaped ping-pong: ring index, descriptor, payload,
# each on its own cache line, as in a memif ring (notes/memif.md §4)
_IDX, _DESC, _DATA = 0, 64, 128


@register_jitable
def _send3(buf, base, seq):
    store_release_u64(buf, base + _DATA, seq)         # the frame
    store_release_u64(buf, base + _DESC, np.uint64(_DATA))  # its descriptor: where the frame is
    store_release_u64(buf, base + _IDX, seq)          # publish


@register_jitable
def _recv3(buf, base, seq, speculate):
    """Wait for ``seq`` on the index, then follow the descriptor to the frame (a dependent
    chain of three line transfers, the least any memif receive can do). With ``speculate``
    every empty poll also prefetches the descriptor and frame lines, so that the writer's
    stores find them shared here and the reader has them back as soon as the index moves
    (what the driver's RX does for the next slot). Returns 1 if the frame holds ``seq``."""
    while load_acquire_u64(buf, base + _IDX) != seq:
        if speculate:
            prefetch(buf, base + _DESC)
            prefetch(buf, base + _DATA)
        cpu_pause()
    off = np.int64(load_acquire_u64(buf, base + _DESC) & np.uint64(1023))
    return 1 if load_acquire_u64(buf, base + off) == seq else 0


@hot
def pingpong_memif(buf, leader, rtts, warmup, speculate):
    """The same round trip moving memif's three dependent lines each way (index, descriptor,
    frame) with no driver code: the memory cost a memif echo cannot avoid.
    Returns the number of frames that did not hold the expected value (must be 0)."""
    total = rtts.shape[0] + warmup
    bad = 0
    for i in range(1, total + 1):
        seq = np.uint64(i)
        if leader:
            t0 = rdtscp()
            _send3(buf, 0, seq)
            bad += 1 - _recv3(buf, 1024, seq, speculate)
            if i > warmup:
                rtts[i - 1 - warmup] = rdtscp() - t0
        else:
            bad += 1 - _recv3(buf, 0, seq, speculate)
            _send3(buf, 1024, seq)
    return bad


# the ring-shaped variant: per direction an index line, RING_SLOTS 16-byte descriptors and
# RING_SLOTS 2 KB frames, the geometry of the driver's default ring (1,024 slots, 2,048-byte
# buffers); RING_PAGES bytes map both directions
RING_SLOTS, RING_DESC0, RING_FRAME0 = 1024, 64, 32768
RING_DIR = RING_FRAME0 + RING_SLOTS * 2048
RING_PAGES = 2 * RING_DIR


@register_jitable
def _send_slot(buf, base, slot, seq):
    s = slot & (RING_SLOTS - 1)
    f = RING_FRAME0 + s * 2048
    store_release_u64(buf, base + f, seq)
    store_release_u64(buf, base + RING_DESC0 + s * 16, np.uint64(f))
    store_release_u64(buf, base, seq)


@register_jitable
def _recv_slot(buf, base, slot, seq):
    s = slot & (RING_SLOTS - 1)
    d = base + RING_DESC0 + s * 16
    while load_acquire_u64(buf, base) != seq:
        prefetch(buf, d)
        prefetch(buf, base + RING_FRAME0 + s * 2048)
        cpu_pause()
    off = np.int64(load_acquire_u64(buf, d))
    if off < RING_FRAME0 or off > RING_DIR - 8:
        return 0
    return 1 if load_acquire_u64(buf, base + off) == seq else 0


@hot
def pingpong_ring(buf, leader, rtts, warmup):
    """pingpong_memif with speculative prefetch, but each round trip uses the next slot's
    descriptor and frame, as a memif ring does (descriptors 16 bytes apart, frames 2 KB
    apart), instead of the same three lines every time. Why: the fixed-line exchange was the
    echo's yardstick, yet a ring writes a frame line it has not touched for a lap; this row
    shows what that costs with no driver code (docs/memif.md, session 8). Returns the number
    of frames that did not hold the expected value (must be 0)."""
    total = rtts.shape[0] + warmup
    bad = 0
    for i in range(1, total + 1):
        seq = np.uint64(i)
        if leader:
            t0 = rdtscp()
            _send_slot(buf, 0, i, seq)
            bad += 1 - _recv_slot(buf, RING_DIR, i, seq)
            if i > warmup:
                rtts[i - 1 - warmup] = rdtscp() - t0
        else:
            bad += 1 - _recv_slot(buf, 0, i, seq)
            _send_slot(buf, RING_DIR, i, seq)
    return bad


def _fill_pool(pool: Mempool) -> None:
    bufs = pool.alloc_burst(pool.size)
    for b in bufs:
        pool.write(int(b), FRAME)
    pool.free_burst(bufs)


def _compile(mode, port, pool, bufs) -> None:
    """Compile this mode's loop while the link is still down (the data path returns 0 at
    once). Why: the peer starts its clock at link-up (a tx side sends for SECONDS, a pinger
    times out); a loop compiled after that, from a cold cache, missed the peer's traffic:
    with the burst functions inlined, the receive loop compiled for 8-18 s while the
    sender's window was over after 7+1 s, and it received 0 or 1,024 frames (one ring).
    Link-up needs both sides polling the control channel, so it now waits for both compiles."""
    if mode == "echo":
        echo_slice(port.state, pool.arrays, bufs, 32, 1, np.zeros(3, np.int64))
    elif mode == "tx":
        tx_loop(port.state, pool.arrays, bufs, 32, 0)
    elif mode == "rx":
        rx_loop(port.state, pool.arrays, bufs, 32, 0, 0, 0, 1, np.zeros(3, np.int64))
    elif mode == "ping":
        ping_loop(port.state, pool.arrays, bufs, np.zeros(0, np.int64), 0, 0)


def _map_pingpong(fd: int) -> np.ndarray:
    return np.frombuffer(mmap.mmap(fd, 4096), np.uint8)


# third line of the ping-pong page: the pinger's verdict for the echo side, 1 = all frames
# came back (run the ping-pong after), 2 = timed out (skip it: the leader will not come)
_PING_DONE = 128


def _beside(buf, leader: bool, samples: int, clock):
    """The plain ping-pong in the processes that run the echo, right before or after it.
    Why: the host moves the two vCPUs between near and far placement (ping-pong 90 vs
    460 ns) from one process pair to the next; a ping-pong from another process pair was
    seen near while the echo next to it ran far (and the reverse), so the paired ratio
    compared different placements. Returns the leader's median in ns (None on the echo side)."""
    rtts = np.zeros(samples, np.int64)
    pingpong(buf, leader, rtts, 10_000)
    return float(np.median(clock.cycles_to_ns(rtts))) if leader else None


def main(argv) -> dict:
    mode, spec, seconds, cpu = argv[0], argv[1], float(argv[2]), int(argv[3])
    samples = int(argv[4]) if len(argv) > 4 else 100_000
    pp = _map_pingpong(int(argv[5])) if len(argv) > 5 and mode in ("echo", "ping") else None
    os.sched_setaffinity(0, {cpu})
    clock = TscClock(0.02)
    result = {"mode": mode, "cpu": cpu, "tsc_hz": clock.hz}
    if mode.startswith("pingpong"):
        ring = mode.startswith("pingpong3r")
        buf = np.frombuffer(mmap.mmap(int(spec), RING_PAGES if ring else 4096), np.uint8)
        rtts = np.zeros(samples, np.int64)
        if ring:
            result["bad"] = int(pingpong_ring(buf, mode.endswith("-a"), rtts, 10_000))
        elif mode.startswith("pingpong3"):  # pingpong3p-*: with speculative prefetch
            result["bad"] = int(pingpong_memif(buf, mode.endswith("-a"), rtts, 10_000, mode.startswith("pingpong3p")))
        else:
            pingpong(buf, mode == "pingpong-a", rtts, 10_000)
        result["rtt_ns"] = clock.cycles_to_ns(rtts).tolist() if mode.endswith("-a") else []
        return result
    pool = Mempool(4096, 2048, 128)
    _fill_pool(pool)
    port = open_port(spec, pool)
    bufs = np.empty(32, np.int32)
    try:
        _compile(mode, port, pool, bufs)
        wait_for_link(port, 300)  # the peer may still be compiling (cold cache)
        cycles = clock.ns_to_cycles(seconds * 1e9)
        if mode == "tx":
            result["sent"] = int(tx_loop(port.state, pool.arrays, bufs, 32, cycles))
        elif mode == "rx":
            # SECONDS is the window counted in one-second bins; the loop stops an endless
            # sender one second after it, and drains a finite one until it idles
            nbins = max(1, int(seconds))
            out = np.zeros(3 + nbins, np.int64)
            rx_loop(port.state, pool.arrays, bufs, 32, cycles + clock.ns_to_cycles(30e9),
                    clock.ns_to_cycles(0.3e9), cycles + clock.ns_to_cycles(1e9), clock.ns_to_cycles(1e9), out)
            span = clock.cycles_to_ns(out[2] - out[1]) / 1e9
            full = min(nbins, int(span))  # bins that end before the last frame seen
            result.update(received=int(out[0]), seconds=span, mpps=out[0] / span / 1e6 if span > 0 else 0.0,
                          mpps_per_s=[int(x) / 1e6 for x in out[3:3 + full]])
        elif mode == "echo":
            stats = np.zeros(3, np.int64)
            if pp is not None:
                _beside(pp, False, samples, clock)
            t_end = time.monotonic() + seconds
            while time.monotonic() < t_end and port.link_up and not (pp is not None and pp[_PING_DONE]):
                echo_slice(port.state, pool.arrays, bufs, 32, 1 << 16, stats)
                port.poll()
            if pp is not None and pp[_PING_DONE] == 1:
                _beside(pp, False, samples, clock)
            result["echoed"] = int(stats[0])
        elif mode == "ping":
            rtts = np.zeros(samples, np.int64)
            before = _beside(pp, True, samples, clock) if pp is not None else None
            k = ping_loop(port.state, pool.arrays, bufs, rtts, 10_000, clock.ns_to_cycles(30e9))
            result["rtt_ns"] = clock.cycles_to_ns(rtts[:k]).tolist()
            if pp is not None:
                pp[_PING_DONE] = 1 if k == samples else 2
                if k == samples:
                    result["pingpong_beside_ns"] = [before, _beside(pp, True, samples, clock)]
        else:
            raise ValueError(f"unknown mode {mode}")
        result["port"] = port.stats()
    finally:
        port.close()
    pool.check()
    return result


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:])))

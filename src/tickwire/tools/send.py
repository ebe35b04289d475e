"""Transmit the frames of a pcap file on a port, optionally looped and paced."""

from __future__ import annotations

import numpy as np

from ..drivers.port import tx_burst
from ..mem.atomics import cpu_pause, memcpy, rdtscp
from ..mem.hotpath import hot
from ..mem.mempool import buf_start, pool_alloc, pool_free
from ..tsc import TscClock, read_tsc
from ..wire.pcapfile import read_frames
from .slices import StopFlag, wait_for_link

# cursor[] slots: next frame number (over all loops), next send time (TSC)
NEXT, DUE = range(2)


@hot
def send_slice(state, pool, blob, offs, total, gap, cursor, bufs, burst, max_frames):
    """Send up to ``max_frames`` more frames; frame k is ``blob[offs[k % m]:offs[k % m + 1]]``.
    With ``gap`` > 0 cycles, frame k leaves no earlier than DUE + gap per frame (pacing)."""
    m = offs.shape[0] - 1
    sent_total = 0
    while sent_total < max_frames and cursor[NEXT] < total:
        want = min(burst, total - cursor[NEXT], max_frames - sent_total)
        if gap > 0:
            want = 1
            while rdtscp() < cursor[DUE]:
                cpu_pause()
        k = 0
        while k < want:
            f = (cursor[NEXT] + k) % m
            length = offs[f + 1] - offs[f]
            idx = pool_alloc(pool)
            if idx < 0:
                break
            memcpy(pool.data, buf_start(pool, idx), blob, offs[f], length)
            pool.data_len[idx] = length
            bufs[k] = idx
            k += 1
        sent = tx_burst(state, pool, bufs, k)
        for i in range(sent, k):
            pool_free(pool, bufs[i])  # retry these frames on the next round
        cursor[NEXT] += sent
        sent_total += sent
        if gap > 0:
            cursor[DUE] = max(cursor[DUE] + gap, rdtscp() - 64 * gap)  # bounded catch-up after a stall
        if sent < k or k == 0:
            break  # ring full or pool dry: give the caller a chance to poll
    return sent_total


def load_pcap(path: str, max_len: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Frames as one flat array + offsets; frames longer than ``max_len`` are left out and counted."""
    frames = read_frames(path)
    too_big = sum(len(f) > max_len for f in frames)
    frames = [f for f in frames if len(f) <= max_len]
    if not frames:
        raise ValueError(f"{path}: no frames of at most {max_len} bytes to send")
    offs = np.zeros(len(frames) + 1, np.int64)
    offs[1:] = np.cumsum([len(f) for f in frames])
    return np.frombuffer(b"".join(frames), np.uint8).copy(), offs, too_big


def run_send(port, pcap_path: str, *, loop: int = 1, rate: float = 0.0, burst: int = 32,
             link_timeout: float = 10.0) -> dict:
    blob, offs, too_big = load_pcap(pcap_path, port.pool.buf_size - port.pool.headroom)
    total = (len(offs) - 1) * max(1, loop)
    clock = TscClock()
    gap = clock.ns_to_cycles(1e9 / rate) if rate > 0 else 0
    cursor = np.zeros(2, np.int64)
    bufs = np.empty(burst, np.int32)
    stop = StopFlag()
    try:
        # compiled before the link comes up (zero polls: nothing moves), not after: a peer starts
        # at link-up, and a cold compile of the inlined data path takes seconds
        send_slice(port.state, port.pool.arrays, blob, offs, total, gap, cursor, bufs, burst, 0)
        wait_for_link(port, link_timeout)
        cursor[DUE] = read_tsc()
        while not stop.stopped and cursor[NEXT] < total:
            send_slice(port.state, port.pool.arrays, blob, offs, total, gap, cursor, bufs, burst, 1 << 14)
            port.poll()
    finally:
        stop.restore()
    return {"sent": int(cursor[NEXT]), "skipped_too_big": too_big, **port.stats()}

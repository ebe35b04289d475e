"""``pcap:`` port: a capture file as a port, for replay and deterministic tests
(DPDK's net_pcap is the model).

    pcap:in=FILE[,out=FILE][,loop=1][,max_out=65536][,out_bytes=16777216]

``in``: the whole file is loaded once (wire.pcapfile, every record length checked)
into one byte array plus offset/length/timestamp arrays; rx_burst copies the next
records into pool buffers, ``loop`` times over (0 = forever), then returns 0.
``rx_timestamp_ns(b)`` gives a buffer's capture timestamp.
``out``: tx_burst copies frames into a staging area (no file I/O in the hot path)
with a TSC stamp; ``poll()`` and ``close()`` append them to a nanosecond pcap file,
timestamps converted from the TSC. When the staging area is full, tx_burst takes
fewer frames (tx_ring_full) until the next poll().
Without ``out``, transmitted frames are counted and freed (a sink).
"""

from __future__ import annotations

import time
from collections import namedtuple

import numpy as np
from numba import njit

from ..mem.hotpath import hot

from ..mem.atomics import memcpy, rdtscp
from ..mem.mempool import BUF_SIZE, buf_start, pool_alloc, pool_free
from .counters import Counters, RX_BYTES, RX_NOBUF, RX_PACKETS, RX_TOO_LONG, TX_BYTES, TX_PACKETS, TX_RING_FULL, tx_take
from .port import Port, register_burst
from .spec import SpecArgs, SpecError

EXTRA = ("rx_loops_done",
         "rx_no_frame_fits",  # a whole pass of the file found no record that fits a pool buffer
         "tx_bad_buf")        # tx_burst given an index that is not an in-use buffer of the pool: skipped
RX_LOOPS_DONE, RX_NO_FRAME_FITS, TX_BAD_BUF = range(8, 8 + len(EXTRA))
# meta slots
M_NEXT, M_NREC, M_LOOPS, M_LOOPS_DONE, M_OUT_N, M_OUT_BYTES, M_OUT_SINK = range(7)

PcapState = namedtuple("PcapState", "meta counters in_data in_off in_len in_ts rx_ts out_data out_off out_len out_tsc")


@hot
def pcap_rx_burst(state, pool, bufs, n):
    meta, c = state.meta, state.counters
    got = 0
    n = min(n, bufs.shape[0])     # never write past the caller's array
    skipped = 0                   # records dropped in this call since the last one delivered
    while got < n:
        i = meta[M_NEXT]
        if i >= meta[M_NREC]:
            if meta[M_NREC] == 0 or (meta[M_LOOPS] != 0 and meta[M_LOOPS_DONE] + 1 >= meta[M_LOOPS]):
                break       # end of the file after the last loop
            if skipped >= meta[M_NREC]:
                c[RX_NO_FRAME_FITS] += 1
                break       # a whole pass delivered nothing (loop=0 would spin here forever)
            meta[M_LOOPS_DONE] += 1
            c[RX_LOOPS_DONE] += 1
            meta[M_NEXT] = 0
            continue
        length = state.in_len[i]
        b = pool_alloc(pool)
        if b < 0:
            c[RX_NOBUF] += 1
            break
        meta[M_NEXT] = i + 1
        if length > pool.meta[BUF_SIZE] - pool.data_off[b]:
            c[RX_TOO_LONG] += 1
            pool_free(pool, b)
            skipped += 1
            continue
        memcpy(pool.data, buf_start(pool, b), state.in_data, state.in_off[i], length)
        pool.data_len[b] = length
        state.rx_ts[b] = state.in_ts[i]
        c[RX_PACKETS] += 1
        c[RX_BYTES] += length
        bufs[got] = b
        got += 1
        skipped = 0
    return got


@hot
def pcap_tx_burst(state, pool, bufs, n):
    meta, c = state.meta, state.counters
    sent = 0
    for k in range(min(n, bufs.shape[0])):
        b = bufs[k]
        length = tx_take(pool, c, b, TX_BAD_BUF)
        if length < 0:
            sent += 1
            continue
        if meta[M_OUT_SINK] == 0:
            j = meta[M_OUT_N]
            if j >= state.out_len.shape[0] or meta[M_OUT_BYTES] + length > state.out_data.shape[0]:
                c[TX_RING_FULL] += 1
                break
            memcpy(state.out_data, meta[M_OUT_BYTES], pool.data, buf_start(pool, b), length)
            state.out_off[j] = meta[M_OUT_BYTES]
            state.out_len[j] = length
            state.out_tsc[j] = rdtscp()
            meta[M_OUT_N] = j + 1
            meta[M_OUT_BYTES] += length
        c[TX_PACKETS] += 1
        c[TX_BYTES] += length
        pool_free(pool, b)
        sent += 1
    return sent


register_burst(PcapState, pcap_rx_burst, pcap_tx_burst)


@njit(cache=True)
def _tsc():
    return rdtscp()


class PcapPort(Port):
    def __init__(self, args: SpecArgs, pool, spec: str):
        from ..wire.pcapfile import PcapReader, PcapWriter

        self.spec, self.pool = spec, pool
        self._writer = None
        path_in = args.str("in", "")
        path_out = args.str("out", "")
        loops = args.int("loop", 1, lo=0, hi=1 << 40)
        max_out = args.int("max_out", 65536, lo=1, hi=1 << 24)
        out_bytes = args.int("out_bytes", 16 << 20, lo=65536, hi=1 << 34)
        args.finish()
        if not path_in and not path_out:
            raise SpecError("pcap: give in=FILE and/or out=FILE")
        self.counters = Counters(EXTRA)
        recs = []
        if path_in:
            with PcapReader(path_in) as r:          # raises PcapError (a ValueError) on a corrupt file
                if r.linktype != 1:
                    raise SpecError(f"pcap: {path_in}: link type {r.linktype} is not Ethernet (1)")
                recs = list(r)
        lens = np.array([len(x.data) for x in recs], np.int64)
        offs = np.zeros(len(recs), np.int64)
        if len(recs):
            offs[1:] = np.cumsum(lens)[:-1]
        data = np.frombuffer(b"".join(x.data for x in recs), np.uint8) if recs else np.zeros(1, np.uint8)
        meta = np.zeros(8, np.int64)
        meta[M_NREC], meta[M_LOOPS] = len(recs), loops
        meta[M_OUT_SINK] = 0 if path_out else 1
        if path_out:
            self._writer = PcapWriter(path_out)
        self.state = PcapState(meta, self.counters.array, data.copy(), offs, lens,
                               np.array([x.ts_ns for x in recs], np.int64),
                               np.zeros(max(pool.size, 1), np.int64),
                               np.zeros(out_bytes if path_out else 1, np.uint8),
                               np.zeros(max_out if path_out else 1, np.int64),
                               np.zeros(max_out if path_out else 1, np.int64),
                               np.zeros(max_out if path_out else 1, np.int64))
        self._tsc_ns = None

    @property
    def records(self) -> int:
        return int(self.state.meta[M_NREC])

    @property
    def rx_done(self) -> bool:
        m = self.state.meta
        return m[M_NEXT] >= m[M_NREC] and (m[M_LOOPS] != 0 and m[M_LOOPS_DONE] + 1 >= m[M_LOOPS])

    def rx_timestamp_ns(self, b: int) -> int:
        return int(self.state.rx_ts[b])

    @property
    def link_up(self) -> bool:
        return self.state is not None

    def _clock(self):
        """(tsc, wall ns, ticks per ns): maps TX stamps to CLOCK_REALTIME, calibrated once."""
        if self._tsc_ns is None:
            c0, t0 = _tsc(), time.perf_counter_ns()
            time.sleep(0.01)
            c1, t1 = _tsc(), time.perf_counter_ns()
            self._tsc_ns = (c1, time.time_ns(), (c1 - c0) / (t1 - t0))
        return self._tsc_ns

    def poll(self) -> None:
        """Append staged frames to the output file."""
        if self._writer is None or self.state is None:
            return
        m = self.state.meta
        n = int(m[M_OUT_N])
        if n == 0:
            return
        tsc0, ns0, tpn = self._clock()
        s = self.state
        for j in range(n):
            o, ln = int(s.out_off[j]), int(s.out_len[j])
            self._writer.write(s.out_data[o:o + ln].tobytes(), ns0 + int((int(s.out_tsc[j]) - tsc0) / tpn))
        self._writer.flush()
        m[M_OUT_N] = 0
        m[M_OUT_BYTES] = 0

    def close(self) -> None:
        if self.state is None:
            return
        self.poll()
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self.state = None


def open(args: SpecArgs, pool, spec: str) -> PcapPort:  # noqa: A001 - the driver contract's name
    return PcapPort(args, pool, spec)

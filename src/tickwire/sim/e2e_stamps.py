"""End-to-end tick-to-trade through the simulator: the simulator's own stamps, and the
join with the engine's stamp rows after the run (docs/sim-e2e.md).

The simulator stamps (rdtscp: one TSC for both processes on this host)
  * every market-data packet it hands to its transmit path, keyed by (feed, MsgSeqNum)
    (first send only: a duplicated packet keeps its first stamp), and
  * every order-entry business message it receives, keyed by its FIXP SeqNum, when the
    receive call that completed the message returned (``late`` = 1 when the message was
    found by the first poll of a turn, so it may have waited while the simulator ran
    Python: an upper bound, counted apart).

The engine names each stamp row's trigger packet (ST_MD_SEQ/ST_MD_SRC) and its orders
(ST_OE_SEQ.. + ST_OE_N). Per order: e2e = order received - trigger packet sent.

    E2e.md    int64[2, R, 2]   ring by MsgSeqNum % R: (seq, tsc) per feed
    E2e.oe    int64[C, 3]      (seq, tsc, late) in arrival order
    E2e.scan  uint8            order-entry bytes not yet a whole frame
    E2e.pend  int64[B, 2]      (MsgSeqNum, feed) of each frame in the pending transmit burst
    E2e.meta  int64[EM_N]
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np
from numba import njit

from ..order import wire_layout as W
from ..order.stream import stream_append, stream_keep_tail
from ..order.oe_codec import frame_check, rd_seqnum, template_of
from ..sbe.le import rd_u32

E2e = namedtuple("E2e", "md oe scan pend meta")
EM_SCAN_LEN, EM_OE_N, EM_OE_FULL, EM_GARBAGE, EM_MD_N, EM_LATE, EM_PEEK, EM_POLL_TICKS = range(8)
EM_N = 10
MD_RING = 1 << 18
OE_CAP = 1 << 18


def new_e2e(md_ring: int = MD_RING, oe_cap: int = OE_CAP, burst: int = 64) -> E2e:
    return E2e(np.zeros((2, md_ring, 2), np.int64), np.zeros((oe_cap, 3), np.int64), np.zeros(4096, np.uint8),
               np.zeros((burst, 2), np.int64), np.zeros(EM_N, np.int64))


@njit(cache=True, inline="always")
def md_seq_of(pkt, n):
    """MsgSeqNum of an MDP 3.0 packet (mdp3.md §1: u32 at 0), -1 when shorter than that."""
    return rd_u32(pkt, 0) if n >= 4 else np.int64(-1)


@njit(cache=True)
def stamp_md(st, f, seq, t):
    """Packet ``seq`` of feed ``f`` was handed to the transmit path at ``t`` (first time only)."""
    if seq < 0 or f < 0 or f >= st.md.shape[0]:
        return
    k = seq % st.md.shape[1]
    if st.md[f, k, 0] != seq or st.md[f, k, 1] == 0:
        st.md[f, k, 0] = seq
        st.md[f, k, 1] = t
        st.meta[EM_MD_N] += 1


@njit(cache=True)
def scan_oe(st, buf, off, n, t, late):
    """Order-entry bytes the simulator just received at ``t``: frame them (SOFH, like the
    gateway does) and stamp every business message completed by them. Garbage resets the
    framing (the gateway ends that session anyway) and is counted."""
    sl = st.meta[EM_SCAN_LEN]
    pos = 0
    while pos < n:
        k = stream_append(st.scan, sl, buf, off + pos, n - pos)
        sl += k
        pos += k
        p = 0
        while p < sl:
            m = frame_check(st.scan, p, sl - p)
            if m == 0:
                break
            if m < 0:
                st.meta[EM_GARBAGE] += 1
                p = sl
                break
            tid = template_of(st.scan, p)
            if tid == W.NEW_ORDER or tid == W.REPLACE_REQUEST or tid == W.CANCEL_REQUEST:
                j = st.meta[EM_OE_N]
                if j < st.oe.shape[0]:
                    st.oe[j, 0] = rd_seqnum(st.scan, p)
                    st.oe[j, 1] = t
                    st.oe[j, 2] = late
                    st.meta[EM_OE_N] = j + 1
                    st.meta[EM_LATE] += late
                else:
                    st.meta[EM_OE_FULL] += 1
            p += m
        sl = stream_keep_tail(st.scan, p, sl)
        if sl >= st.scan.shape[0]:        # a "frame" longer than the buffer cannot be valid
            st.meta[EM_GARBAGE] += 1
            sl = 0
    st.meta[EM_SCAN_LEN] = sl


# --- after the run (plain Python/numpy) ----------------------------------------------------


def save_e2e(st: E2e, path: str, measuring_s: float = 0.0) -> dict:
    """Write the stamps taken (.npz) and return the counters for the simulator's statistics."""
    f, k = np.nonzero(st.md[:, :, 1])
    md = np.stack([f, st.md[f, k, 0], st.md[f, k, 1]], axis=1).astype(np.int64)
    n = int(st.meta[EM_OE_N])
    np.savez(path, md=md, oe=st.oe[:n].copy())
    from ..engine.latency import ticks_per_ns
    polled = st.meta[EM_POLL_TICKS] / ticks_per_ns() / 1e9
    return {"md_stamped": int(st.meta[EM_MD_N]), "oe_stamped": n, "oe_late": int(st.meta[EM_LATE]),
            "oe_full": int(st.meta[EM_OE_FULL]), "oe_garbage": int(st.meta[EM_GARBAGE]),
            # share of the measuring time the simulator spent busy-polling (the rest: Python)
            "polling_share": round(polled / measuring_s, 3) if measuring_s > 0 else None}


def join(stamps: np.ndarray, md: np.ndarray, oe: np.ndarray, tpn: float) -> dict:
    """Per order: e2e = the simulator's receive stamp of the order - its send stamp of the
    packet that triggered it (the engine row's ST_MD_SRC/ST_MD_SEQ). ``stamps`` are the
    engine's rows (layout.ST_*), ``md`` (feed, seq, tsc) and ``oe`` (seq, tsc, late) the
    simulator's (save_e2e), ``tpn`` TSC ticks per ns. Returns per-order arrays (ns) and counts
    of what could not be joined, by cause."""
    from ..engine.layout import ST_MD_SEQ, ST_MD_SRC, ST_OE_N, ST_OE_SEQ, ST_RX, ST_TCP, ST_TX
    sent = {(int(f), int(q)): int(t) for f, q, t in md}
    got: dict[int, list] = {}
    for q, t, late in oe:
        got.setdefault(int(q), []).append((int(t), int(late)))
    e2e, t2t, late_of, rows, to_eng, from_eng = [], [], [], 0, [], []
    # Causality, which no correct pair of clocks and join can break on either path: the engine
    # took the packet from its receive path after the simulator began sending it, and the
    # simulator received the order after the engine had built it (ST_TCP: the segment built, or
    # for kernel sockets the order encoded, before send()). Not 'e2e >= in-engine t2t': a
    # kernel loopback send() delivers into the simulator's socket before it returns, so a
    # preempted engine can stamp ST_TX after the simulator already has the bytes.
    acausal = 0
    miss = {"trigger_not_sent": 0, "order_not_received": 0, "order_before_trigger": 0, "snapshot_trigger": 0}
    for r in stamps[(stamps[:, ST_RX] > 0) & (stamps[:, ST_OE_N] > 0)]:
        rows += 1
        n = int(r[ST_OE_N])
        if r[ST_MD_SRC] not in (0, 1):
            miss["snapshot_trigger"] += n
            continue
        tx = sent.get((int(r[ST_MD_SRC]), int(r[ST_MD_SEQ])))
        if tx is None:
            miss["trigger_not_sent"] += n
            continue
        for q in range(int(r[ST_OE_SEQ]), int(r[ST_OE_SEQ]) + n):
            # a SeqNum repeats only after a session reset: take its first arrival after the trigger
            cand = [x for x in got.get(q, ()) if x[0] >= tx]
            if not cand:
                miss["order_not_received" if q not in got else "order_before_trigger"] += 1
                continue
            rx, late = min(cand)
            acausal += int(r[ST_RX] < tx or (r[ST_TCP] > 0 and rx < r[ST_TCP]))
            e2e.append((rx - tx) / tpn)
            t2t.append((r[ST_TX] - r[ST_RX]) / tpn if r[ST_TX] > 0 else -1.0)
            late_of.append(late)
            to_eng.append((r[ST_RX] - tx) / tpn)
            from_eng.append((rx - r[ST_TX]) / tpn if r[ST_TX] > 0 else -1.0)
    return {"e2e_ns": np.array(e2e), "t2t_ns": np.array(t2t), "late": np.array(late_of, np.int64), "rows": rows,
            "orders": len(e2e), "unjoined": miss, "acausal": acausal,
            # the two legs around the engine: sim send -> engine RX, engine TX -> sim receive
            "to_engine_ns": np.array(to_eng), "from_engine_ns": np.array(from_eng)}


def load(path: str) -> tuple[np.ndarray, np.ndarray]:
    z = np.load(path)
    return z["md"], z["oe"]

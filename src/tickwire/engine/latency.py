"""Stage timestamps -> nanoseconds -> HdrHistogram percentiles, outside the loop.

The loop stores raw TSC ticks (rdtscp, numba-hot-path.md §9) in E.stamps; here they are
converted with the TSC rate measured against the monotonic clock (quantised to the TSC
granularity, ~10 ns on the development VMs) and aggregated.
"""

from __future__ import annotations

import numpy as np

from .layout import (M_STAMP_N, ST_FEED, ST_KRX, ST_KTX, ST_PREV_POLL, ST_RISK, ST_RX, ST_STACK, ST_STRATEGY,
                     ST_TCP, ST_TX)

PCTS = (50, 90, 99, 99.9)


_TPN = None


def ticks_per_ns() -> float:
    """TSC ticks per nanosecond, measured once per process over ~50 ms."""
    global _TPN
    if _TPN is None:
        import time
        from ..stack.tcp.loops import _tsc
        _tsc()
        c0, t0 = _tsc(), time.perf_counter_ns()
        time.sleep(0.05)
        c1, t1 = _tsc(), time.perf_counter_ns()
        _TPN = (c1 - c0) / (t1 - t0)
    return _TPN


STAGES = ("stack", "feed", "strategy", "risk_encode", "tcp", "transmit")

# What "tick-to-trade in the engine" is, for reports (docs/engine.md, Benchmark)
T2T_DEFINITION = ("in the engine: memif = market-data frame taken from the receive ring -> order frame in the "
                  "transmit ring (rdtscp); kernel = the kernel's receive timestamp of the datagram -> return of "
                  "send (CLOCK_REALTIME; stage kernel_rx = until recvfrom returned, incl. socket-queue waits)")


def samples(E) -> dict[str, np.ndarray]:
    """Per-stage durations in ns for every packet that produced an order and was sent.

    ``tick_to_trade``: over a frame port (memif, ...) from the frame taken from the receive
    ring to the order frame in the transmit ring (TSC); = the sum of STAGES. Over kernel
    sockets, rows carrying the kernel's receive stamp (ST_KRX, ST_KTX) are measured from
    the moment the kernel received the datagram to the return of ``send`` (CLOCK_REALTIME);
    their extra stage ``kernel_rx`` is the part before ``recvfrom`` returned (kernel IP/UDP,
    socket queue, receive syscall) and ``t2t_after_recv`` the old, narrower measure.
    ``poll_gap`` is not part of it: the time from the receive poll before the one that
    found the frame to the moment it was taken, an upper bound of how long the frame sat
    in the ring unseen (large when the engine was descheduled or in Python)."""
    n = min(int(E.meta[M_STAMP_N]), E.stamps.shape[0])
    s = E.stamps[:n]
    ok = (s[:, ST_TX] > 0) & (s[:, ST_RX] > 0)
    s = s[ok]
    tpn = ticks_per_ns()
    # rows stamped with stages off (layout.M_STAGES) carry only their two ends: no stages
    staged = (s[:, ST_STACK] > 0) & (s[:, ST_FEED] > 0) & (s[:, ST_STRATEGY] > 0) & (s[:, ST_RISK] > 0) \
        & (s[:, ST_TCP] > 0)
    f = lambda a, b: np.maximum(s[:, b] - s[:, a], 0) / tpn  # noqa: E731
    stage = lambda a, b: np.where(staged, f(a, b), np.nan)  # noqa: E731
    out = {"tick_to_trade": f(ST_RX, ST_TX), "stack": stage(ST_RX, ST_STACK), "feed": stage(ST_STACK, ST_FEED),
           "strategy": stage(ST_FEED, ST_STRATEGY), "risk_encode": stage(ST_STRATEGY, ST_RISK),
           "tcp": stage(ST_RISK, ST_TCP), "transmit": stage(ST_TCP, ST_TX), "poll_gap": f(ST_PREV_POLL, ST_RX)}
    if (s[:, ST_KRX] > 0).any():
        # kernel path: only rows with the kernel's receive stamp (a datagram that came before
        # stamping was on has none: counted in meta "krx_missing")
        k = s[:, ST_KRX] > 0
        after_recv = out["tick_to_trade"][k]
        out = {name: v[k] for name, v in out.items()}
        total = (s[k, ST_KTX] - s[k, ST_KRX]).astype(np.float64)
        out["tick_to_trade"] = total
        out["kernel_rx"] = np.maximum(total - after_recv, 0)
        out["t2t_after_recv"] = after_recv
    return {name: v[~np.isnan(v)] for name, v in out.items()}


def summary(ns: np.ndarray) -> dict:
    """p50/p90/p99/p99.9 via HdrHistogram (1 ns .. 1 s, 3 significant digits)."""
    from hdrh.histogram import HdrHistogram
    out = {"count": int(len(ns))}
    if len(ns) == 0:
        return out
    h = HdrHistogram(1, 1_000_000_000, 3)
    for v in ns.astype(np.int64):
        h.record_value(max(1, int(v)))
    for p in PCTS:
        out[f"p{p:g}_ns".replace(".", "_")] = int(h.get_value_at_percentile(p))
    out["max_ns"] = int(h.get_max_value())
    return out


def plot(paths: dict[str, np.ndarray], png: str) -> None:
    """Tick-to-trade distribution of each path (log x), one PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name, ns in paths.items():
        if len(ns) == 0:
            continue
        ns = np.sort(np.maximum(ns, 1))
        q = np.arange(1, len(ns) + 1) / len(ns)
        ax.plot(ns, q, label=f"{name} (p50 {int(np.median(ns))} ns, n={len(ns)})")
    ax.set_xscale("log")
    ax.set_xlabel("tick-to-trade, ns (market-data frame taken from RX -> order handed to TX)")
    ax.set_ylabel("fraction of orders")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right")
    ax.set_title("tickwire tick-to-trade (2-vCPU shared VM: noisy)")
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)

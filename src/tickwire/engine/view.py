"""What the operator sees: a snapshot of the engine's counters (plain dict, also the JSON),
the rich live view, and the final report. Control plane only: reads arrays, never the
hot path."""

from __future__ import annotations

import time

import numpy as np

from ..order import reasons as R
from ..order.layout import (G_KILL, G_KILL_REASON, I_BUY_QTY, I_CASH_TICKS, I_OPEN_BUY, I_OPEN_SELL, I_POSITION,
                            I_SELL_QTY, L_TICK, STAT_NAMES)
from ..order.session import SS_NAMES, ST_NAMES
from .layout import META_NAMES, M_STAMP_N, TOP_ASK, TOP_ASK_QTY, TOP_BID, TOP_BID_QTY, TOP_VALID

PRICE_SCALE = 1_000_000_000   # PRICE9


def engine_snapshot(E) -> dict:
    from ..feed.state import counters as feed_counters
    from .build import feed_view
    risk, tab = E.risk, E.orders
    inst = []
    for i in range(E.imap.shape[0]):
        t = E.sv.top[i]
        tick = int(risk.limits[i, L_TICK])
        pos = int(risk.inst[i, I_POSITION])
        mid = (int(t[TOP_BID]) + int(t[TOP_ASK])) // 2 if t[TOP_BID] and t[TOP_ASK] else 0
        pnl_ticks = int(risk.inst[i, I_CASH_TICKS]) + pos * (mid // tick if tick else 0)
        inst.append({"secid": int(E.imap[i, 0]), "bid": int(t[TOP_BID]), "bid_qty": int(t[TOP_BID_QTY]),
                     "ask": int(t[TOP_ASK]), "ask_qty": int(t[TOP_ASK_QTY]), "valid": bool(t[TOP_VALID]),
                     "position": pos, "open_buy": int(risk.inst[i, I_OPEN_BUY]),
                     "open_sell": int(risk.inst[i, I_OPEN_SELL]), "bought": int(risk.inst[i, I_BUY_QTY]),
                     "sold": int(risk.inst[i, I_SELL_QTY]), "pnl": pnl_ticks * tick / PRICE_SCALE})
    last = E.meta[M_STAMP_N]
    recent = {}
    n = min(int(last), E.stamps.shape[0], 20000)
    if n:
        from .latency import ticks_per_ns
        from .layout import ST_RX, ST_TX
        k = int(last) % E.stamps.shape[0]
        idx = (np.arange(k - n, k) % E.stamps.shape[0])
        s = E.stamps[idx]
        s = s[(s[:, ST_TX] > 0) & (s[:, ST_RX] > 0)]
        if len(s):
            ns = (s[:, ST_TX] - s[:, ST_RX]) / ticks_per_ns()
            recent = {"p50_ns": int(np.percentile(ns, 50)), "p99_ns": int(np.percentile(ns, 99))}
    return {"engine": {k: int(v) for k, v in zip(META_NAMES, E.meta)},
            "orders": {k: int(v) for k, v in zip(STAT_NAMES, tab.stats)},
            "risk_rejects": {R.NAMES[i]: int(v) for i, v in enumerate(risk.rejects) if i and v},
            "kill_switch": {"engaged": bool(risk.glob[G_KILL]), "reason": R.KILL_NAMES[int(risk.glob[G_KILL_REASON])]},
            "session": {"state": ST_NAMES[int(E.sess[0])],
                        **{k: int(E.sess[i]) for i, k in enumerate(SS_NAMES) if k not in ("state", "uuid")}},
            "feed": feed_counters(feed_view(E)), "instruments": inst, "t2t_samples": int(last),
            "t2t_recent": recent}


class LiveView:
    """rich Live panel; a no-op when disabled (JSON mode) or when stdout is not a terminal."""

    def __init__(self, enabled=True):
        import sys
        self.enabled = enabled and sys.stdout.isatty()
        self.live = None
        self.prev = {}

    def __enter__(self):
        if self.enabled:
            from rich.live import Live
            self.live = Live(refresh_per_second=4)
            self.live.__enter__()
        return self

    def __exit__(self, *exc):
        if self.live is not None:
            self.live.__exit__(*exc)

    def update(self, name, snap):
        if self.live is None:
            return
        from rich.table import Table
        now = time.monotonic()
        pk = snap["feed"]["packets"]
        p0, t0 = self.prev.get(name, (pk, now))
        rate = (pk - p0) / (now - t0) if now > t0 else 0.0
        self.prev[name] = (pk, now)
        t = Table(title=f"tickwire demo: {name} path", expand=False)
        t.add_column("")
        t.add_column("value", justify="right")
        f = snap["feed"]
        t.add_row("feed packets/s", f"{rate:,.0f}")
        t.add_row("feed packets / gaps / dups", f"{f['packets']:,} / {f['gaps']} / {f['duplicates']}")
        for x in snap["instruments"]:
            t.add_row(f"{x['secid']} top", f"{x['bid_qty']} @ {x['bid'] / PRICE_SCALE:.2f} | "
                                            f"{x['ask'] / PRICE_SCALE:.2f} @ {x['ask_qty']}"
                                            + ("" if x["valid"] else "  (stale)"))
            t.add_row(f"{x['secid']} position / P&L", f"{x['position']} / {x['pnl']:.2f}")
        o = snap["orders"]
        t.add_row("orders sent / live", f"{o['sent_new']} / {o['live']}")
        t.add_row("fills (qty)", f"{o['fills']} ({o['filled_qty']})")
        t.add_row("risk rejections", ", ".join(f"{k} {v}" for k, v in snap["risk_rejects"].items()) or "0")
        t.add_row("kill switch", snap["kill_switch"]["reason"] if snap["kill_switch"]["engaged"] else "off")
        t.add_row("session", snap["session"]["state"])
        r = snap.get("t2t_recent") or {}
        t.add_row("tick-to-trade p50 / p99 (last 20k)",
                  f"{r.get('p50_ns', '-')} / {r.get('p99_ns', '-')} ns  ({snap['t2t_samples']:,} samples)")
        self.live.update(t)


def print_report(out: dict) -> None:
    from rich.console import Console
    from rich.table import Table
    c = Console()
    t = Table(title="tick-to-trade (ns): market-data frame taken from RX -> order frame handed to TX")
    for col in ("path", "orders", "p50", "p90", "p99", "p99.9", "max"):
        t.add_column(col, justify="right")
    for name, s in out["tick_to_trade_ns"].items():
        t.add_row(name, str(s.get("count", 0)), *(str(s.get(k, "-")) for k in
                                                   ("p50_ns", "p90_ns", "p99_ns", "p99_9_ns", "max_ns")))
    c.print(t)
    if "kernel_over_memif_p50" in out:
        c.print(f"kernel / memif at p50: {out['kernel_over_memif_p50']}x  (2-vCPU shared VM: noisy, max is meaningless)")
    h = out.get("host")
    if h:
        busy = max(h["loadavg_1min_start"], h["loadavg_1min_end"]) > (h["cpus"] or 1)
        c.print(f"host: {h['cpus']} CPUs, load average {h['loadavg_1min_start']} -> {h['loadavg_1min_end']}"
                + ("  [bold yellow]busy: every figure includes waits for a CPU, the kernel path's most; "
                   "rerun on a quiet host to compare the paths[/]" if busy else ""))
    for name, r in out["paths"].items():
        o, rj = r["orders"], r["risk_rejects"]
        c.print(f"[bold]{name}[/]: sent {o['sent_new']} new, {o['fills']} fills, rejects {rj or 0}, "
                f"kill switch {r['kill_switch']['reason'] if r['kill_switch']['engaged'] else 'off'}, "
                f"feed gaps {r['feed']['gaps']}, stages p50 {r['stages_p50_ns']}")
    c.print(f"plot: {out['png']}")

"""Tick-to-trade: memif + tickwire's stack vs kernel UDP/TCP sockets, same strategy, same run.

Each repetition runs the simulator and the engine as two processes, first joined by memif
(tickwire's IPv4/UDP stack for the MDP 3.0 feed, its user-space TCP for order entry),
then over kernel sockets on loopback (udp:/tcp: ports). Tick-to-trade is measured inside
the engine with rdtscp: from the market-data frame being taken from the receive path to
the order frame being handed to the transmit path (wire-to-wire inside the process).
End to end through the simulator: from the simulator handing the market-data packet to
its transmit path to the simulator's receive call returning the order (rdtscp in both
processes, joined per order after the run: sim/e2e_stamps.py, docs/sim-e2e.md).
Reported: p50/p99/p99.9 per path, the median over repetitions, and kernel/memif at p50.
``--stages both`` (default) runs each path twice per repetition, interleaved: with only the
two ends of tick-to-trade stamped (the headline: no instrumentation inside the span) and
with every stage boundary stamped (the breakdown; rdtsc, ~18 ns each).
"""

from __future__ import annotations

from ..cli._common import at_least, cpu_index_or_off, positive_float
import json
import os
import shutil
import statistics
import tempfile
from types import SimpleNamespace


def add_arguments(p):
    p.add_argument("--duration", type=positive_float, default=5.0, help="seconds per path per repetition")
    p.add_argument("--repeat", type=at_least(1), default=3)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--strategy", default="taker")
    p.add_argument("--rate", type=positive_float, default=3000.0)
    p.add_argument("--cpu", type=cpu_index_or_off, default=1,
                   help="pin the engine to this CPU, the simulator to another (default 1; -1: no pinning)")
    p.add_argument("--rt", action="store_true", help="engine SCHED_FIFO while it measures (root)")
    p.add_argument("--stages", choices=("on", "off", "both"), default="both",
                   help="stamp every stage boundary (on), only the two ends of tick-to-trade (off: the "
                        "headline without its own instrumentation), or both, interleaved (default)")


# (report key, path, stage stamps on)
def _variants(stages: str) -> list[tuple[str, str, bool]]:
    out = []
    for path in ("memif", "kernel"):
        if stages in ("off", "both"):
            out.append((path, path, False))
        if stages in ("on", "both"):
            out.append((path if stages == "on" else path + "_stages", path, True))
    return out


def run(args) -> int:
    from ..cli.demo import run_path
    from ..engine.latency import T2T_DEFINITION
    variants = _variants(args.stages)
    reps = {key: [] for key, _, _ in variants}
    placement = {}
    for r in range(args.repeat):
        cpu = args.cpu if args.cpu is not None and args.cpu >= 0 and args.cpu in os.sched_getaffinity(0) else None
        for k, (key, path, stages) in enumerate(variants):
            a = SimpleNamespace(duration=args.duration, seed=args.seed + r, strategy=args.strategy, rate=args.rate,
                                cpu=cpu, rt=args.rt, stages=stages)
            tmp = tempfile.mkdtemp(prefix="tw-bench-")
            rnd = int.from_bytes(os.urandom(2), "little")
            spec = f"memif:socket={tmp}/md.sock,role=client" if path == "memif" else "socket"
            try:
                res, _, _ = run_path(key, a, spec, 20000 + (rnd + 7 * k) % 20000,
                                     (40000 + (rnd + k) % 9000, 49000 + (rnd + k) % 9000, 58000 + (rnd + k) % 7000))
            finally:
                shutil.rmtree(tmp, ignore_errors=True)      # the memif socket's directory
            reps[key].append({**res["tick_to_trade"], "stages_p50_ns": res["stages_p50_ns"],
                              "end_to_end": res.get("end_to_end", {"count": 0})})
            if path == "memif":
                placement = res["placement"]
    out = {"repeat": args.repeat, "duration_s": args.duration, "strategy": args.strategy, "placement": placement,
           "stages": args.stages, "loadavg": os.getloadavg(),
           "note": "2-vCPU shared VM, other jobs running: noisy; max/p99.9 include vCPU preemption",
           "definition": T2T_DEFINITION,
           "stages_note": "headline memif/kernel rows: stage stamps as --stages says (both: the headline "
                          "rows stamp only the two ends, *_stages rows every stage boundary, same run)"}
    for key, rs in reps.items():
        out[key] = _medians(rs)
        out[key]["end_to_end"] = _medians([x["end_to_end"] for x in rs])
        out[key]["runs"] = rs
    for suffix in ("", "_stages"):
        m, k = out.get("memif" + suffix, {}).get("p50_ns"), out.get("kernel" + suffix, {}).get("p50_ns")
        if m and k:
            out["kernel_over_memif_p50" + suffix] = round(k / m, 2)
        m = out.get("memif" + suffix, {}).get("end_to_end", {}).get("p50_ns")
        k = out.get("kernel" + suffix, {}).get("end_to_end", {}).get("p50_ns")
        if m and k:
            out["end_to_end_kernel_over_memif_p50" + suffix] = round(k / m, 2)
    if args.json:
        print(json.dumps(out))
    else:
        print(f"tick-to-trade, median of {args.repeat} runs x {args.duration:g} s ({out['note']})")
        print(f"  placement: {placement}; load average {' '.join(f'{x:.2f}' for x in out['loadavg'])}")
        print(f"  {T2T_DEFINITION}")
        print(f"  stage stamps: {args.stages} ({out['stages_note']})")
        for key, _, _ in variants:
            s = out[key]
            print(f"  {key:<14} n={s.get('count', 0):<6} p50 {s.get('p50_ns', '-')} ns  p99 {s.get('p99_ns', '-')} ns  "
                  f"p99.9 {s.get('p99_9_ns', '-')} ns   (in the engine)")
            e = s["end_to_end"]
            print(f"  {'':<14} n={e.get('count', 0):<6} p50 {e.get('p50_ns', '-')} ns  p99 {e.get('p99_ns', '-')} ns  "
                  f"p99.9 {e.get('p99_9_ns', '-')} ns   (end to end through the simulator)")
            if e.get("count"):
                r = s["runs"][len(s["runs"]) // 2]["end_to_end"]
                lg = r.get("legs", {})
                print(f"          legs p50 (ns): sim tx -> engine rx {lg.get('sim_tx_to_engine_rx', {}).get('p50_ns')}, "
                      f"engine tx -> sim rx {lg.get('engine_tx_to_sim_rx', {}).get('p50_ns')}; "
                      f"{r.get('late', 0)} of {r.get('count')} orders found on a turn's first poll (upper bounds), "
                      f"p50 without them {r.get('on_time', {}).get('p50_ns')}")
            if s.get("runs"):
                st = s["runs"][len(s["runs"]) // 2].get("stages_p50_ns", {})
                print("          stage p50s (ns): " + ", ".join(f"{k} {v}" for k, v in st.items()))
        for suffix in ("", "_stages"):
            if "kernel_over_memif_p50" + suffix in out:
                print(f"  kernel / memif at p50{' (stage stamps on)' if suffix else ''}: "
                      f"{out['kernel_over_memif_p50' + suffix]}x in the engine, "
                      f"{out.get('end_to_end_kernel_over_memif_p50' + suffix, '-')}x end to end")
    return 0


def _medians(rs: list[dict]) -> dict:
    """Median over the repetitions that measured something, of count and each percentile."""
    ok = [x for x in rs if x.get("count")]
    if not ok:
        return {"count": 0}
    return {k: int(statistics.median(x[k] for x in ok)) for k in ("count", "p50_ns", "p99_ns", "p99_9_ns")}

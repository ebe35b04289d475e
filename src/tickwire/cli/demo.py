"""`tickwire demo`: the simulator and the engine as two processes joined by memif, a live
view, a latency report and plot, then the same strategy over kernel sockets for comparison.
Runs on a fresh machine: no NIC, no hugepages, no configuration."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

from ._common import cpu_index, impair_ppm, positive_float


def _impair_text(text: str) -> str:
    """The simulator's --impair-x, checked here by its rule and passed on to it as text."""
    impair_ppm(text)
    return text


def register(sub):
    p = sub.add_parser("demo", help="simulator + engine over memif, live view, tick-to-trade vs kernel sockets")
    p.add_argument("--duration", type=positive_float, default=10.0, help="seconds per path (default 10)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--strategy", default="taker", help="market_maker, taker, or package.module")
    p.add_argument("--rate", type=positive_float, default=3000.0, help="simulator order-flow actions per second")
    p.add_argument("--png", default="tick_to_trade.png", help="where to write the plot")
    p.add_argument("--no-kernel", action="store_true", help="skip the kernel-socket comparison")
    p.add_argument("--cpu", type=cpu_index, default=None, help="pin the engine to this CPU (sim gets the other)")
    p.add_argument("--rt", action="store_true", help="run the engine SCHED_FIFO while it measures (root)")
    p.add_argument("--impair-a", type=_impair_text, default="0,0,0", metavar="L,D,R",
                   help="feed A loss,duplicate,reorder in ppm (passed to the simulator)")
    p.add_argument("--impair-b", type=_impair_text, default="0,0,0", metavar="L,D,R")
    p.add_argument("--json", action="store_true", help="one JSON object on the last line")
    p.set_defaults(handler=run)


class _Sim:
    """The simulator child process. Its stderr is read by a thread (so a line "ready"
    can be waited for while this process compiles the engine at the same time)."""

    def __init__(self, cmd, pre):
        import threading
        self.p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=pre)
        self.err: list[str] = []
        self.ready = threading.Event()
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()

    def _read(self):
        for line in self.p.stderr:
            self.err.append(line)
            if "ready" in line:
                self.ready.set()

    def alive(self) -> bool:
        if self.p.poll() is not None:
            raise OSError("simulator exited: " + "".join(self.err)[-800:])
        return True

    def terminate(self):
        self.p.terminate()

    def finish(self) -> dict:
        try:
            self.p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        out = self.p.stdout.read()
        self._t.join(timeout=5)
        lines = [x for x in out.splitlines() if x.startswith("{")]
        return json.loads(lines[-1]) if lines else {"error": "".join(self.err)[-500:]}


def _spawn_sim(port, seed, duration, rate, oe_port, udp_ports, cpu, impair=("0,0,0", "0,0,0"), e2e_out="") -> _Sim:
    cmd = [sys.executable, "-m", "tickwire.cli", "sim", "--port", port, "--seed", str(seed), "--duration",
           str(duration), "--rate", str(rate), "--oe-port", str(oe_port), "--udp-ports",
           ",".join(map(str, udp_ports)), "--impair-a", impair[0], "--impair-b", impair[1], "--json"]
    if e2e_out:
        cmd += ["--e2e-out", e2e_out]
    pre = None
    if cpu is not None:
        pre = lambda: os.sched_setaffinity(0, {cpu})  # noqa: E731
    return _Sim(cmd, pre)


def _progress(msg: str) -> None:
    print(f"tickwire demo: {msg}", file=sys.stderr, flush=True)


def run_path(name, args, port_spec, oe_port, udp_ports, live=None):
    """One path: simulator subprocess + engine here. Returns (summary, samples, E)."""
    from ..engine.build import EngineConfig, build_engine
    from ..engine.latency import samples, summary
    from ..engine.runner import TransportConfig, run_engine
    from ..engine.view import engine_snapshot
    from ..order.config import InstrumentLimits, RiskConfig
    from ..sim.server import DEFAULT_INSTRUMENTS

    inst = [InstrumentLimits(max_qty=10, max_notional=mid * 20, collar=40 * tick, position_limit=20, tick=tick)
            for _, mid, tick in DEFAULT_INSTRUMENTS]
    risk = RiskConfig(instruments=inst, order_rate=2000, order_burst=200, message_rate=5000, message_burst=500)
    sp = dict(instr=0, tick=DEFAULT_INSTRUMENTS[0][2]) if args.strategy == "market_maker" else \
        dict(instr=0, imbalance_pct=60, cooldown_ns=200_000, max_pos=10) if args.strategy == "taker" else {}
    E, _ = build_engine(EngineConfig(secids=[s for s, _, _ in DEFAULT_INSTRUMENTS], strategy=args.strategy,
                                     strategy_params=sp, risk=risk))
    sim_cpu = None
    if args.cpu is not None and (os.cpu_count() or 1) > 1:
        # not sched_getaffinity(0): after the first path this process is pinned to args.cpu
        sim_cpu = next(c for c in range(os.cpu_count()) if c != args.cpu)
    sim_port = port_spec.replace("role=client", "role=server")
    impair = (getattr(args, "impair_a", "0,0,0"), getattr(args, "impair_b", "0,0,0"))
    # end to end through the simulator: not with kernel-socket impairments (e2e_poll sends plainly)
    e2e_out = ""
    if getattr(args, "e2e", True) and (port_spec != "socket" or impair == ("0,0,0", "0,0,0")):
        fd, e2e_out = tempfile.mkstemp(prefix="tw-e2e-", suffix=".npz")
        os.close(fd)
    sim = _spawn_sim(sim_port, args.seed, args.duration + 20, args.rate, oe_port, udp_ports, sim_cpu, impair,
                     e2e_out)
    try:
        # kernel sockets: the simulator's baseline serves and publishes on loopback
        where = dict(venue_ip="127.0.0.1", groups=("127.0.0.1",) * 3) if port_spec == "socket" else {}
        tc = TransportConfig(port=port_spec, oe_port=oe_port, udp_ports=udp_ports, cpu=args.cpu, **where,
                             rt=bool(getattr(args, "rt", False)), stages=bool(getattr(args, "stages", True)),
                             peer_alive=sim.alive,
                             progress=lambda m: _progress(f"{name}: {m}"))
        on_tick = (lambda E: live(name, engine_snapshot(E))) if live else None
        stats = run_engine(E, tc, args.duration, on_tick)
    finally:
        sim.terminate()
        sim_stats = sim.finish()
    s = samples(E)
    snap = engine_snapshot(E)
    e2e = _end_to_end(E, e2e_out, sim_stats)
    res = {"path": name, "tick_to_trade": summary(s["tick_to_trade"]),
           "stages_p50_ns": {k: int(v[len(v) // 2]) if len(v) else None
                             for k, v in ((k, sorted(v)) for k, v in s.items() if k != "tick_to_trade")},
           "placement": {**stats.get("placement", {}), "sim_cpus": [sim_cpu] if sim_cpu is not None else "any"},
           **snap, "engine_transport": {k: v for k, v in stats.items() if not isinstance(v, dict)},
           "engine_port": stats.get("port", {}),
           "sim": sim_stats}
    if e2e is not None:
        res["end_to_end"] = e2e
    return res, s["tick_to_trade"], E


def _end_to_end(E, path, sim_stats):
    """Join the simulator's stamps (saved at ``path``) with the engine's rows: e2e_stamps.join."""
    if not path:
        return None
    from ..engine.latency import summary, ticks_per_ns
    from ..engine.layout import M_STAMP_N
    from ..sim.e2e_stamps import join, load
    try:
        if "e2e" not in sim_stats:
            return {"count": 0, "error": "the simulator saved no stamps"}
        md, oe = load(path)
    finally:
        os.unlink(path)
    n = min(int(E.meta[M_STAMP_N]), E.stamps.shape[0])
    j = join(E.stamps[:n], md, oe, ticks_per_ns())
    out = summary(j["e2e_ns"])
    has = j["t2t_ns"] >= 0
    # a consistency check of the two processes' clocks and of the join (e2e_stamps.join):
    # orders seen before the engine built them, or triggers taken before they were sent
    out.update(rows=j["rows"], late=int(j["late"].sum()), unjoined=j["unjoined"], sim=sim_stats["e2e"],
               acausal=j["acausal"],
               engine_t2t_of_joined=summary(j["t2t_ns"][has]),
               # orders found by the first poll of a simulator turn may have waited while it ran Python
               on_time=summary(j["e2e_ns"][j["late"] == 0]),
               legs={"sim_tx_to_engine_rx": summary(j["to_engine_ns"]),
                     "engine_tx_to_sim_rx": summary(j["from_engine_ns"][has])})
    return out


def run(args) -> int:
    from ..engine.latency import plot
    from ..engine.view import LiveView

    _progress("starting the simulator and compiling the engine, in parallel (the first run compiles for "
              "minutes; later runs load Numba's cache in seconds)")
    tmp = tempfile.mkdtemp(prefix="tw-demo-")
    sock = os.path.join(tmp, "md.sock")
    rnd = int.from_bytes(os.urandom(2), "little")
    results, dists = {}, {}
    load_start = os.getloadavg()[0]
    view = LiveView(enabled=not args.json)
    with view:
        r, d, _ = run_path("memif", args, f"memif:socket={sock},role=client", 20000 + rnd % 20000,
                           (40000 + rnd % 9000, 49000 + rnd % 9000, 58000 + rnd % 7000), view.update)
        results["memif"], dists["memif"] = r, d
        if not args.no_kernel:
            r, d, _ = run_path("kernel", args, "socket", 20000 + (rnd + 1) % 20000,
                               (40001 + rnd % 9000, 49001 + rnd % 9000, 58001 + rnd % 7000), view.update)
            results["kernel"], dists["kernel"] = r, d
    import shutil
    shutil.rmtree(tmp, ignore_errors=True)     # the memif control socket lived here
    plot(dists, args.png)
    out = {"duration_s": args.duration, "seed": args.seed, "strategy": args.strategy, "png": args.png,
           "tick_to_trade_ns": {k: v["tick_to_trade"] for k, v in results.items()},
           "end_to_end_ns": {k: v["end_to_end"] for k, v in results.items() if "end_to_end" in v},
           # a busy host puts run-queue waits into every figure, the kernel path's most (it
           # blocks and wakes): the report says so rather than print a ratio as if it were quiet
           "host": {"cpus": os.cpu_count(), "loadavg_1min_start": round(load_start, 2),
                    "loadavg_1min_end": round(os.getloadavg()[0], 2)}}
    m, k = out["tick_to_trade_ns"].get("memif", {}), out["tick_to_trade_ns"].get("kernel", {})
    if m.get("p50_ns") and k.get("p50_ns"):
        out["kernel_over_memif_p50"] = round(k["p50_ns"] / m["p50_ns"], 2)
    out["paths"] = results
    if args.json:
        print(json.dumps(out))
    else:
        from ..engine.view import print_report
        print_report(out)
        for name, e in out["end_to_end_ns"].items():
            print(f"{name}: end to end through the simulator (MD packet sent -> order received, ns): "
                  f"n={e.get('count', 0)} p50 {e.get('p50_ns', '-')} p99 {e.get('p99_ns', '-')} "
                  f"p99.9 {e.get('p99_9_ns', '-')}")
    return 0

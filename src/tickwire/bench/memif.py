"""memif throughput and echo latency: tickwire vs DPDK testpmd, side by side.

Every scenario runs two processes, each pinned to its own CPU (the server side on
CPU 1, the client side on CPU 0; testpmd's forwarding lcore likewise), 64-byte
frames, burst 32, copy mode, no hugepages. Rates are measured at the receiver.
Scenarios are interleaved and repeated; medians are reported, and beside them the
median of the per-repetition ratios (contenders run back to back share a placement). The plain
cache-line ping-pong between the same two CPUs, measured in the same run, is the
shared-memory limit the echo round trip is compared with; beside it, a ping-pong that
moves memif's three dependent lines each way (ring index, descriptor, frame) with no
driver code shows what the protocol itself costs: on the same lines every time, and on
lines that move on per slot as in a ring (the echo's real yardstick, docs/memif.md session 8).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
import uuid

import numpy as np

from ..cli._common import at_least, positive_float
from ..peers.testpmd import TestpmdPeer, per_second_rate, testpmd_path

WORKER = [sys.executable, "-m", "tickwire.bench._memif_worker"]
SERVER_CPU, CLIENT_CPU = 1, 0


def add_arguments(p) -> None:
    p.add_argument("--seconds", type=positive_float, default=2.0, help="duration of each throughput run")
    p.add_argument("--repeat", type=at_least(0), default=3, help="repetitions of every scenario (median reported); "
                   "0 skips the throughput runs and measures round trips once")
    p.add_argument("--samples", type=at_least(1), default=100_000, help="round trips per latency run (after 10,000 of warm-up)")
    p.add_argument("--no-testpmd", action="store_true", help="skip the DPDK comparison")


def _spec(sock: str, role: str) -> str:
    return f"memif:socket={sock},role={role}"


def _worker(mode, spec, seconds, cpu, samples=0, pingpong_fd=None):
    args = [mode, spec, str(seconds), str(cpu)] + ([str(samples)] if samples else [])
    fds = (int(spec),) if mode.startswith("pingpong") else ()
    if pingpong_fd is not None:
        args.append(str(pingpong_fd))
        fds = (pingpong_fd,)
    return subprocess.Popen(WORKER + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            pass_fds=fds)


def _result(proc, timeout=180) -> dict:
    out, err = proc.communicate(timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark worker failed:\n{err[-2000:]}")
    return json.loads(out.strip().splitlines()[-1])


_made_socks: list[str] = []  # control sockets this run named: removed when it ends (a peer
                             # killed or stopped before it closes, testpmd, leaves its socket)


def _sock() -> str:
    os.makedirs("/run/tw", exist_ok=True)
    path = f"/run/tw/bench-{uuid.uuid4().hex[:8]}.sock"
    _made_socks.append(path)
    return path


def _pcts(values) -> dict:
    a = np.asarray(values, dtype=np.float64)
    if a.size == 0:
        return {"p50": None, "p99": None, "p99.9": None, "n": 0}
    return {"p50": float(np.percentile(a, 50)), "p99": float(np.percentile(a, 99)),
            "p99.9": float(np.percentile(a, 99.9)), "n": int(a.size)}


# --- scenarios: each returns Mpps (receiver side) or RTT samples in ns ---------------------
def _pair(server_mode, client_mode, seconds, samples=0, pingpong_fd=None):
    sock = _sock()
    server = _worker(server_mode, _spec(sock, "server"), seconds, SERVER_CPU, samples, pingpong_fd)
    time.sleep(0.3)
    client = _worker(client_mode, _spec(sock, "client"), seconds, CLIENT_CPU, samples, pingpong_fd)
    rc = _result(client)
    rs = _result(server)
    return rs, rc


# Every rate row is counted alike: traffic flows for SECONDS + 2, the receiver's rate in
# each second is sampled (testpmd: its stats-period 1 Rx-pps lines; tickwire: one-second bins
# from the first frame, bench._memif_worker rx_loop), the first sample is dropped and the
# median of the rest reported. Before session 9 a tickwire receiver fed by testpmd's endless
# txonly counted the mean over 32 s (its idle timeout never came) against testpmd's median of
# 2-3 one-second samples: 8x the exposure to the host moving the vCPUs, and dips counted.
# One rule for both kinds of receiver: peers.testpmd.per_second_rate.
def tw_tw_rate(direction: str, seconds: float) -> float:
    if direction == "c2s":
        rs, _ = _pair("rx", "tx", seconds + 2)
        return per_second_rate(rs["mpps_per_s"])
    _, rc = _pair("tx", "rx", seconds + 2)
    return per_second_rate(rc["mpps_per_s"])


def tw_pmd_rate(direction: str, seconds: float) -> float:
    """tickwire client with a testpmd server: S2C testpmd txonly -> tickwire rx; C2S tickwire tx -> testpmd rxonly."""
    sock = _sock()
    fwd = "txonly" if direction == "s2c" else "rxonly"
    with TestpmdPeer(role="server", socket=sock, forward=fwd, main_lcore=CLIENT_CPU) as pmd:
        pmd.wait_started()
        if direction == "s2c":
            return per_second_rate(_result(_worker("rx", _spec(sock, "client"), seconds + 2, CLIENT_CPU))["mpps_per_s"])
        _result(_worker("tx", _spec(sock, "client"), seconds + 2, CLIENT_CPU))
        time.sleep(1.2)  # let testpmd print the last per-second sample
        return pmd.rx_pps() / 1e6


def pmd_pmd_rate(direction: str, seconds: float) -> float:
    sock = _sock()
    srv_fwd, cli_fwd = ("txonly", "rxonly") if direction == "s2c" else ("rxonly", "txonly")
    with TestpmdPeer(role="server", socket=sock, forward=srv_fwd, main_lcore=CLIENT_CPU) as srv:
        srv.wait_started()
        with TestpmdPeer(role="client", socket=sock, forward=cli_fwd, main_lcore=SERVER_CPU) as cli:
            cli.wait_started()
            time.sleep(seconds + 2)
            receiver = cli if direction == "s2c" else srv
            return receiver.rx_pps() / 1e6


def tw_echo_rtt(samples: int, beside: list | None = None) -> list[float]:
    """Echo round trips; ``beside`` gets the [before, after] medians of the plain ping-pong
    run by the same two processes around the echo (bench._memif_worker._beside: the vCPU
    placement changes between process pairs, not within one)."""
    fd = os.memfd_create("tw-pingpong-beside")
    os.ftruncate(fd, 4096)
    try:
        _, rc = _pair("echo", "ping", 600, samples, fd)  # the echo side stops when the pinger is done
    finally:
        os.close(fd)
    if beside is not None:
        beside.append(rc.get("pingpong_beside_ns"))
    return rc["rtt_ns"]


def pmd_echo_rtt(samples: int) -> list[float]:
    sock = _sock()
    with TestpmdPeer(role="server", socket=sock, forward="macswap", main_lcore=CLIENT_CPU) as pmd:
        pmd.wait_started()
        return _result(_worker("ping", _spec(sock, "client"), 60, CLIENT_CPU, samples))["rtt_ns"]


def pingpong_rtt(samples: int, kind: str = "pingpong") -> list[float]:
    from ._memif_worker import RING_PAGES
    fd = os.memfd_create("tw-pingpong")
    os.ftruncate(fd, RING_PAGES if kind == "pingpong3r" else 4096)
    try:
        b = _worker(f"{kind}-b", str(fd), 0, SERVER_CPU, samples)
        a = _worker(f"{kind}-a", str(fd), 0, CLIENT_CPU, samples)
        ra = _result(a)
        _result(b)
        if ra.get("bad"):
            raise RuntimeError(f"{kind}: {ra['bad']} frames did not hold the value sent")
        return ra["rtt_ns"]
    finally:
        os.close(fd)


# --- the report ---------------------------------------------------------------------------
def run(args) -> int:
    try:
        return _run(args)
    finally:
        for path in _made_socks:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        _made_socks.clear()


def _run(args) -> int:
    have_pmd = testpmd_path() is not None and not args.no_testpmd
    rates: dict[str, list[float]] = {}
    for rep in range(args.repeat):  # interleave scenarios so slow drifts hit all alike
        for d in ("s2c", "c2s"):
            rows = [(f"tickwire->tickwire {d}", tw_tw_rate)]
            if have_pmd:
                rows += [(f"tickwire<->testpmd {d}", tw_pmd_rate), (f"testpmd->testpmd {d}", pmd_pmd_rate)]
            # every other repetition in reverse order, so that no row always runs right after
            # the same neighbour or always nearest to (or furthest from) the reference
            for name, rate in (rows if rep % 2 == 0 else rows[::-1]):
                rates.setdefault(name, []).append(rate(d, args.seconds))
    rtt_scenarios = {"cache-line ping-pong": lambda k: pingpong_rtt(k),
                     "memif-shaped ping-pong": lambda k: pingpong_rtt(k, "pingpong3"),
                     "memif-shaped, speculative prefetch": lambda k: pingpong_rtt(k, "pingpong3p"),
                     # the same with the slots moving on as in a ring: the protocol's own cost
                     "memif-shaped, prefetch, ring slots": lambda k: pingpong_rtt(k, "pingpong3r"),
                     "tickwire echo (tickwire pinger)": lambda k: tw_echo_rtt(k, beside)}
    if have_pmd:
        rtt_scenarios["testpmd macswap (tickwire pinger)"] = pmd_echo_rtt
    # Round trips are repeated and interleaved like the rates: the vCPU placement can change
    # between two runs (the ping-pong went 110 -> 461 ns within one session), so a row is
    # compared with the ping-pong measured next to it, repetition by repetition.
    beside: list = []  # the ping-pong the echo's own two processes ran before and after it
    rtt_runs: dict[str, list[list[float]]] = {k: [] for k in rtt_scenarios}
    for _ in range(max(1, args.repeat)):
        for k, scenario in rtt_scenarios.items():
            rtt_runs[k].append(scenario(args.samples))
    rtts = {k: [x for run in runs for x in run] for k, runs in rtt_runs.items()}

    report = {"placement": {"server_cpu": SERVER_CPU, "client_cpu": CLIENT_CPU},
              "frame_bytes": 64, "burst": 32, "repeat": args.repeat,
              "mpps": {k: {"median": statistics.median(v), "runs": v} for k, v in rates.items()},
              "rtt_ns": {k: _pcts(v) for k, v in rtts.items()}}
    for d in ("s2c", "c2s"):
        ref = report["mpps"].get(f"testpmd->testpmd {d}")
        if ref and ref["median"] > 0:
            for k in (f"tickwire->tickwire {d}", f"tickwire<->testpmd {d}"):
                row = report["mpps"][k]
                row["ratio_vs_testpmd"] = row["median"] / ref["median"]
                # Each repetition runs the contenders back to back, so a ratio within one
                # repetition shares the vCPU placement of that moment; the median of those
                # paired ratios is far less noisy than a ratio of medians on a shared VM.
                paired = [a / b for a, b in zip(row["runs"], ref["runs"]) if b > 0]
                row["paired_ratio_median"] = statistics.median(paired) if paired else None
    limit = report["rtt_ns"]["cache-line ping-pong"]["p50"]
    shaped = report["rtt_ns"]["memif-shaped ping-pong"]["p50"]
    p50s = {k: [float(np.percentile(run, 50)) if run else None for run in runs] for k, runs in rtt_runs.items()}
    for k, v in report["rtt_ns"].items():
        v["ratio_vs_pingpong_p50"] = v["p50"] / limit if limit and v["p50"] else None
        v["ratio_vs_memif_shaped_p50"] = v["p50"] / shaped if shaped and v["p50"] else None
        v["p50_runs"] = p50s[k]
        paired = [a / b for a, b in zip(p50s[k], p50s["cache-line ping-pong"]) if a and b]
        v["paired_ratio_vs_pingpong"] = statistics.median(paired) if paired else None

    echo = report["rtt_ns"]["tickwire echo (tickwire pinger)"]
    echo["pingpong_beside_ns"] = beside
    # a pair whose ping-pong moved between before and after (461 -> 110 ns seen) changed
    # placement during the echo: it pairs nothing and is left out
    same = [p50 / ((b[0] + b[1]) / 2) for p50, b in zip(echo["p50_runs"], beside)
            if p50 and b and b[0] and b[1] and max(b) <= 1.5 * min(b)]
    echo["ratio_vs_pingpong_same_pair"] = statistics.median(same) if same else None
    echo["same_pair_runs_used"] = len(same)

    if args.json:
        print(json.dumps(report))
        return 0
    print(f"memif, 64-byte frames, burst 32; server side on CPU {SERVER_CPU}, client side on CPU {CLIENT_CPU}; "
          f"median of {args.repeat} runs")
    print(f"{'throughput (Mpps at the receiver)':<36}{'median':>9}{'vs testpmd':>12}{'paired':>9}   runs")
    for k, v in report["mpps"].items():
        ratio, paired = v.get("ratio_vs_testpmd"), v.get("paired_ratio_median")
        runs = " ".join(f"{x:.2f}" for x in v["runs"])
        print(f"  {k:<34}{v['median']:>9.2f}{(f'{ratio:.2f}x' if ratio else '-'):>12}"
              f"{(f'{paired:.2f}x' if paired else '-'):>9}   {runs}")
    print(f"{'round trip, 1 frame (ns)':<36}{'p50':>9}{'p99':>9}{'p99.9':>9}{'vs ping-pong':>14}"
          f"{'paired':>9}{'vs memif-shaped':>17}   p50 of each run")
    for k, v in report["rtt_ns"].items():
        r, r3, rp = v["ratio_vs_pingpong_p50"], v["ratio_vs_memif_shaped_p50"], v["paired_ratio_vs_pingpong"]
        runs = " ".join(f"{x:.0f}" if x else "-" for x in v["p50_runs"])
        print(f"  {k:<34}{v['p50'] or 0:>9.0f}{v['p99'] or 0:>9.0f}{v['p99.9'] or 0:>9.0f}"
              f"{(f'{r:.2f}x' if r else '-'):>14}{(f'{rp:.2f}x' if rp else '-'):>9}"
              f"{(f'{r3:.2f}x' if r3 else '-'):>17}   {runs}")
    same = echo["ratio_vs_pingpong_same_pair"]
    print(f"  tickwire echo vs the ping-pong its own two processes ran before/after it: "
          f"{(f'{same:.2f}x' if same else '-')} (median of {echo['same_pair_runs_used']} runs whose placement held; ping-pong ns "
          + " ".join(f"{b[0]:.0f}/{b[1]:.0f}" if b else "-" for b in beside) + ")")
    print("Noisy 2-vCPU VM: host placement of the two vCPUs changes these numbers 3-10x; compare rows of one run only.")
    return 0

"""`tickwire demo` end to end: simulator and engine as two processes joined by memif, then
the kernel-socket path; one JSON object on the last line; the plot is written."""

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def test_demo_json_both_paths(tmp_path):
    # the timeout only guards against a hang: from a cold Numba cache on a loaded 2-vCPU VM
    # (load average 8-11) compiling both engine loops and the simulator took over 20 minutes
    png = tmp_path / "t2t.png"
    p = subprocess.run([sys.executable, "-m", "tickwire.cli", "demo", "--duration", "4", "--seed", "3", "--json",
                        "--png", str(png)], capture_output=True, text=True, timeout=2400)
    assert p.returncode == 0, p.stderr[-2000:]
    out = json.loads(p.stdout.strip().splitlines()[-1])
    for path in ("memif", "kernel"):
        r = out["paths"][path]
        assert out["tick_to_trade_ns"][path]["count"] > 0, (path, r["engine"], r["sim"])
        assert out["tick_to_trade_ns"][path]["p50_ns"] > 0
        assert r["orders"]["bad_exec"] == 0 and r["orders"]["fills"] > 0
        assert r["session"]["state"] == "established"
        assert r["engine"]["oe_garbage"] == 0
        assert r["sim"].get("venue_garbage", 0) == 0
    # the kernel path starts at the kernel's receive stamp: its receive side is a stage of its own
    k = out["paths"]["kernel"]
    assert k["stages_p50_ns"]["kernel_rx"] > 0
    assert k["stages_p50_ns"]["t2t_after_recv"] < out["tick_to_trade_ns"]["kernel"]["p50_ns"]
    assert "kernel_rx" not in out["paths"]["memif"]["stages_p50_ns"]
    assert png.exists() and png.stat().st_size > 1000
    assert out["host"]["cpus"] == os.cpu_count() and out["host"]["loadavg_1min_end"] >= 0


def test_sim_json_and_bad_arguments():
    p = subprocess.run([sys.executable, "-m", "tickwire.cli", "sim", "--impair-a", "1,2", "--json"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode != 0 and "impair" in p.stderr

"""`tickwire bench xdp` runs end to end and reports every contender (no timing asserted:
benchmarks judge speed, tests judge behaviour)."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import require


@pytest.mark.peer
@pytest.mark.slow
def test_bench_xdp_json_has_every_contender():
    require(os.geteuid() == 0, "root privileges")
    require(shutil.which("gcc") is not None, "gcc (the C reference peers are built at run time)")
    r = subprocess.run([sys.executable, "-m", "tickwire.cli", "bench", "xdp", "--json", "--reps", "1",
                        "--count", "300", "--warmup", "30", "--seconds", "0.3"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode in (0, 1) and r.stdout.startswith("{"), r.stderr[-3000:]     # 1: a contender failed
    res = json.loads(r.stdout)
    assert res["failed"] == {} and r.returncode == 0, (res["failed"], r.stderr[-2000:])
    names = {"xdp", "xdp-c", "udp", "kernel-c", "kernel-python"}
    assert names <= set(res["rtt_us"])
    for n, v in res["rtt_us"].items():
        assert v["median"] > 0 and v["p99"] >= v["median"], n
    assert names - {"xdp-c"} <= set(res["rx"])
    for n, v in res["rx"].items():
        assert v["sent"] > 0 and v["mpps"] > 0, n
    assert res["config"]["xdp_port"]["umem"] == "pool" and res["config"]["xdp_port"]["zerocopy"] is False
    assert "xdp_vs_c_af_xdp" in res and "rtt_ratio_vs_kernel_c" in res

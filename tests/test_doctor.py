"""tickwire doctor against the real host: a veth it did not create can be judged, a
missing interface and missing capabilities are failures with a fix."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import require


def _doctor(*args, ns=None, prefix=()):
    cmd = [*prefix, sys.executable, "-m", "tickwire.cli", "doctor", "--json", *args]
    if ns:
        cmd = ["ip", "netns", "exec", ns, *cmd]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    return r.returncode, {c["check"]: c for c in json.loads(r.stdout)["checks"]}


def test_host_checks_report_what_the_kernel_says():
    rc, checks = _doctor()
    for name in ("privileges", "kernel", "hugepages", "isolated cores", "cpu frequency", "memlock", "iommu/vfio"):
        assert name in checks and checks[name]["status"] in ("ok", "warn", "fail", "info")
    meminfo = dict(line.split(":", 1) for line in open("/proc/meminfo").read().splitlines())
    total = int(meminfo["HugePages_Total"].strip())
    assert (checks["hugepages"]["status"] == "warn") == (total == 0)
    iso = open("/sys/devices/system/cpu/isolated").read().strip()
    assert (checks["isolated cores"]["status"] == "warn") == (iso == "")
    for c in checks.values():
        if c["status"] in ("warn", "fail"):
            assert c["fix"], f"{c['check']} says what is wrong but not how to fix it"
    if os.geteuid() == 0:
        assert checks["privileges"]["status"] == "ok" and rc == 0


def test_missing_capabilities_are_a_failure_with_the_fix():
    require(os.geteuid() == 0 and shutil.which("capsh") is not None, "root and capsh to drop capabilities")
    rc, checks = _doctor(prefix=("capsh", "--drop=cap_bpf,cap_net_admin,cap_net_raw,cap_sys_admin", "--", "-c",
                                 'exec "$0" "$@"'))
    assert rc == 1
    c = checks["privileges"]
    assert c["status"] == "fail" and "CAP_BPF" in c["detail"] and "setcap" in c["fix"]


@pytest.mark.peer
def test_veth_port_checks_and_probe_leave_nothing_attached():
    require(os.geteuid() == 0 and shutil.which("ethtool") is not None, "root and ethtool")
    from xdp.netns import VethPair
    with VethPair() as v:
        v.a("ethtool", "-K", v.dev_a, "gro", "on")
        rc, checks = _doctor("--port", f"xdp:dev={v.dev_a}", "--probe", ns=v.ns_a)
        assert checks[f"nic {v.dev_a}"]["detail"] == "driver veth"
        off = checks[f"nic {v.dev_a} offloads"]
        assert off["status"] == "warn" and "generic-receive-offload" in off["detail"]
        assert f"ethtool -K {v.dev_a}" in off["fix"]
        assert checks[f"xdp {v.dev_a} native"]["status"] == "ok"
        zc = checks[f"xdp {v.dev_a} zero-copy"]
        assert zc["status"] == "warn" and "not supported" in zc["detail"]
        assert not v.xdp_attached(), "the probe's bpf_link is closed"

        rc, checks = _doctor("--port", "xdp:dev=twnosuch9", ns=v.ns_a)
        assert rc == 1 and checks["nic twnosuch9"]["status"] == "fail"
        assert "not found" in checks["nic twnosuch9"]["detail"]


def test_pci_port_that_does_not_exist_is_a_failure():
    rc, checks = _doctor("--port", "pci:0000:ff:1f.7")
    assert rc == 1
    c = checks["pci 0000:ff:1f.7"]
    assert c["status"] == "fail" and "no PCI network device" in c["detail"] and "lspci" in c["fix"]

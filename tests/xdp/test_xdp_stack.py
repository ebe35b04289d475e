"""tickwire's IPv4 stack over xdp: answers the kernel's ping and arping and echoes UDP
with valid checksums (the issue's end-to-end test; the stack is tickwire.stack)."""

import json
import shutil
import subprocess
import sys
import time

import pytest

from conftest import require

from .peers import udp_in_csum_errors

UDP_CLIENT = r"""
import socket, sys
host, port = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2)
for n in (1, 7, 64, 513, 1400):
    m = bytes((i * 7 + n) & 0xFF for i in range(n))
    s.sendto(m, (host, port))
    d, a = s.recvfrom(4096)
    assert d == m and a == (host, port), (d[:16], a)
print("ok")
"""


def _start(veth, spec, extra):
    argv = ["ip", "netns", "exec", veth.ns_a, sys.executable, "-m", "tickwire.cli", "stack", "--port", spec,
            "--ip", f"{veth.A_IP}/24", "--json", *extra]
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    t_end = time.monotonic() + 180
    while time.monotonic() < t_end:
        line = p.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "ready" in line:
            return p
    p.kill()
    raise RuntimeError("tickwire stack did not start:\n" + "".join(lines))


def _stop(p):
    if p.poll() is None:
        p.terminate()
    try:
        out, _ = p.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate()
    return out


@pytest.mark.peer
@pytest.mark.parametrize("mode", ["native", "generic"])
def test_kernel_ping_arping_and_udp_echo_through_the_stack(veth, mode):
    for tool in ("ping", "arping"):
        require(shutil.which(tool) is not None, f"program {tool!r}")
    veth.b("ip", "neigh", "del", veth.A_IP, "dev", veth.dev_b)      # make the kernel ARP for us for real
    p = _start(veth, f"xdp:dev={veth.dev_a},mode={mode},ip={veth.A_IP},ports=7000", ["--udp-echo", "7000"])
    try:
        assert veth.xdp_attached()
        r = subprocess.run(["ip", "netns", "exec", veth.ns_b, "ping", "-c", "3", "-i", "0.2", "-W", "2", veth.A_IP],
                           capture_output=True, text=True)
        assert r.returncode == 0 and " 0% packet loss" in r.stdout, r.stdout
        r = subprocess.run(["ip", "netns", "exec", veth.ns_b, "arping", "-c", "2", "-I", veth.dev_b, veth.A_IP],
                           capture_output=True, text=True)
        assert r.returncode == 0 and veth.mac_a in r.stdout.lower(), r.stdout
        csum0 = udp_in_csum_errors(veth)
        r = subprocess.run(["ip", "netns", "exec", veth.ns_b, sys.executable, "-c", UDP_CLIENT, veth.A_IP, "7000"],
                           capture_output=True, text=True)
        assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
        assert udp_in_csum_errors(veth) == csum0
    finally:
        out = _stop(p)
    res = json.loads(out.strip().splitlines()[-1])
    assert res["stack"]["icmp_echo_tx"] >= 3 and res["stack"]["arp_reply_tx"] >= 2 and res["stack"]["udp_tx"] == 5
    assert res["pool_in_flight"] == 0
    assert not veth.xdp_attached()

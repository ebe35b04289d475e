"""`tickwire tcp-echo` and `tickwire tcp-send` run as commands inside namespace A,
against the kernel's TCP in namespace B."""

import hashlib
import json
import random
import subprocess
import sys

import pytest

from .test_kernel_peer import Peer, veth  # noqa: F401 (fixture)

pytestmark = pytest.mark.peer


def tickwire(v, *args, **kw):
    return subprocess.Popen(["ip", "netns", "exec", v.ns_a, sys.executable, "-m", "tickwire.cli", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def last_json(out: str) -> dict:
    return json.loads([l for l in out.splitlines() if l.startswith("{")][-1])


def test_tcp_echo_command_echoes_kernel_client_exactly(veth):
    spec = f"packet:dev={veth.dev_a},filter={veth.A_IP}"
    echo = tickwire(veth, "tcp-echo", "--port", spec, "--ip", veth.A_IP, "--listen", 9200, "--count", 1, "--json")
    try:
        line = echo.stderr.readline()           # printed once the compiled loop is loaded
        assert "listening" in line, line + echo.stderr.read()
        # the IPv4 stack under tcp-echo answers ARP and ping (kernel's ping as the peer)
        assert " 3 received" in veth.b("ping", "-c", "3", "-i", "0.2", "-w", "15", veth.A_IP)
        client = Peer(veth, "echo-client", veth.A_IP, 9200, 2_000_000, 5)
        r = client.result(timeout=60)
        assert r["echo_ok"] and r["eof"] and r["error"] == "", r
        out, err = echo.communicate(timeout=30)
        res = last_json(out)
        assert res["connections"] == 1 and res["echoed_bytes"] == 2_000_000 and res["errors"] == []
        assert res["pool_in_flight"] == 0
    finally:
        if echo.poll() is None:
            echo.kill()
            echo.wait()


def test_tcp_send_command_exchanges_with_kernel_server(veth):
    n = 1_000_000
    server = Peer(veth, "serve", 9201, n, 3)
    try:
        server.wait_listening()
        spec = f"packet:dev={veth.dev_a},filter={veth.A_IP}"
        p = tickwire(veth, "tcp-send", "--port", spec, "--ip", veth.A_IP, "--connect", f"{veth.B_IP}:9201",
                     "--random", n, "--json")
        out, err = p.communicate(timeout=90)
        assert p.returncode == 0, err
        res = last_json(out)
        kern = server.result()
        assert kern["received"] == n and kern["sha256"] == res["sent_sha256"] and kern["eof"]
        assert res["received"] == n and res["eof"]
        assert res["received_sha256"] == hashlib.sha256(random.Random(3).randbytes(n)).hexdigest()
    finally:
        server.kill()


def test_tcp_send_rtt_against_kernel_echo_server(veth):
    server = Peer(veth, "echo-server", 9202)
    try:
        server.wait_listening()
        spec = f"packet:dev={veth.dev_a},filter={veth.A_IP}"
        p = tickwire(veth, "tcp-send", "--port", spec, "--ip", veth.A_IP, "--connect", f"{veth.B_IP}:9202",
                     "--rtt", 2000, "--warmup", 200, "--json")
        out, err = p.communicate(timeout=90)
        assert p.returncode == 0, err + out
        res = last_json(out)
        assert res["rtt_n"] == 2000 and res["rtt_median_ns"] > 0
        assert res["fast_tx"] >= 2000 and res["fast_rx"] >= 2000     # the compiled paths did the work
        echoed = server.result()
        assert echoed["echoed"] >= 2200 * 64
    finally:
        server.kill()


def test_tcp_send_abort_is_econnreset_at_the_kernel(veth):
    server = Peer(veth, "serve", 9203, 0, 1)
    try:
        server.wait_listening()
        spec = f"packet:dev={veth.dev_a},filter={veth.A_IP}"
        p = tickwire(veth, "tcp-send", "--port", spec, "--ip", veth.A_IP, "--connect", f"{veth.B_IP}:9203",
                     "--message", "cancel all", "--abort", "--json")
        out, err = p.communicate(timeout=90)
        assert p.returncode == 0, err + out
        kern = server.result()
        assert kern["error"] == "ECONNRESET" and kern["received"] == 10, kern
        res = last_json(out)
        assert res["sent"] == 10 and res["state"] == "CLOSED"
    finally:
        server.kill()

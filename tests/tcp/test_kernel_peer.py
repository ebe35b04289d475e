"""tickwire's TCP against the Linux kernel's TCP, over a veth pair between two network
namespaces this test creates; tickwire uses the ``packet:`` port in namespace A, the
kernel peer (tests/tcp/kernel_peer.py) runs in namespace B."""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import require
from .netns import Veth, inside
from tickwire.drivers.port import open_port
from tickwire.mem.mempool import Mempool
from tickwire.stack.tcp import tcb as T
from tickwire.stack.tcp.config import TcpConfig
from tickwire.stack.tcp.stack import TcpStack

PEER = str(Path(__file__).parent / "kernel_peer.py")
pytestmark = pytest.mark.peer


def need_netns():
    require(os.geteuid() == 0, "root privileges (network namespaces)")
    for tool in ("ip", "ethtool", "tc", "nft"):
        require(shutil.which(tool) is not None, f"program {tool!r}")


@pytest.fixture
def veth():
    need_netns()
    with Veth() as v:
        yield v


class Peer:
    def __init__(self, v: Veth, *args):
        self.proc = subprocess.Popen(["ip", "netns", "exec", v.ns_b, sys.executable, PEER, *map(str, args)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def wait_listening(self):
        line = self.proc.stdout.readline()
        assert "listening" in line, self.proc.stderr.read()

    def result(self, timeout=30) -> dict:
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
        lines = [l for l in out.splitlines() if l.startswith("{") and "listening" not in l]
        assert lines, f"kernel peer printed nothing: {err}"
        return json.loads(lines[-1])

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def make_stack(v: Veth, netem: bool = False, cfg: TcpConfig | None = None, kind: str = "packet"):
    if kind == "xdp":
        from tickwire.drivers import xdp
        pool = xdp.make_pool(8192)                 # the pool is the UMEM
        spec = f"xdp:dev={v.dev_a},ip={v.A_IP}"    # the XDP filter redirects ARP/ICMP/TCP for our IP
    else:
        pool = Mempool(n_bufs=8192)
        spec = f"packet:dev={v.dev_a},filter={v.A_IP}" + (",qdisc_bypass=no" if netem else "")
    with inside(v.ns_a):
        port = open_port(spec, pool)
    return TcpStack(port, v.A_IP, cfg=cfg or TcpConfig(msl_us=200_000))


def check_impaired(veth, conn):
    """The impairment really happened, and tickwire really recovered from it."""
    assert conn.counters["retransmits"] > 0
    assert conn.counters["sack_blocks_bad"] == 0          # the kernel's SACK blocks all made sense
    seen = veth.impaired_packets()
    if any(seen.values()):                      # nft+htb fallback: its counters are readable
        assert seen["drop"] > 10 and seen["dup"] > 5 and seen["priority"] > 20, seen


def exchange(stack, conn, data: bytes, expect: int, timeout: float = 60.0) -> bytes:
    """Send ``data`` and read ``expect`` bytes at the same time, then close and drain to EOF."""
    got = bytearray()
    off = 0
    closed = False
    deadline = time.monotonic() + timeout
    while not (closed and conn.eof and conn.state_name in ("CLOSED", "TIME-WAIT")):
        assert time.monotonic() < deadline, f"stalled: sent {off}/{len(data)} got {len(got)}/{expect} " \
                                            f"state {conn.state_name} {conn.reason} {stack.counters()} {conn.counters}"
        if off < len(data):
            off += conn.send(data[off:off + 65536])
        elif not closed:
            conn.close()
            closed = True
        stack.poll()
        got += conn.recv(1 << 20)
    got += conn.recv(1 << 30)
    return bytes(got)


@pytest.mark.parametrize("netem", [False, True], ids=["clean", "netem"])
def test_tickwire_client_kernel_server_exact_both_ways(veth, netem):
    n = 3_000_000 if not netem else 1_000_000
    if netem:
        veth.impair(loss_pct=2, dup_pct=1, reorder_pct=5)
    peer = Peer(veth, "serve", 9000, n, 7)
    try:
        peer.wait_listening()
        stack = make_stack(veth, netem)
        conn = stack.connect(veth.B_IP, 9000)
        data = os.urandom(n)
        got = exchange(stack, conn, data, n, timeout=120)
        r = peer.result()
        assert r["error"] == "" and r["eof"], r                     # the kernel saw our FIN as EOF
        assert r["received"] == n and r["sha256"] == hashlib.sha256(data).hexdigest()
        assert got == random.Random(7).randbytes(n)
        c = stack.counters()
        assert c["fast_rx"] > 0
        if netem:
            check_impaired(veth, conn)
        stack.port.close()
    finally:
        peer.kill()


@pytest.mark.parametrize("netem", [False, True], ids=["clean", "netem"])
def test_kernel_client_tickwire_server_exact_both_ways(veth, netem):
    n = 3_000_000 if not netem else 1_000_000
    if netem:
        veth.impair(loss_pct=2, dup_pct=1, reorder_pct=5)
    stack = make_stack(veth, netem)
    lst = stack.listen(9001)
    peer = Peer(veth, "connect", veth.A_IP, 9001, n, 11)
    try:
        conn = lst.accept(timeout=10)
        assert conn is not None, stack.counters()
        data = os.urandom(n)
        got = exchange(stack, conn, data, n, timeout=120)
        r = peer.result()
        assert r["error"] == "" and r["eof"], r
        assert r["received"] == n and r["sha256"] == hashlib.sha256(data).hexdigest()
        assert got == random.Random(11).randbytes(n)
        assert stack.counters()["arp_replies"] >= 1                 # the kernel resolved us by ARP
        if netem:
            check_impaired(veth, conn)
        stack.port.close()
    finally:
        peer.kill()


def test_abort_is_econnreset_at_the_kernel(veth):
    peer = Peer(veth, "serve", 9002, 0, 1)
    try:
        peer.wait_listening()
        stack = make_stack(veth)
        conn = stack.connect(veth.B_IP, 9002)
        conn.send(b"hello")
        assert stack.run_until(lambda: conn.h[T.SND_UNA] == conn.h[T.SND_NXT], 5)   # acked: the RST's
        # sequence number is then exactly the kernel's RCV.NXT, which RFC 5961 requires for a reset
        conn.abort()
        stack.flush()
        r = peer.result()
        assert r["error"] == "ECONNRESET" and r["received"] == 5, r
        stack.port.close()
    finally:
        peer.kill()


def test_kernel_reset_is_reported(veth):
    """The kernel closes with unread data, which makes it send RST (RFC 2525 §2.17)."""
    stack = make_stack(veth)
    lst = stack.listen(9003)
    # the kernel client sends nothing and closes at once after our data arrives unread? Use
    # the server mode in reverse: connect from the kernel, then we send, kernel exits with unread data.
    peer = subprocess.Popen(["ip", "netns", "exec", veth.ns_b, sys.executable, "-c",
                             "import socket,time; s=socket.create_connection(('%s',9003)); time.sleep(0.5); s.close()"
                             % veth.A_IP])
    try:
        conn = lst.accept(timeout=10)
        conn.send(b"unread" * 100)
        assert stack.run_until(lambda: conn.state_name == "CLOSED", 10), conn.state_name
        assert conn.reason == "connection reset by peer"
        stack.port.close()
    finally:
        peer.wait(10)


@pytest.mark.parametrize("role", ["client", "server"])
def test_over_xdp_port_both_roles(veth, role):
    """The same TCP over an AF_XDP port (the stack is port-agnostic)."""
    n = 1_000_000
    if role == "client":
        peer = Peer(veth, "serve", 9010, n, 21)
        peer.wait_listening()
        stack = make_stack(veth, kind="xdp")
        conn = stack.connect(veth.B_IP, 9010)
    else:
        stack = make_stack(veth, kind="xdp")
        lst = stack.listen(9011)
        peer = Peer(veth, "connect", veth.A_IP, 9011, n, 21)
        conn = lst.accept(timeout=10)
        assert conn is not None, stack.counters()
    try:
        data = os.urandom(n)
        got = exchange(stack, conn, data, n, timeout=120)
        r = peer.result()
        assert r["error"] == "" and r["eof"], r
        assert r["received"] == n and r["sha256"] == hashlib.sha256(data).hexdigest()
        assert got == random.Random(21).randbytes(n)
        assert stack.counters()["fast_rx"] > 100
        stack.port.close()
    finally:
        peer.kill()

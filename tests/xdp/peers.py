"""Kernel-side peers run inside the test's namespace B (plain UDP sockets)."""

from __future__ import annotations

import contextlib
import subprocess
import sys

# Sends COUNT datagrams "seq:u32 | padding" to DST:PORT, paced to about RATE per
# second in bursts of 32 (a moderate rate: the point is "none lost", not speed).
SENDER = r"""
import socket, struct, sys, time
dst, port, count, rate, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
ttl_if = sys.argv[6] if len(sys.argv) > 6 else ""
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
if ttl_if:
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(ttl_if))
pad = b"\xa5" * max(0, size - 4)
t0 = time.perf_counter()
for i in range(count):
    while True:
        try:
            s.sendto(struct.pack("<I", i) + pad, (dst, port))
            break
        except BlockingIOError:
            time.sleep(0.0001)
        except OSError as e:
            if e.errno != 105:  # ENOBUFS: retry
                raise
            time.sleep(0.0001)
    if i % 32 == 31:
        ahead = (i + 1) / rate - (time.perf_counter() - t0)
        if ahead > 0:
            time.sleep(ahead)
print("sent", count, flush=True)
"""


def start_sender(veth, dst: str, port: int, count: int, rate: float, size: int = 64, mcast_if: str = ""):
    cmd = ["ip", "netns", "exec", veth.ns_b, sys.executable, "-c", SENDER, dst, str(port), str(count),
           str(rate), str(size)] + ([mcast_if] if mcast_if else [])
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def udp_in_csum_errors(veth) -> int:
    """UdpInCsumErrors of namespace B (/proc/net/snmp is per network namespace)."""
    text = veth.b("cat", "/proc/net/snmp")
    lines = [ln.split() for ln in text.splitlines() if ln.startswith("Udp:")]
    return int(lines[1][lines[0].index("InCsumErrors")])


# Another process holding an xdp: port (its program, XSKMAP and socket) until killed.
HOLDER = r"""
import sys, time
from tickwire.drivers.port import open_port
from tickwire.drivers import xdp
port = open_port(sys.argv[1], xdp.make_pool(4096))
print("ready", port.info["mode"], flush=True)
time.sleep(600)
"""


@contextlib.contextmanager
def xdp_holder(veth, spec: str):
    """Run HOLDER with ``spec`` in namespace A; yields once the port is open. The process
    is killed (by its pid) and reaped when the block ends, whatever happened."""
    p = subprocess.Popen(veth.cmd(veth.ns_a, [sys.executable, "-c", HOLDER, spec]),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = p.stdout.readline()
        assert line.startswith("ready"), p.stderr.read()
        yield p
    finally:
        if p.poll() is None:
            p.kill()
        p.communicate()

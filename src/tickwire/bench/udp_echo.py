"""udp-echo: UDP round trip through tickwire's stack on packet: vs a kernel UDP socket echo, across one veth.

Two network namespaces joined by a veth pair are created for the run and deleted
after it. The client side is the kernel (namespace B). The server side (namespace A)
is, in turn: (1) ``tickwire stack --udp-echo`` on ``packet:dev=A`` (busy-polling a
TPACKET_V2 ring; the interface has no kernel IP address), and (2) a kernel UDP
socket echo (blocking recvfrom/sendto in Python, and in C) on the same interface
with an IP address. Clients: a Python socket client and a C client (compiled with gcc
from the source string below). Reported: median and p99 round-trip in µs of
``--count`` pings per (server, client) pair, medians over ``--repeat`` runs.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from ..cli._common import at_least, cpu_index
from ._veth import VethPair as _VethPair

C_CLIENT = r"""
/* UDP ping-pong client: sends COUNT datagrams of SIZE bytes to HOST:PORT, one at a
 * time, and prints one round-trip time in nanoseconds per line (CLOCK_MONOTONIC). */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void) {
    struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc < 5) { fprintf(stderr, "usage: %s HOST PORT COUNT SIZE [WARMUP]\n", argv[0]); return 2; }
    int count = atoi(argv[3]), size = atoi(argv[4]), warm = argc > 5 ? atoi(argv[5]) : 100;
    if (size < 8 || size > 1400 || count < 1) { fprintf(stderr, "bad count/size\n"); return 2; }
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {0}; a.sin_family = AF_INET; a.sin_port = htons(atoi(argv[2]));
    if (inet_pton(AF_INET, argv[1], &a.sin_addr) != 1) { fprintf(stderr, "bad host\n"); return 2; }
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) { perror("connect"); return 1; }
    struct timeval tv = {1, 0}; setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char out[1500], in[1500]; memset(out, 'x', sizeof out);
    int lost = 0;
    for (int i = -warm; i < count; i++) {
        memcpy(out, &i, sizeof i);
        long long t0 = now_ns();
        if (send(fd, out, size, 0) != size) { perror("send"); return 1; }
        for (;;) {
            ssize_t n = recv(fd, in, sizeof in, 0);
            if (n < 0) { lost++; break; }
            if (n == size && memcmp(in, &i, sizeof i) == 0) {
                if (i >= 0) printf("%lld\n", now_ns() - t0);
                break;
            }
        }
    }
    fprintf(stderr, "lost %d\n", lost);
    return 0;
}
"""

PY_CLIENT = r"""
import socket, struct, sys, time
host, port, count, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.connect((host, port)); s.settimeout(1.0)
pad = b"x" * (size - 4); out = []
for i in range(-100, count):
    m = struct.pack("<i", i) + pad
    t0 = time.perf_counter_ns(); s.send(m)
    try:
        while s.recv(2048) != m:
            pass
    except socket.timeout:
        continue
    if i >= 0:
        out.append(time.perf_counter_ns() - t0)
print("\n".join(map(str, out)))
"""

C_SERVER = r"""
#include <arpa/inet.h>
#include <stdlib.h>
#include <sys/socket.h>
int main(int argc, char **argv) {
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {0}; a.sin_family = AF_INET; a.sin_port = htons(atoi(argv[1]));
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0) return 1;
    char b[2048]; struct sockaddr_in p; socklen_t l;
    for (;;) { l = sizeof p; ssize_t n = recvfrom(fd, b, sizeof b, 0, (struct sockaddr *)&p, &l);
               if (n >= 0) sendto(fd, b, n, 0, (struct sockaddr *)&p, l); }
}
"""

PY_SERVER = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", int(sys.argv[1])))
while True:
    d, a = s.recvfrom(2048); s.sendto(d, a)
"""


class VethPair(_VethPair):
    """The shared pair (bench/_veth.py) addressed for this benchmark: ``a`` is the tickwire
    side (``ip_a`` = .2; no kernel address unless ``kernel_ip_a``: the stack answers ARP),
    ``b`` the kernel peer with ``ip_b`` = .1 and a multicast route."""

    def __init__(self, subnet: str = "10.77.0", kernel_ip_a: bool = False):
        self.ip_a, self.ip_b = f"{subnet}.2", f"{subnet}.1"
        # B keeps its TX checksum offload: packet: must complete the partial checksums veth hands it
        super().__init__(static_neigh=False, ips=(self.ip_a, self.ip_b), peer_csum_offload=True)
        try:
            self.b("ip", "route", "add", "224.0.0.0/4", "dev", self.dev_b)
            if kernel_ip_a:
                self.set_kernel_ip_a(True)
        except BaseException:
            self.close()
            raise

    def set_kernel_ip_a(self, on: bool) -> None:
        self.a("ip", "addr", "add" if on else "del", f"{self.ip_a}/24", "dev", self.dev_a, check=on)


def start_stack(pair: VethPair, extra: list[str], timeout: float = 180.0) -> subprocess.Popen:
    """``tickwire stack`` on packet:dev=A in namespace A; returns once it printed 'ready'."""
    argv = [sys.executable, "-c", "import sys; from tickwire.cli import main; sys.exit(main())", "stack", "--port",
            f"packet:dev={pair.dev_a},filter={pair.ip_a}", "--ip", f"{pair.ip_a}/24", *extra]
    p = pair.popen(pair.ns_a, argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + timeout
    lines = []
    while time.monotonic() < deadline:
        line = p.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "ready" in line:
            p.startup_output = "".join(lines)
            return p
    p.kill()
    raise RuntimeError("tickwire stack did not start:\n" + "".join(lines) + (p.stdout.read() or ""))


def stop(p: subprocess.Popen, timeout: float = 20.0) -> str:
    """SIGTERM a process we started (by its pid) and return its remaining output."""
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate()
    return out or ""


def build_c(source: str, name: str, workdir: str) -> str:
    src = os.path.join(workdir, name + ".c")
    exe = os.path.join(workdir, name)
    with open(src, "w") as f:
        f.write(source)
    subprocess.run(["gcc", "-O2", "-o", exe, src], check=True, capture_output=True)
    return exe


def _pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


def add_arguments(p):
    p.add_argument("--count", type=at_least(1), default=2000, help="round trips per measurement")
    p.add_argument("--size", type=at_least(1), default=64, help="UDP payload bytes")
    p.add_argument("--repeat", type=at_least(1), default=3, help="measurements per (server, client); medians reported")
    p.add_argument("--cpu", type=cpu_index, help="pin servers to this CPU and clients to the other (default: no pinning)")


def run(args) -> int:
    if os.geteuid() != 0 or not shutil.which("gcc"):
        print("udp-echo needs root (network namespaces) and gcc", file=sys.stderr)
        return 2
    port = 7007
    results = {}
    with tempfile.TemporaryDirectory(prefix="tw-udp-echo-") as work, VethPair("10.78.0") as pair:
        c_client = build_c(C_CLIENT, "udp_ping", work)
        c_server = build_c(C_SERVER, "udp_echo_server", work)
        pin_s = ["taskset", "-c", str(args.cpu)] if args.cpu is not None else []
        pin_c = ["taskset", "-c", str(1 - args.cpu)] if args.cpu is not None else []
        servers = ("tickwire", "kernel-c", "kernel-py")
        for rep in range(args.repeat):
            for server in servers:
                if server == "tickwire":
                    pair.set_kernel_ip_a(False)
                    # the kernel peer must learn A's MAC through tickwire's ARP responder
                    proc = start_stack(pair, ["--udp-echo", str(port)])
                else:
                    pair.set_kernel_ip_a(True)
                    argv = [c_server, str(port)] if server == "kernel-c" else [sys.executable, "-c", PY_SERVER,
                                                                                 str(port)]
                    proc = pair.popen(pair.ns_a, pin_s + argv)
                    time.sleep(0.5)
                try:
                    for client in ("c", "py"):
                        exe = pin_c + [c_client] if client == "c" else None
                        rtts = _client_pinned(pair, client, exe, args.count, args.size, port, pin_c)
                        key = f"{server}/{client}-client"
                        results.setdefault(key, []).append(
                            (_pct(rtts, 0.5), _pct(rtts, 0.99), args.count - len(rtts)))
                finally:
                    stop(proc)
                    if server != "tickwire":
                        pair.set_kernel_ip_a(False)
    summary = {k: {"median_us": sorted(r[0] for r in v)[len(v) // 2], "p99_us": sorted(r[1] for r in v)[len(v) // 2],
                   "lost": sum(r[2] for r in v), "runs": len(v)} for k, v in results.items()}
    base = {c: summary.get(f"kernel-c/{c}-client") for c in ("c", "py")}
    for k, v in summary.items():
        ref = base[k.split("/")[1].split("-")[0]]
        v["median_vs_kernel_c_server"] = round(v["median_us"] / ref["median_us"], 3) if ref else None
    if args.json:
        print(json.dumps({"bench": "udp-echo", "count": args.count, "size": args.size, "repeat": args.repeat,
                          "results": summary, "note": "2-vCPU shared VM: noisy"}))
    else:
        print(f"UDP echo RTT over veth, {args.size}-byte payload, {args.count} round trips x {args.repeat} runs "
              f"(medians of runs; shared 2-vCPU VM, noisy)")
        print(f"{'server/client':28s} {'median µs':>10s} {'p99 µs':>10s} {'vs kernel C server':>20s} {'lost':>6s}")
        for k, v in summary.items():
            print(f"{k:28s} {v['median_us']:10.1f} {v['p99_us']:10.1f} {v['median_vs_kernel_c_server']:20.2f} "
                  f"{v['lost']:6d}")
    return 0


def _client_pinned(pair, kind, exe, count, size, port, pin):
    if kind == "c":
        argv = exe + [pair.ip_a, str(port), str(count), str(size)]
    else:
        argv = pin + [sys.executable, "-c", PY_CLIENT, pair.ip_a, str(port), str(count), str(size)]
    r = pair.run(pair.ns_b, argv, timeout=300)
    return [int(x) / 1000 for x in r.stdout.split()]

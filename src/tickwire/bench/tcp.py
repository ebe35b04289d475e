"""TCP round trip of a 64-byte message: tickwire (packet:, memif) vs the kernel (C, Python).

Over one veth pair between two network namespaces this benchmark creates:

* tickwire over ``packet:`` (namespace A) against a kernel echo server written in C (namespace B);
* the kernel's TCP on both ends: a C client and a Python client in A against the same C server
  (the C client both blocking in recv() and busy-polling with MSG_DONTWAIT, since tickwire spins);
* tickwire over memif against tickwire's own echo server (two processes, shared memory);
* the cost of the Numba send fast path (template copy, incremental checksum, SND.NXT update)
  in ns per segment, next to the kernel's send() of the same 64 bytes on a connected socket.

Each configuration runs ``--repeat`` times, interleaved; medians of the per-run medians are
reported. The C peers are compiled with gcc from the source kept below. Needs root (netns).
"""

from __future__ import annotations

import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
from numba import njit

from ..cli._common import at_least
from ..mem.atomics import rdtscp
from ..mem.mempool import pool_free
from ..stack.tcp.fastpath import fast_send
from ..stack.tcp.tcb import SND_NXT, SND_UNA, TX_END, TX_UNA

C_SOURCE = r"""
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ns(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1000000000LL + t.tv_nsec; }
static int cmp(const void *a, const void *b) { int64_t x = *(const int64_t *)a, y = *(const int64_t *)b; return x < y ? -1 : x > y; }
static void nodelay(int s) { int one = 1; setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); }

static int listen_on(int port) {
    int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    if (bind(s, (void *)&a, sizeof a) || listen(s, 8)) { perror("listen"); exit(1); }
    printf("listening\n"); fflush(stdout);
    return s;
}

static int dial(const char *host, int port) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, host, &a.sin_addr);
    if (connect(s, (void *)&a, sizeof a)) { perror("connect"); exit(1); }
    nodelay(s);
    return s;
}

static int recv_all(int s, char *buf, int n, int flags) {
    int got = 0;
    while (got < n) {
        int r = recv(s, buf + got, n - got, flags);
        if (r > 0) got += r;
        else if (r == 0) return -1;
        else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return -1;
    }
    return got;
}

int main(int argc, char **argv) {
    if (argc < 3) return 2;
    char buf[65536];
    if (!strcmp(argv[1], "server") || !strcmp(argv[1], "sink")) {     /* server PORT | sink PORT */
        int echo = !strcmp(argv[1], "server"), ls = listen_on(atoi(argv[2]));
        for (;;) {
            int c = accept(ls, 0, 0);
            if (c < 0) continue;
            nodelay(c);
            for (;;) {
                int r = recv(c, buf, sizeof buf, 0);
                if (r <= 0) break;
                if (echo && send(c, buf, r, 0) != r) break;
            }
            close(c);
        }
    }
    if (!strcmp(argv[1], "client") && argc >= 8) {  /* client HOST PORT N SIZE WARMUP BUSY */
        int n = atoi(argv[4]), size = atoi(argv[5]), warm = atoi(argv[6]), busy = atoi(argv[7]);
        int s = dial(argv[2], atoi(argv[3]));
        int64_t *rtt = malloc(sizeof(int64_t) * n);
        memset(buf, 7, size);
        for (int i = -warm; i < n; i++) {
            int64_t t0 = now_ns();
            if (send(s, buf, size, 0) != size) return 1;
            if (recv_all(s, buf, size, busy ? MSG_DONTWAIT : 0) < 0) return 1;
            if (i >= 0) rtt[i] = now_ns() - t0;
        }
        qsort(rtt, n, sizeof *rtt, cmp);
        printf("{\"rtt_median_ns\": %lld, \"rtt_p99_ns\": %lld, \"rtt_min_ns\": %lld}\n",
               (long long)rtt[n / 2], (long long)rtt[(int)(n * 0.99)], (long long)rtt[0]);
        close(s);
        return 0;
    }
    if (!strcmp(argv[1], "sendcost") && argc >= 6) {  /* sendcost HOST PORT N SIZE */
        int n = atoi(argv[4]), size = atoi(argv[5]);
        int s = dial(argv[2], atoi(argv[3]));
        memset(buf, 7, size);
        int64_t t0 = now_ns();
        for (int i = 0; i < n; i++) if (send(s, buf, size, 0) != size) return 1;
        int64_t t1 = now_ns();
        printf("{\"send_ns_per_call\": %.1f}\n", (double)(t1 - t0) / n);
        close(s);
        return 0;
    }
    return 2;
}
"""

PY_CLIENT = r"""
import json, socket, statistics, sys, time
host, port, n, size, warm = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
s = socket.create_connection((host, port)); s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
msg = b"\x07" * size; rtt = []
for i in range(warm + n):
    t0 = time.perf_counter_ns(); s.sendall(msg); got = 0
    while got < size:
        got += len(s.recv(size - got))
    if i >= warm: rtt.append(time.perf_counter_ns() - t0)
rtt.sort()
print(json.dumps({"rtt_median_ns": rtt[n // 2], "rtt_p99_ns": rtt[int(n * 0.99)], "rtt_min_ns": rtt[0]}))
"""


def add_arguments(p):
    p.add_argument("--n", type=at_least(1), default=20000, help="timed round trips per run (default 20000)")
    p.add_argument("--warmup", type=at_least(0), default=2000, help="untimed round trips first (default 2000)")
    p.add_argument("--size", type=at_least(1), default=64, help="message bytes (default 64)")
    p.add_argument("--repeat", type=at_least(1), default=3, help="interleaved runs per configuration (default 3)")
    p.add_argument("--fast-n", type=at_least(1), default=1_000_000, help="segments for the fast-path cost (default 1e6)")
    p.add_argument("--skip-memif", action="store_true")
    p.add_argument("--skip-veth", action="store_true")


# ------------------------------------------------------------------ namespaces
def _sh(*cmd, check=True, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if check and r.returncode != 0:
        raise OSError(f"{' '.join(map(str, cmd))}: {r.stderr.strip()}")
    return r.stdout


class _Veth:
    """ns A: tickwire's end (no kernel address for tickwire's IP .1; the kernel clients use .3);
    ns B: the kernel echo server (.2). Names carry a random suffix; close() deletes them."""
    TW_IP, SRV_IP, KCLI_IP = "10.78.0.1", "10.78.0.2", "10.78.0.3"

    def __init__(self):
        h = secrets.token_hex(3)
        self.ns_a, self.ns_b, self.dev_a, self.dev_b = f"twa{h}", f"twb{h}", f"twx{h}", f"twy{h}"
        try:
            _sh("ip", "netns", "add", self.ns_a)
            _sh("ip", "netns", "add", self.ns_b)
            _sh("ip", "link", "add", self.dev_a, "netns", self.ns_a, "type", "veth", "peer", "name", self.dev_b,
                "netns", self.ns_b)
            for ns, dev, ip in ((self.ns_a, self.dev_a, self.KCLI_IP), (self.ns_b, self.dev_b, self.SRV_IP)):
                _sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
                _sh("ip", "-n", ns, "link", "set", "lo", "up")
                _sh("ip", "-n", ns, "link", "set", dev, "up")
                _sh("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", dev)
                _sh("ip", "netns", "exec", ns, "ethtool", "-K", dev, "tx", "off", "gro", "off", "tso", "off",
                    "gso", "off", check=False)
        except BaseException:
            self.close()
            raise

    def run(self, ns, *cmd, **kw):
        return subprocess.Popen(["ip", "netns", "exec", ns, *map(str, cmd)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, **kw)

    def close(self):
        for ns in (self.ns_a, self.ns_b):
            _sh("ip", "netns", "del", ns, check=False)


def _last_json(proc, timeout):
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    lines = [l for l in out.splitlines() if l.startswith("{")]
    if not lines:
        raise OSError(f"benchmark peer failed: {err.strip()[-500:]}")
    return json.loads(lines[-1])


def _tw(*args):
    return [sys.executable, "-m", "tickwire.cli", *map(str, args)]


# ------------------------------------------------------------------ fast-path cost
def fast_path_cost(n: int, size: int) -> dict:
    from ..mem.mempool import Mempool
    from ..stack.tcp.loopback_pair import pipe_pair
    from ..stack.tcp.loops import tsc_clock
    from ..stack.tcp.stack import TcpStack
    pool = Mempool(n_bufs=1024)
    pa, pb = pipe_pair(pool)
    a, b = TcpStack(pa, "10.9.0.1"), TcpStack(pb, "10.9.0.2")
    lst = b.listen(7000)
    c = a.open(0x0A090002, 7000, pb.mac)
    deadline = time.monotonic() + 10
    while c.state_name != "ESTABLISHED" and time.monotonic() < deadline:
        a.poll()
        b.poll()
    msg = np.frombuffer(os.urandom(size), np.uint8).copy()
    clock = tsc_clock(a.now())
    runs = []
    for _ in range(5):
        ticks = _fast_send_cost_impl(a.hot, c.slot, a.txq, a.cfg.rcv_buf, a.tmpl, pool.arrays, msg, size,
                                     a.opts, n, a.now())
        if ticks < 0:
            raise RuntimeError("fast path refused to send (window?)")
        runs.append(ticks * clock[2] / (1 << 32) * 1000 / n)
    return {"fast_send_ns_per_segment": round(statistics.median(runs), 1),
            "fast_send_runs_ns": [round(r, 1) for r in runs]}


@njit(cache=True)
def _fast_send_cost_impl(hot, slot, txq, rxcap, tmpl, pool, msg, size, opts, n, now_us):
    t0 = rdtscp()
    for i in range(n):
        idx = fast_send(hot, slot, txq, rxcap, tmpl, pool, msg, 0, size, opts, now_us)
        if idx < 0:
            return -1
        pool_free(pool, idx)
        hot[slot, SND_UNA] = hot[slot, SND_NXT]       # acknowledged at once: the window never closes
        hot[slot, TX_UNA] = hot[slot, TX_END]
    return rdtscp() - t0


# ------------------------------------------------------------------ main
def run(args) -> int:
    res: dict = {"size": args.size, "n": args.n, "repeat": args.repeat, "cpus": os.cpu_count(),
                 "loadavg_start": round(os.getloadavg()[0], 2),
                 "note": "2-vCPU shared VM, other jobs running; unpinned; medians of per-run medians"}
    res.update(fast_path_cost(args.fast_n, args.size))
    runs: dict[str, list[dict]] = {}
    tmp = tempfile.mkdtemp(prefix="tw-bench-tcp-")
    try:
        if not args.skip_veth:
            if os.geteuid() != 0:
                raise OSError("bench tcp needs root for network namespaces (or --skip-veth)")
            exe = os.path.join(tmp, "tcp_peer")
            with open(exe + ".c", "w") as f:
                f.write(C_SOURCE)
            _sh("gcc", "-O2", "-o", exe, exe + ".c")
            pyc = os.path.join(tmp, "py_client.py")
            with open(pyc, "w") as f:
                f.write(PY_CLIENT)
            v = _Veth()
            try:
                server = v.run(v.ns_b, exe, "server", 9400)
                server.stdout.readline()
                sink = v.run(v.ns_b, exe, "sink", 9401)
                sink.stdout.readline()
                spec = f"packet:dev={v.dev_a},filter={v.TW_IP}"
                for r in range(args.repeat):
                    runs.setdefault("tickwire_packet", []).append(_last_json(v.run(
                        v.ns_a, *_tw("tcp-send", "--port", spec, "--ip", v.TW_IP, "--connect", f"{v.SRV_IP}:9400",
                                     "--rtt", args.n, "--size", args.size, "--warmup", args.warmup, "--json")), 300))
                    for busy, name in ((0, "kernel_c_block"), (1, "kernel_c_busy")):
                        runs.setdefault(name, []).append(_last_json(v.run(
                            v.ns_a, exe, "client", v.SRV_IP, 9400, args.n, args.size, args.warmup, busy), 300))
                    runs.setdefault("kernel_python", []).append(_last_json(v.run(
                        v.ns_a, sys.executable, pyc, v.SRV_IP, 9400, args.n, args.size, args.warmup), 300))
                    runs.setdefault("kernel_c_send_cost", []).append(_last_json(v.run(
                        v.ns_a, exe, "sendcost", v.SRV_IP, 9401, 200_000, args.size), 300))
                for proc in (server, sink):
                    proc.kill()
                    proc.wait()
            finally:
                v.close()
        if not args.skip_memif:
            for r in range(args.repeat):
                sock = os.path.join(tmp, f"memif{r}.sock")
                echo = subprocess.Popen(_tw("tcp-echo", "--port", f"memif:socket={sock},role=server", "--ip",
                                            "10.79.0.1", "--listen", 9500, "--count", 1, "--json"),
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                try:
                    echo.stderr.readline()
                    cli = subprocess.Popen(_tw("tcp-send", "--port", f"memif:socket={sock},role=client", "--ip",
                                               "10.79.0.2", "--connect", "10.79.0.1:9500", "--rtt", args.n,
                                               "--size", args.size, "--warmup", args.warmup, "--json"),
                                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                    runs.setdefault("tickwire_memif", []).append(_last_json(cli, 300))
                finally:
                    echo.kill()
                    echo.wait()
    finally:
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)
    for name, rs in runs.items():
        if name == "kernel_c_send_cost":
            res["kernel_send_ns_per_call"] = round(statistics.median(r["send_ns_per_call"] for r in rs), 1)
            continue
        res[name] = {"rtt_median_ns": int(statistics.median(r["rtt_median_ns"] for r in rs)),
                     "rtt_p99_ns": int(statistics.median(r["rtt_p99_ns"] for r in rs)),
                     "runs_median_ns": [int(r["rtt_median_ns"]) for r in rs]}
    base = res.get("kernel_c_busy", {}).get("rtt_median_ns")
    if base:
        for name in ("tickwire_packet", "tickwire_memif", "kernel_c_block", "kernel_python"):
            if name in res:
                res[name]["ratio_to_kernel_c_busy"] = round(res[name]["rtt_median_ns"] / base, 2)
    if "kernel_send_ns_per_call" in res:
        res["fast_send_speedup_vs_kernel_send"] = round(res["kernel_send_ns_per_call"] / res["fast_send_ns_per_segment"], 1)
    res["loadavg_end"] = round(os.getloadavg()[0], 2)
    if args.json:
        print(json.dumps(res))
    else:
        print(f"TCP {args.size}-byte round trip, {args.n} per run, {args.repeat} runs (noisy shared 2-vCPU VM)")
        print(f"{'configuration':<20} {'median':>10} {'p99':>10}  ratio to kernel C busy")
        for name in ("tickwire_memif", "tickwire_packet", "kernel_c_busy", "kernel_c_block", "kernel_python"):
            if name in res:
                d = res[name]
                print(f"{name:<20} {d['rtt_median_ns'] / 1000:>8.1f}us {d['rtt_p99_ns'] / 1000:>8.1f}us  "
                      f"{d.get('ratio_to_kernel_c_busy', '')}")
        print(f"Numba send fast path: {res['fast_send_ns_per_segment']} ns/segment"
              + (f"; kernel send() of the same bytes: {res['kernel_send_ns_per_call']} ns/call"
                 if "kernel_send_ns_per_call" in res else ""))
    return 0


"""AF_XDP vs packet: vs kernel UDP sockets over a veth pair: receive Mpps and UDP echo RTT.

Everything runs in one invocation on two network namespaces this benchmark creates
(and deletes): namespace A holds the contender (server/receiver), namespace B the
traffic source, a C program built from ``_cpeers.C_SOURCE``. Contenders:

  xdp      tickwire ``xdp:`` port, njit loop (frames; echo swaps MAC/IP/UDP ports in place)
  xdp-c    echo RTT only: the same AF_XDP socket, rings and program, set up by tickwire and
           handed by fd to a C loop doing the same swap (the C AF_XDP reference of the issue)
  packet   tickwire ``packet:`` port (AF_PACKET TPACKET_V2), same njit loop, if the driver exists
  udp      tickwire ``udp:`` port (kernel socket, njit loop calling recvfrom/sendto)
  kernel-c      C, non-blocking busy-polling kernel UDP socket (recvmmsg for receive)
  kernel-python Python, non-blocking busy-polling kernel UDP socket

Echo RTT: the C client in B sends one 64-byte datagram, busy-waits for the reply,
repeats; median and p99 over ``--count`` round trips. Receive: the C sender floods
with sendmmsg() for ``--seconds``; the rate is received / sending time. On the 2-vCPU
development VMs the *sender* is the bottleneck (notes/af_xdp.md §7: 130-400 kpps),
so the receive numbers mostly say "kept up, lost nothing" rather than a ceiling.
Each measurement is repeated ``--reps`` times (contenders interleaved) and the
median is reported. Numbers from a shared VM are noisy: compare ratios in one run.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

import numpy as np
from numba.extending import register_jitable

from ..cli._common import at_least, positive_float
from ..drivers.port import open_port, rx_burst, tx_burst
from ..mem.hotpath import hot
from ..mem.mempool import BUF_SIZE, pool_free_burst
from ._cpeers import build
from ._veth import VethPair, inside

PORTS = {"xdp": 14310, "xdp-c": 14310, "packet": 14313, "udp": 14312, "kernel-c": 14311, "kernel-python": 14314}


@register_jitable
def _swap_udp_frames(pool, bufs, n, udp_port):
    """Turn IPv4/UDP frames for ``udp_port`` into their replies in place; free the rest.
    The kept buffers are compacted to the front of ``bufs``; returns how many."""
    bsize = pool.meta[BUF_SIZE]
    ph = (udp_port >> 8) & 0xff
    pl = udp_port & 0xff
    d = pool.data
    keep = 0
    for i in range(n):
        b = bufs[i]
        a = b * bsize + pool.data_off[b]
        if (pool.data_len[b] < 42 or d[a + 12] != 8 or d[a + 13] != 0 or d[a + 14] != 0x45
                or d[a + 23] != 17 or d[a + 36] != ph or d[a + 37] != pl):
            pool_free_burst(pool, bufs[i:i + 1], 1)
            continue
        for j in range(6):
            t = d[a + j]
            d[a + j] = d[a + 6 + j]
            d[a + 6 + j] = t
        for j in range(4):
            t = d[a + 26 + j]
            d[a + 26 + j] = d[a + 30 + j]
            d[a + 30 + j] = t
        for j in range(2):
            t = d[a + 34 + j]
            d[a + 34 + j] = d[a + 36 + j]
            d[a + 36 + j] = t
        bufs[keep] = b
        keep += 1
    return keep


@hot
def echo_loop(state, pool, bufs, udp_port, count, max_idle):
    """Echo ``count`` packets back to their senders, then return (or after ``max_idle``
    empty polls in a row). Returns (echoed, other).

    ``udp_port >= 0`` (frame ports: xdp:, packet:): echo IPv4/UDP frames for that port
    by swapping the Ethernet addresses, IPv4 addresses and UDP ports in place. Both
    checksums stay valid: the one's-complement sums are order-independent (RFC 1071).
    Anything else (ARP, other ports, short frames) is freed and counted in ``other``.
    ``udp_port < 0`` (payload ports: udp:): send each payload back as it is; the port
    replies to the latest sender."""
    done = 0
    other = 0
    idle = 0
    while done < count and idle < max_idle:
        n = rx_burst(state, pool, bufs, bufs.shape[0])
        if n == 0:
            idle += 1
            continue
        idle = 0
        keep = n
        if udp_port >= 0:
            keep = _swap_udp_frames(pool, bufs, n, udp_port)
            other += n - keep
        sent = 0
        while sent < keep:
            sent += tx_burst(state, pool, bufs[sent:], keep - sent)
        done += keep
    return done, other


@hot
def count_loop(state, pool, bufs, max_idle, max_wait):
    """Receive and free until ``max_idle`` empty polls after the first packet."""
    got = 0
    idle = 0
    waited = 0
    while True:
        n = rx_burst(state, pool, bufs, bufs.shape[0])
        if n == 0:
            if got == 0:
                waited += 1
                if waited > max_wait:
                    break
            else:
                idle += 1
                if idle > max_idle:
                    break
            continue
        idle = 0
        got += n
        pool_free_burst(pool, bufs, n)
    return got


PY_ECHO = r"""
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2]))); s.setblocking(False)
count, idle = int(sys.argv[3]), float(sys.argv[4])
print("ready", flush=True)
n, last = 0, time.monotonic()
while n < count:
    try:
        data, peer = s.recvfrom(2048)
    except BlockingIOError:
        if time.monotonic() - last > idle:
            break
        continue
    s.sendto(data, peer); n += 1; last = time.monotonic()
"""

PY_SINK = r"""
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)
s.bind((sys.argv[1], int(sys.argv[2]))); s.setblocking(False)
idle = float(sys.argv[3])
print("ready", flush=True)
n, first, last = 0, 0.0, time.monotonic()
while True:
    try:
        s.recv(2048)
    except BlockingIOError:
        if time.monotonic() - last > (idle if n else 30.0):   # the flood's end, or it never started
            break
        continue
    last = time.monotonic(); n += 1
    if n == 1: first = last
print("recv", n, last - first, flush=True)
"""


def add_arguments(p):
    p.add_argument("--count", type=at_least(1), default=20000, help="echo round trips per run (default 20000)")
    p.add_argument("--warmup", type=at_least(0), default=2000, help="untimed round trips first")
    p.add_argument("--seconds", type=positive_float, default=2.0, help="flood duration for the receive test")
    p.add_argument("--reps", type=at_least(1), default=3, help="repetitions; medians are reported")
    p.add_argument("--mode", choices=("native", "generic"), default="native", help="XDP attach mode")
    p.add_argument("--no-pin", action="store_true", help="do not pin server to CPU 0 and client to CPU 1")
    p.add_argument("--only", default="", help="comma list of contenders (default: all available)")
    p.add_argument("--skip-rx", action="store_true", help="only the echo RTT")


class _Bench:
    def __init__(self, args):
        self.args = args
        self.exe = build()
        self.pin = not args.no_pin and len(os.sched_getaffinity(0)) >= 2
        self.v = VethPair()
        v = self.v
        try:
            v.a("ip", "addr", "add", f"{v.A_IP}/24", "dev", v.dev_a)
            v.a("ethtool", "-K", v.dev_a, "tx", "off")      # kernel echo replies carry real checksums
            v.a("ip", "neigh", "add", v.B_IP, "lladdr", v.mac_b, "dev", v.dev_a, "nud", "permanent")
            self.tmp = tempfile.mkdtemp(prefix="tw-bench-xdp-")
        except BaseException:
            v.close()
            raise

    def close(self):
        self.v.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- helpers -------------------------------------------------------------
    @staticmethod
    @contextlib.contextmanager
    def _proc(argv, **kw):
        """A child process that is always gone (killed by its pid if still running, and
        reaped) when the block ends, on every path: a C peer still alive would keep its
        AF_XDP socket -- and so the veth queue -- busy for the next contender."""
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
        try:
            yield p
        finally:
            if p.poll() is None:
                p.kill()
            p.communicate()

    @staticmethod
    def _finish(p) -> str:
        """The client is done: an echo server that has not reached its count (the client
        lost round trips) would wait for its idle timeout; end it now, by its pid."""
        try:
            out = p.communicate(timeout=2)
        except subprocess.TimeoutExpired:
            p.kill()
            out = p.communicate()
        return " ".join(x.strip() for x in out if x)

    @staticmethod
    def _ready(p):
        line = p.stdout.readline()
        if not line.startswith("ready"):
            p.kill()
            raise RuntimeError(f"peer {p.args[0]} did not start: {line.strip()} {p.communicate()[1].strip()}")

    def _client(self, *cmd):
        pre = ["taskset", "-c", "1"] if self.pin else []
        return ["ip", "netns", "exec", self.v.ns_b] + pre + [self.exe, *cmd]

    def _server_cmd(self, *cmd):
        pre = ["taskset", "-c", "0"] if self.pin else []
        return ["ip", "netns", "exec", self.v.ns_a] + pre + list(cmd)

    def _pinned(self):
        old = os.sched_getaffinity(0)
        if self.pin:
            os.sched_setaffinity(0, {0})
        return old

    def _open(self, name):
        v = self.v
        if name == "xdp":
            from ..drivers import xdp
            # 8192-deep FILL/RX rings (16 MiB of frames): about the buffering of the kernel
            # contenders' 8 MiB socket receive buffers, so a descheduled receiver loses alike.
            pool = xdp.make_pool(16384)
            spec = f"xdp:dev={v.dev_a},mode={self.args.mode},ports={PORTS['xdp']},fill=8192,rx=8192"
        elif name == "packet":
            pool = None
            spec = f"packet:dev={v.dev_a},filter={v.A_IP}"
        else:
            pool = None
            spec = f"udp:bind={v.A_IP}:{PORTS['udp']},rcvbuf={8 << 20}"
        with inside(v.ns_a):
            return open_port(spec, pool)

    # -- echo ------------------------------------------------------------------
    def rtt(self, name) -> tuple[float, float, int]:
        a, v = self.args, self.v
        srv_out = ""
        total = a.count + a.warmup
        out = os.path.join(self.tmp, f"rtt-{name}.bin")
        port = PORTS[name]
        client = self._client("rtt", v.A_IP, str(port), str(a.count), str(a.warmup), "64", out)
        with contextlib.ExitStack() as stack:
            if name == "xdp-c":
                p = self._open("xdp")
                stack.callback(p.close)        # runs after the C echo below is reaped
                xs = p.xsk
                offs = []
                for lay in (xs.rx_l, xs.tx_l, xs.fill_l, xs.comp_l):
                    offs += [lay.producer, lay.consumer, lay.flags, lay.desc]
                region = p.pool.region
                argv = ([self.exe, "xskecho", str(xs.fileno()), str(region.fd), str(p.nframes * p.chunk), str(port),
                         str(total), "30000"] + [str(lay.size) for lay in (xs.rx_l, xs.tx_l, xs.fill_l, xs.comp_l)]
                        + [str(x) for x in offs])
                if self.pin:
                    argv = ["taskset", "-c", "0"] + argv
                sp = stack.enter_context(self._proc(argv, pass_fds=(xs.fileno(), region.fd)))
                self._ready(sp)
                cp = stack.enter_context(self._proc(client))
                o, e = cp.communicate(timeout=120)
                srv_out = self._finish(sp)
                info = {}
            elif name in ("xdp", "packet", "udp"):
                p = self._open(name)
                stack.callback(p.close)
                if name == "packet":       # keep the kernel from answering "port unreachable"
                    import socket
                    with inside(v.ns_a):
                        guard = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                        stack.callback(guard.close)
                        guard.bind((v.A_IP, port))
                bufs = np.empty(32, np.int32)
                if name == "udp":
                    echo_loop(p.state, p.pool.arrays, bufs, -1, 0, 1)          # compile/warm
                else:
                    echo_loop(p.state, p.pool.arrays, bufs, port, 0, 1)
                old = self._pinned()
                try:
                    cp = stack.enter_context(self._proc(client))
                    if name == "udp":
                        echo_loop(p.state, p.pool.arrays, bufs, -1, total, 30_000_000)
                    else:
                        echo_loop(p.state, p.pool.arrays, bufs, port, total, 500_000_000)
                finally:
                    os.sched_setaffinity(0, old)
                o, e = cp.communicate(timeout=120)
                info = dict(p.info) if hasattr(p, "info") else {}
            else:
                if name == "kernel-c":
                    srv = self._server_cmd(self.exe, "echo", v.A_IP, str(port), str(total), "30000")
                else:
                    srv = self._server_cmd(sys.executable, "-c", PY_ECHO, v.A_IP, str(port), str(total), "30")
                sp = stack.enter_context(self._proc(srv))
                self._ready(sp)
                cp = stack.enter_context(self._proc(client))
                o, e = cp.communicate(timeout=120)
                srv_out = self._finish(sp)
                info = {}
        if cp.returncode != 0:
            raise RuntimeError(f"rtt client for {name} failed: {e.strip()}; server said: {srv_out or '-'}")
        lost = int(o.split()[1]) if o.startswith("lost") else -1
        r = np.fromfile(out, np.int64)
        os.unlink(out)
        r = r[r > 0]
        return float(np.median(r)) / 1000, float(np.percentile(r, 99)) / 1000, lost, info

    # -- receive ------------------------------------------------------------------
    def rx(self, name) -> tuple[float, float, int, int]:
        a, v = self.args, self.v
        port = PORTS[name]
        blast = self._client("blast", v.A_IP, str(port), str(a.seconds), "64")
        with contextlib.ExitStack() as stack:
            if name in ("xdp", "packet", "udp"):
                p = self._open(name)
                stack.callback(p.close)
                if name == "packet":
                    import socket
                    with inside(v.ns_a):
                        guard = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                        stack.callback(guard.close)
                        guard.bind((v.A_IP, port))
                bufs = np.empty(64, np.int32)
                count_loop(p.state, p.pool.arrays, bufs, 1, 1)
                old = self._pinned()
                try:
                    bp = stack.enter_context(self._proc(blast))
                    idle = 100_000_000 if name != "udp" else 5_000_000
                    got = count_loop(p.state, p.pool.arrays, bufs, idle, idle * 5)
                finally:
                    os.sched_setaffinity(0, old)
                o, e = bp.communicate(timeout=60)
            else:
                if name == "kernel-c":
                    srv = self._server_cmd(self.exe, "sink", v.A_IP, str(port), "1000")
                else:
                    srv = self._server_cmd(sys.executable, "-c", PY_SINK, v.A_IP, str(port), "1")
                sp = stack.enter_context(self._proc(srv))
                self._ready(sp)
                bp = stack.enter_context(self._proc(blast))
                o, e = bp.communicate(timeout=60)
                so, _ = sp.communicate(timeout=60)
                got = int(so.split()[1])
        _, sent, secs = o.split()
        sent, secs = int(sent), float(secs)
        return got / secs / 1e6, sent / secs / 1e6, got, sent


def _available(only: str) -> list[str]:
    names = ["xdp", "xdp-c", "packet", "udp", "kernel-c", "kernel-python"]
    try:
        import tickwire.drivers.packet  # noqa: F401
    except ImportError:
        names.remove("packet")
    if only:
        want = [n.strip() for n in only.split(",") if n.strip()]
        names = [n for n in names if n in want]
    return names


def _failed(failed: dict, key: str, rep: int, err: Exception) -> None:
    f = failed.setdefault(key, {"reps": 0, "error": f"rep {rep}: {err}"})
    f["reps"] += 1


def run(args) -> int:
    if os.geteuid() != 0:
        print("bench xdp: needs root (network namespaces, bpf, AF_XDP)", file=sys.stderr)
        return 2
    names = _available(args.only)
    import signal

    def _term(*_):            # a timeout/kill -TERM still deletes the namespaces (finally below)
        raise SystemExit(143)
    signal.signal(signal.SIGTERM, _term)
    b = _Bench(args)
    rtt = {n: [] for n in names}
    rx = {n: [] for n in names}
    info = {}
    failed = {}       # "contender/test" -> failed reps and the first error; the others still run
    try:
        for rep in range(args.reps):
            for n in names:                       # interleaved: each rep runs every contender once
                try:
                    med, p99, lost, inf = b.rtt(n)
                except (RuntimeError, subprocess.TimeoutExpired) as e:
                    _failed(failed, f"{n}/rtt", rep, e)
                    continue
                rtt[n].append((med, p99, lost))
                if inf:
                    info[n] = inf
            if not args.skip_rx:
                for n in names:
                    if n != "xdp-c":
                        try:
                            rx[n].append(b.rx(n))
                        except (RuntimeError, subprocess.TimeoutExpired, ValueError) as e:
                            _failed(failed, f"{n}/rx", rep, e)
    finally:
        b.close()

    res = {"config": {"count": args.count, "warmup": args.warmup, "reps": args.reps, "seconds": args.seconds,
                      "xdp_mode": args.mode, "pinned": b.pin, "payload_bytes": 64, "xdp_port": info.get("xdp", {}),
                      "note": "2-vCPU shared VM: noisy; compare ratios within this run"},
           "rtt_us": {}, "rx": {}, "failed": failed}
    for n in names:
        if not rtt[n]:
            continue
        res["rtt_us"][n] = {"median": statistics.median(r[0] for r in rtt[n]),
                            "p99": statistics.median(r[1] for r in rtt[n]),
                            "lost": sum(r[2] for r in rtt[n]), "runs": [[round(r[0], 2), round(r[1], 2)] for r in rtt[n]]}
        if rx[n]:
            res["rx"][n] = {"mpps": statistics.median(r[0] for r in rx[n]),
                            "offered_mpps": statistics.median(r[1] for r in rx[n]),
                            "lost": sum(r[3] - r[2] for r in rx[n]), "sent": sum(r[3] for r in rx[n])}
    ref = res["rtt_us"].get("kernel-c", {}).get("median")
    if ref:
        res["rtt_ratio_vs_kernel_c"] = {n: v["median"] / ref for n, v in res["rtt_us"].items()}
    cref = res["rtt_us"].get("xdp-c", {}).get("median")
    if cref and "xdp" in res["rtt_us"]:
        res["xdp_vs_c_af_xdp"] = res["rtt_us"]["xdp"]["median"] / cref
    if args.json:
        print(json.dumps(res, indent=2))
        return 1 if failed else 0
    print(f"tickwire bench xdp  (veth, {args.mode} XDP, {'pinned server CPU0 / client CPU1' if b.pin else 'unpinned'}, "
          f"{args.reps} reps, medians; noisy shared VM)")
    if "xdp" in info:
        i = info["xdp"]
        print(f"xdp port: mode={i['mode']} zerocopy={i['zerocopy']} umem={i['umem']} hugepages={i['hugepages']}")
    print(f"\nUDP echo RTT, 64-byte payload, {args.count} round trips (C busy-poll client)")
    print(f"  {'contender':<15}{'median us':>10}{'p99 us':>10}{'x kernel-c':>12}{'x xdp-c':>10}")
    for n in res["rtt_us"]:
        r = res["rtt_us"][n]
        ratio = f"{r['median'] / ref:.2f}" if ref else "-"
        cr = f"{r['median'] / cref:.2f}" if cref else "-"
        print(f"  {n:<15}{r['median']:>10.2f}{r['p99']:>10.2f}{ratio:>12}{cr:>10}")
    if res["rx"]:
        print(f"\nReceive, 64-byte payload flood for {args.seconds} s (C sendmmsg sender)")
        print(f"  {'contender':<15}{'Mpps':>8}{'offered':>9}{'lost':>10}")
        for n in res["rx"]:
            r = res["rx"][n]
            print(f"  {n:<15}{r['mpps']:>8.3f}{r['offered_mpps']:>9.3f}{r['lost']:>10}")
    for k, f in failed.items():
        print(f"\nFAILED {k} in {f['reps']} rep(s), left out of the medians; first error: {f['error']}")
    return 1 if failed else 0

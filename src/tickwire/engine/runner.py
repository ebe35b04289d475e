"""Python side of the engine process: open the transport, connect the order session,
run the compiled loop in bounded slices, service the control plane in between
(TCP slow path and timers, memif link, reconnects), report.

    run_engine(cfg, transport, duration, on_tick=None) -> (EngineState, stats dict)

transport is a TransportConfig: ``port`` = a frame-port spec (memif:..., packet:...)
for tickwire's stack + user-space TCP, or "socket" for kernel sockets. Both reach the
venue at ``venue_ip`` and the feeds at ``groups`` (multicast, joined on the interface
that owns ``ip``); kernel sockets also take a unicast feed address of ours, as the
simulator's loopback baseline sends (``groups = 127.0.0.1`` three times).
"""

from __future__ import annotations

import ipaddress
import os
import time
from dataclasses import dataclass

import numpy as np

from ..wire.bytes import ip_to_int
from .build import build_engine, feed_view
from .core import oe_connected, oe_disconnected
from .layout import M_BOOK_EVENTS, M_CLOSE_TRANSPORT, M_STAGES, M_TXS_LEN, M_WARM_RX, META_NAMES


def check_feed_addresses(port: str, ip: str, groups) -> None:
    """Our address and the feeds' (A, B, snapshot loop) as the engine's transport and the
    simulator take them: IPv4 addresses written as strings; on a frame port the feeds are
    multicast groups (tickwire's stack takes them by IGMP join), over kernel sockets a
    unicast address of ours will do too (the simulator's loopback baseline)."""
    if not all(isinstance(a, str) for a in (ip, *groups)):
        raise ValueError("ip and groups are IPv4 addresses written as strings")
    ipaddress.IPv4Interface(ip)
    feeds = [ipaddress.IPv4Address(a) for a in groups]
    if port != "socket" and not all(a.is_multicast for a in feeds):
        raise ValueError(f"on a frame port the feeds are multicast groups, got {list(groups)}")


@dataclass
class TransportConfig:
    port: str = "socket"
    ip: str = "10.77.0.2"
    mac: str = "02:77:00:00:00:02"
    venue_ip: str = "10.77.0.1"
    oe_port: int = 9310
    groups: tuple = ("239.77.0.1", "239.77.0.2", "239.77.0.3")   # feed A, feed B, snapshot loop
    udp_ports: tuple = (14310, 14311, 14312)
    cpu: int | None = None          # pin the engine to this CPU (os.sched_setaffinity)
    rt: bool = False                # SCHED_FIFO for the engine while it runs (needs root/CAP_SYS_NICE)
    slice_s: float = 0.02           # the compiled loop runs this long between control-plane visits
    warm: bool = True               # keep the order path warm while idle (engine/warm.py)
    stages: bool = True             # stamp each stage boundary; False: only the two ends of tick-to-trade
    warm_receive: bool = True       # the idle warm-up also warms the receive half (warm.warm_receive)
    peer_alive: object = None       # callable: raises if the venue process died (while we wait for it)
    progress: object = None         # callable(str): start-up progress (compiling, waiting for the venue)
    connect_timeout: float = 20.0
    startup_timeout: float = 1200.0  # until the session is up and data flows (a cold Numba cache compiles for minutes)

    def __post_init__(self):
        # refused where the values come in (a config file, the demo), not when a socket opens
        if len(self.groups) != 3 or len(self.udp_ports) != 3:
            raise ValueError(f"transport: groups and udp_ports name feed A, feed B and the snapshot loop: "
                             f"three each, got {len(self.groups)} and {len(self.udp_ports)}")
        try:
            check_feed_addresses(self.port, self.ip, self.groups)
            if not isinstance(self.venue_ip, str):
                raise ValueError("venue_ip is an IPv4 address written as a string")
            ipaddress.IPv4Address(self.venue_ip)
        except ValueError as err:
            raise ValueError(f"transport: {err}") from None
        if not all(isinstance(p, int) and 0 < p < 65536 for p in (self.oe_port, *self.udp_ports)):
            raise ValueError(f"transport: ports must be 1-65535, got oe_port={self.oe_port}, "
                             f"udp_ports={list(self.udp_ports)}")


class RunClock:
    """The run's ``duration`` counts from the first moment the order session is up *and*
    the books have moved (incremental market data is flowing), so a venue or engine still compiling on a cold Numba cache
    does not eat the measured window."""

    def __init__(self, duration: float, startup_timeout: float):
        self.duration, self.startup_timeout = duration, startup_timeout
        self.deadline = time.monotonic() + startup_timeout
        self.t0 = None

    def observe(self, session_up: bool, book_events: int) -> None:
        if self.t0 is None and session_up and book_events > 0:
            self.t0 = time.monotonic()

    def running(self) -> bool:
        now = time.monotonic()
        if self.t0 is None:
            if now > self.deadline:
                raise TimeoutError(f"no order session with market data within {self.startup_timeout:g} s")
            return True
        return now - self.t0 < self.duration


def pin(cpu):
    """CPU pinning: keep the loop on one core (its caches, its TSC)."""
    if cpu is not None:
        os.sched_setaffinity(0, {int(cpu)})


def placement(cpu, rt) -> dict:
    """Where the engine runs, for reports: CPU set, scheduling policy."""
    pol = {os.SCHED_OTHER: "SCHED_OTHER", os.SCHED_FIFO: "SCHED_FIFO"}.get(os.sched_getscheduler(0), "other")
    return {"engine_cpus": sorted(os.sched_getaffinity(0)), "engine_policy": pol, "rt_requested": bool(rt)}


class _Realtime:
    """SCHED_FIFO (priority 1) for the duration of the run, if allowed: a time-shared CPU
    hands the engine's core to other processes for milliseconds at a time (measured: the
    poll loop saw gaps of 2-3 ms at p50 under load), and each return finds cold caches.
    The kernel's RT throttling (sched_rt_runtime_us, 95 % by default) still leaves the
    CPU to others for 50 ms a second, so a spinning engine cannot lock the machine up."""

    def __init__(self, want: bool):
        self.want, self.old = want, None

    def __enter__(self):
        if self.want:
            try:
                self.old = (os.sched_getscheduler(0), os.sched_getparam(0))
                os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
            except (OSError, AttributeError):
                self.old = None
        return self

    def __exit__(self, *exc):
        if self.old is not None:
            os.sched_setscheduler(0, self.old[0], self.old[1])
            self.old = None


def _deadline(slice_s: float) -> int:
    from ..stack.tcp.loops import _tsc
    from .latency import ticks_per_ns
    return _tsc() + int(slice_s * 1e9 * ticks_per_ns())


def run_engine(E, tc: TransportConfig, duration: float, on_tick=None, tick_every: float = 0.25):
    pin(tc.cpu)
    E.meta[M_STAGES] = 1 if tc.stages else 0
    E.meta[M_WARM_RX] = 1 if tc.warm_receive else 0
    if tc.port == "socket":
        return _run_socket(E, tc, duration, on_tick, tick_every)
    return _run_frames(E, tc, duration, on_tick, tick_every)


def _session_lost(E, stats) -> float:
    """The order-entry transport went away: tell the engine (risk halts, session down),
    drop unsent bytes. Returns when to try to reconnect."""
    oe_disconnected(E)
    stats["reconnects"] += 1
    E.meta[M_CLOSE_TRANSPORT] = 0
    E.meta[M_TXS_LEN] = 0
    return time.monotonic() + 0.2


def _tick(E, on_tick, next_tick, tick_every) -> float:
    """The live view, every ``tick_every`` seconds. Returns the next time."""
    if on_tick is not None and time.monotonic() >= next_tick:
        on_tick(E)
        return time.monotonic() + tick_every
    return next_tick


def prefault(*arrays):
    """Write every page of arrays the loop will write into for the first time mid-run
    (np.zeros memory is mapped lazily: a first touch is a page fault, 2-5 us in the VM)."""
    for a in arrays:
        a.reshape(-1).view(np.uint8)[::4096] = 0


def _say(tc, msg):
    if tc.progress is not None:
        tc.progress(msg)


def _wait_link(port, tc):
    """The frame port's link (memif: the venue's control plane answers once it polls,
    which a venue still compiling does not). Raises if the venue died or never came."""
    deadline = time.monotonic() + tc.startup_timeout
    while not port.link_up:
        if time.monotonic() > deadline:
            raise OSError(f"link of {port.spec} did not come up in {tc.startup_timeout:g} s")
        if tc.peer_alive is not None:
            tc.peer_alive()
        port.poll()
        time.sleep(0.001)


def _run_frames(E, tc, duration, on_tick, tick_every):
    from ..drivers.port import open_port
    from ..mem.mempool import Mempool
    from ..stack import Stack
    from ..stack.tcp import TcpStack
    from ..stack.tcp.conn import TcpError
    from ..wire.decode import new_info
    from .loop_memif import engine_memif_step
    from .warm import WARM_EVERY_US, new_warm_state

    port = open_port(tc.port, Mempool(n_bufs=16384))
    stats = {"reconnects": 0}
    rt = _Realtime(tc.rt)
    try:
        tcp = TcpStack(port, tc.ip.split("/")[0], local_mac=tc.mac)
        net = Stack(tc.mac, tc.ip if "/" in tc.ip else tc.ip + "/24")
        tcp.attach_net(net)
        udp_src = np.zeros(net.state.udp_ep.shape[0], np.int64)
        for k, (g, p) in enumerate(zip(tc.groups, tc.udp_ports)):
            net.join(g)
            udp_src[net.bind_udp(p)] = k
        info = new_info()
        clock = tcp.clock()
        scratch = np.zeros(1 << 16, np.uint8)
        txb = np.zeros(64, np.int32)
        shadow = new_warm_state(E, tcp.hot, tcp.tmpl)
        warm_us = WARM_EVERY_US if tc.warm else 0
        local_mac = tcp.local_mac
        conn = None
        # compile (or load from cache) before connecting: the session's keepalive must not
        # lapse while Numba compiles; and before the link, so that the venue (another
        # process, compiling too on a cold cache) and the engine compile in parallel
        t = time.monotonic()
        _say(tc, "compiling the engine loop (or loading it from Numba's cache)...")
        engine_memif_step(port.state, port.pool.arrays, tcp.bufs, E, net.state, info, tcp.hot, tcp.nslots, -1,
                          tcp.txq, tcp.rxq, tcp.tmpl, tcp.sg, tcp.slow, tcp.opts, scratch, clock, local_mac,
                          udp_src, txb, shadow, warm_us, 0)
        prefault(tcp.txq, tcp.rxq, scratch)
        _say(tc, f"engine loop ready in {time.monotonic() - t:.1f} s; waiting for the venue's link...")
        _wait_link(port, tc)
        _say(tc, "link up")
        run = RunClock(duration, tc.startup_timeout)
        next_tick = next_try = time.monotonic()
        rt.__enter__()
        stats["placement"] = placement(tc.cpu, tc.rt)
        while run.running():
            now = time.monotonic()
            if conn is None and now >= next_try:
                try:
                    conn = tcp.connect(tc.venue_ip, tc.oe_port, timeout=2.0)
                    oe_connected(E, time.monotonic_ns())
                except (TcpError, OSError):
                    conn = None
                    next_try = now + 0.5
            slot = conn.slot if conn is not None else -1
            _, nslow, _ = engine_memif_step(port.state, port.pool.arrays, tcp.bufs, E, net.state, info, tcp.hot,
                                            tcp.nslots, slot, tcp.txq, tcp.rxq, tcp.tmpl, tcp.sg, tcp.slow,
                                            tcp.opts, scratch, clock, local_mac, udp_src, txb, shadow,
                                            warm_us, _deadline(tc.slice_s))
            tcp.process_slow(nslow)
            tcp.service()
            if tc.peer_alive is not None:
                tc.peer_alive()         # a venue that died mid-run: say so, do not wait out startup_timeout
            run.observe(conn is not None, int(E.meta[M_BOOK_EVENTS]))
            if conn is not None and (conn.state_name != "ESTABLISHED" or E.meta[M_CLOSE_TRANSPORT]):
                try:
                    conn.abort("order session ended")
                except Exception:
                    pass
                conn = None
                next_try = _session_lost(E, stats)
            next_tick = _tick(E, on_tick, next_tick, tick_every)
        stats.update(tcp.counters())
        stats["pool"] = port.pool.counters()
        stats["port"] = {k: v for k, v in port.stats().items() if v}
        return stats
    finally:
        rt.__exit__()
        try:
            tcp.close()
        except Exception:
            pass
        port.close()


def _feed_spec(addr: str, port: int, local_ip: str) -> str:
    """The kernel UDP port of one feed: a multicast group is joined on the interface that
    owns our address (``ip``); a unicast address of ours (the simulator's loopback baseline,
    127.0.0.1) is bound as it is."""
    if ipaddress.ip_address(addr).is_multicast:
        return f"udp:bind={addr}:{port},group={addr},iface={local_ip}"
    return f"udp:bind={addr}:{port}"


def _run_socket(E, tc, duration, on_tick, tick_every):
    from ..drivers.port import open_port
    from ..mem.mempool import Mempool
    from ..stack.tcp.loops import tsc_clock
    from .kernel_stamps import enable_rx_stamps
    from .loop_socket import engine_socket_step
    from .warm import WARM_EVERY_US, new_warm_state

    pool = Mempool(n_bufs=8192)
    udps = [open_port(_feed_spec(g, p, tc.ip.split("/")[0]), pool) for g, p in zip(tc.groups, tc.udp_ports)]
    fds = np.array([u.sock.fileno() for u in udps], np.int64)
    for fd in fds:
        enable_rx_stamps(int(fd))       # the kernel path's tick-to-trade starts at the kernel's receive stamp
    ts = np.zeros(2, np.int64)
    shadow = new_warm_state(E)
    warm_us = WARM_EVERY_US if tc.warm else 0
    tcpp = None
    stats = {"reconnects": 0}
    bufs = np.zeros(32, np.int32)
    clock = tsc_clock(time.monotonic_ns() // 1000)
    rt = _Realtime(tc.rt)
    try:
        run = RunClock(duration, tc.startup_timeout)
        next_tick = next_try = time.monotonic()
        rt.__enter__()
        stats["placement"] = placement(tc.cpu, tc.rt)
        while run.running():
            now = time.monotonic()
            if tcpp is None and now >= next_try:
                try:
                    tcpp = open_port(f"tcp:connect={tc.venue_ip}:{tc.oe_port},nodelay=on", pool)
                    # compile (or load from cache) before the session starts its keepalive clock
                    engine_socket_step(udps[0].state, udps[1].state, udps[2].state, tcpp.state, pool.arrays, bufs,
                                       E, clock, fds, ts, shadow, warm_us, 0)
                    oe_connected(E, time.monotonic_ns())
                except OSError:
                    tcpp = None
                    next_try = now + 0.2
                    continue
            if tcpp is None:
                time.sleep(0.01)
                continue
            engine_socket_step(udps[0].state, udps[1].state, udps[2].state, tcpp.state, pool.arrays, bufs, E, clock,
                               fds, ts, shadow, warm_us, _deadline(tc.slice_s))
            if tc.peer_alive is not None:
                tc.peer_alive()
            run.observe(True, int(E.meta[M_BOOK_EVENTS]))
            tcpp.poll()
            if not tcpp.link_up or E.meta[M_CLOSE_TRANSPORT]:
                tcpp.close()
                tcpp = None
                next_try = _session_lost(E, stats)
            next_tick = _tick(E, on_tick, next_tick, tick_every)
        stats["pool"] = pool.counters()
        return stats
    finally:
        rt.__exit__()
        if tcpp is not None:
            tcpp.close()
        for u in udps:
            u.close()

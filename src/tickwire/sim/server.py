"""The simulator process: the venue (venue.py) behind a transport.

Two transports, same venue code:
  * a frame port (``memif:...``, ``packet:...``): market data as UDP multicast frames built
    by tickwire's stack, order entry over tickwire's user-space TCP (listener);
  * ``socket``: kernel UDP (to the ``groups``: multicast out of the interface owning ``ip``,
    or unicast, 127.0.0.1 by default from the command line) and a kernel TCP listener on
    ``ip``: the baseline the same engine strategy is compared against.

The control loop is Python (TCP slow path, timers, pacing); the venue's work (matching,
publishing, session, execution reports) is compiled. With ``e2e_out`` set, every turn of
the loop while a client is connected sends the queued market data and busy-polls order
entry in one compiled call (e2e_poll.py), stamping both for the end-to-end measurement,
which is saved to that file at the end (e2e_stamps.py, docs/sim-e2e.md).
"""

from __future__ import annotations

import ipaddress
import json
import select
import socket
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from ..wire.bytes import ip_to_int
from ..order.session import SS_ESTABLISHED
from .e2e_poll import K_OK, frames_turn, kernel_turn
from .e2e_stamps import EM_PEEK, EM_SCAN_LEN, new_e2e, save_e2e
from .md_out import N_MC, send_md, send_one
from .venue import (V_GARBAGE, V_MDQ_N, V_NAMES, V_RX_LEFT, build_venue, take_md, take_out, venue_disconnected,
                    venue_flow, venue_oe_input, venue_snapshot, venue_timers)

TICK = 250_000_000
DEFAULT_INSTRUMENTS = [(1001, 5000 * 1_000_000_000, TICK), (1002, 2500 * 1_000_000_000, TICK)]


@dataclass
class SimConfig:
    port: str = "socket"                   # frame port spec, or "socket" for kernel sockets
    ip: str = "10.77.0.1"
    oe_port: int = 9310
    groups: tuple = ("239.77.0.1", "239.77.0.2", "239.77.0.3")   # feed A, feed B, snapshot loop
    udp_ports: tuple = (14310, 14311, 14312)
    seed: int = 1
    rate: float = 2000.0                   # synthetic flow actions per second
    duration: float = 10.0
    snapshot_every: float = 0.25           # seconds between snapshot rounds
    instruments: list = field(default_factory=lambda: list(DEFAULT_INSTRUMENTS))
    impair: tuple = ((0, 0, 0), (0, 0, 0))  # per feed: loss, dup, reorder in ppm
    mac: str = "02:77:00:00:00:01"
    keepalive_ms: int = 1000
    replay: str = ""                       # a pcap whose UDP payloads are the feed (replay.py)
    replay_speed: float = 1.0              # capture time x this = send time (2.0: twice as fast)
    replay_ports: tuple | None = None      # keep only UDP packets to these ports (None: all)
    start: str = "session"                 # the run's clock starts at the first FIXP session, or "now"
    e2e_out: str = ""                      # measure end to end; save the stamps here (.npz)
    e2e_budget_us: float = 2000.0          # longest busy-poll turn (shorter when the flow is due sooner)
    e2e_grace_us: float = 50.0             # a turn ends this long after the last order-entry bytes


def _turn_ticks(cfg):
    from ..engine.latency import ticks_per_ns
    tpn = ticks_per_ns()
    return tpn * 1000, int(cfg.e2e_budget_us * 1000 * tpn), int(cfg.e2e_grace_us * 1000 * tpn)


def _budget(tr, us):
    """Ticks for a turn that should last ``us`` microseconds, within [20 us, cfg budget]."""
    return int(min(max(us, 20.0) * tr.tpus, tr.budget))


class _Kernel:
    """Kernel-socket transport: the feeds as UDP datagrams to ``groups`` (multicast groups
    sent out of the interface that owns ``ip``, or unicast addresses such as the loopback
    baseline's 127.0.0.1), one TCP client at a time on ``ip``."""

    def __init__(self, cfg):
        self.cfg = cfg
        ip = cfg.ip.split("/")[0]
        self.feeds = [(g, p) for g, p in zip(cfg.groups, cfg.udp_ports)]
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind((ip, 0))                      # our address is the feeds' source
        if any(ipaddress.ip_address(g).is_multicast for g in cfg.groups):
            self.udp.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(ip))
            self.udp.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)    # the venue's LAN only
            self.udp.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)   # a receiver on this host too
        self.lst = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lst.bind((ip, cfg.oe_port))
        self.lst.listen(1)
        self.lst.setblocking(False)
        self.conn = None
        self.rng = np.random.default_rng(cfg.seed ^ 0x5EED)
        self.hold = [None, None]
        self.counts = {"sent": 0, "lost": 0, "duplicated": 0, "reordered": 0}
        self.e2e = new_e2e() if cfg.e2e_out else new_e2e(16, 16)
        self.eof = False             # measuring: the peer closed after the bytes just returned
        if cfg.e2e_out:
            from ..drivers.sock_common import sockaddr_in
            self.addrs = np.stack([sockaddr_in(g, p) for g, p in self.feeds[:2]])
            self.sa = np.zeros(32, np.uint8)
            self.rxb = np.zeros(1 << 16, np.uint8)
            self.tpus, self.budget, self.grace = _turn_ticks(self.cfg)
            # compile the measuring turn before a client can connect (fd -1: recvfrom fails at once)
            kernel_turn(self.udp.fileno(), self.addrs, _EMPTY.mdq, _EMPTY.mdq_len, 0, -1, self.rxb, self.sa, self.e2e,
                        0, 0)

    def start(self):
        pass

    def turn(self, V, us):
        """e2e_poll.kernel_turn: queued market data out, order entry in, stamped. The end of
        the stream is reported (b"") on the turn after the bytes that came before it."""
        if self.eof:
            self.eof = False
            self.conn.close()
            self.conn = None
            return b"", False
        got, status, sent, errs = kernel_turn(self.udp.fileno(), self.addrs, V.mdq, V.mdq_len, int(V.meta[V_MDQ_N]),
                                              self.conn.fileno(), self.rxb, self.sa, self.e2e, _budget(self, us),
                                              self.grace)
        V.meta[V_MDQ_N] = 0
        self.counts["sent"] += sent
        self.counts["send_errors"] = self.counts.get("send_errors", 0) + errs
        if status != K_OK:
            self.eof = True
        return (self.rxb[:got].tobytes() if got else None), False

    def connected(self):
        return self.conn is not None

    def poll(self):
        if self.conn is None:
            try:
                c, _ = self.lst.accept()
            except BlockingIOError:
                return None, False
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            c.setblocking(False)
            self.conn = c
            self.e2e.meta[EM_SCAN_LEN] = 0
            return None, True
        try:
            data = self.conn.recv(65536)
        except BlockingIOError:
            return None, False
        except OSError:
            data = b""
        if data == b"":
            self.conn.close()
            self.conn = None
            return b"", False
        return data, False

    def send_oe(self, data):
        if self.conn is not None and data:
            try:
                self.conn.sendall(data)
            except OSError:
                self.conn.close()
                self.conn = None

    def hang_up(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def send_md(self, packets):
        imp = self.cfg.impair
        for f in range(2):
            addr = self.feeds[f]
            loss, dup, reorder = imp[f]
            for p in packets:
                if self.rng.integers(1_000_000) < loss:
                    self.counts["lost"] += 1
                    continue
                if self.hold[f] is None and self.rng.integers(1_000_000) < reorder:
                    self.hold[f] = p
                    self.counts["reordered"] += 1
                    continue
                self.udp.sendto(p, addr)
                self.counts["sent"] += 1
                if self.rng.integers(1_000_000) < dup:
                    self.udp.sendto(p, addr)
                    self.counts["duplicated"] += 1
                if self.hold[f] is not None:
                    self.udp.sendto(self.hold[f], addr)
                    self.hold[f] = None

    def send_snapshot(self, pkt):
        self.udp.sendto(pkt, self.feeds[2])

    def close(self):
        for s in (self.conn, self.lst, self.udp):
            if s is not None:
                s.close()


class _EmptyQueue:
    """A venue-shaped empty queue (same array types) to compile send_md before the run."""
    meta = np.zeros(4, np.int64)
    mdq = np.zeros((1, 1464), np.uint8)
    mdq_len = np.zeros(1, np.int64)


_EMPTY = _EmptyQueue()


class _Frames:
    """Frame-port transport: tickwire's stack and user-space TCP."""

    def __init__(self, cfg):
        from ..drivers.port import open_port
        from ..mem.mempool import Mempool
        from ..cli.tcp_send import wait_link
        self.cfg = cfg
        self.port = open_port(cfg.port, Mempool(n_bufs=16384))
        self._wait_link = wait_link

    def start(self):
        """Wait for the link (a memif server waits for its client), then bring up the stack."""
        cfg = self.cfg
        from ..stack import Stack
        from ..stack.tcp import TcpStack
        self._wait_link(self.port, 600.0)
        self.tcp = TcpStack(self.port, cfg.ip.split("/")[0], local_mac=cfg.mac)
        self.net = Stack(cfg.mac, cfg.ip if "/" in cfg.ip else cfg.ip + "/24")
        self.tcp.attach_net(self.net)
        self.lst = self.tcp.listen(cfg.oe_port)
        self.conn = None
        self.dst = np.array([ip_to_int(g) for g in cfg.groups[:2]], np.int64)
        self.dport = np.array(cfg.udp_ports[:2], np.int64)
        self.imp = np.array(cfg.impair, np.int64)
        self.rng = np.array([(cfg.seed * 0x9E3779B97F4A7C15 + 1) & 0x7FFFFFFFFFFFFFFF | 1], np.int64)
        self.e2e = new_e2e(16, 16) if not cfg.e2e_out else new_e2e()
        self.hold = np.zeros((2, 1500), np.uint8)
        self.hold_len = np.zeros(2, np.int64)
        self.cnt = np.zeros((2, N_MC), np.int64)
        self.snapshot_dropped = 0
        self.txb = np.zeros(64, np.int32)
        self.send_md_queue(_EMPTY)      # compile the frame path now
        if cfg.e2e_out:
            t = self.tcp
            self.tcp_arrays = (t.bufs, t.hot, t.nslots, t.txq, t.rxq, t.tmpl, t.sg, t.slow, t.acks, t.opts)
            self.rxb = np.zeros(1 << 16, np.uint8)
            self.tpus, self.budget, self.grace = _turn_ticks(cfg)
            self.turn(_EMPTY, 20.0, -1)   # compile the measuring turn now (no connection: slot -1)

    def connected(self):
        return self.conn is not None and self.conn.state_name == "ESTABLISHED"

    def poll(self):
        self.tcp.poll()
        if self.conn is None:
            c = self.lst.accept(timeout=0) if self.lst.ready else None
            if c is not None:
                self.conn = c
                self.e2e.meta[EM_PEEK] = 0
                self.e2e.meta[EM_SCAN_LEN] = 0
                return None, True
            return None, False
        if self.conn.state_name != "ESTABLISHED":
            self.conn = None
            return b"", False
        n = self.conn.readable()
        if n:
            return self.conn.recv(n), False
        return None, False

    def send_oe(self, data):
        if self.conn is not None and data:
            self.conn.send(data)

    def hang_up(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def turn(self, V, us, slot=None):
        """e2e_poll.frames_turn: queued market data out, order entry polled and stamped;
        then the TCP slow path and timers, and the bytes read as in poll()."""
        n = int(V.meta[1])
        self.net.set_now()
        slot = self.conn.slot if slot is None else slot
        _, nslow, _ = frames_turn(self.port.state, self.port.pool.arrays, self.net.state, V.mdq, V.mdq_len, n, self.dst,
                                  self.dport, 0x3800, self.imp, self.rng, self.hold, self.hold_len, self.cnt, self.txb,
                                  self.tcp_arrays, slot, self.tcp.local_mac, self.tcp.clock(), self.rxb, self.e2e,
                                  _budget(self, us), self.grace if slot >= 0 else 0)
        V.meta[1] = 0
        self.tcp.process_slow(nslow)
        self.tcp.service()
        if slot < 0:
            return None, False
        if self.conn.state_name != "ESTABLISHED":
            self.conn = None
            return b"", False
        k = self.conn.readable()
        return (self.conn.recv(k) if k else None), False

    def send_packets(self, packets):
        """Send a list of payloads on feeds A and B (replay): same path as the venue's queue."""
        if not packets:
            return
        q = _EmptyQueue()
        q.meta = np.zeros(4, np.int64)
        q.mdq = np.zeros((len(packets), 1472), np.uint8)
        q.mdq_len = np.zeros(len(packets), np.int64)
        for k, p in enumerate(packets):
            q.mdq[k, :len(p)] = np.frombuffer(p, np.uint8)
            q.mdq_len[k] = len(p)
        q.meta[1] = len(packets)
        self.send_md_queue(q)

    def send_md_queue(self, V):
        n = int(V.meta[1])
        if n or V is _EMPTY:
            self.net.set_now()
            send_md(self.port.state, self.port.pool.arrays, self.net.state, V.mdq, V.mdq_len, n, self.dst, self.dport,
                    0x3800, self.imp, self.rng, self.hold, self.hold_len, self.cnt, self.txb, self.e2e)
            V.meta[1] = 0

    def send_snapshot(self, pkt):
        buf = np.frombuffer(pkt, np.uint8).copy()
        if not send_one(self.port.state, self.port.pool.arrays, self.net.state, buf, len(pkt),
                        ip_to_int(self.cfg.groups[2]), 0x3800, self.cfg.udp_ports[2], self.txb):
            self.snapshot_dropped += 1      # no buffer, no ARP entry, too long, or the port refused it

    @property
    def counts(self):
        c = self.cnt.sum(axis=0)
        return {"sent": int(c[0]), "lost": int(c[1]), "duplicated": int(c[2]), "reordered": int(c[3]),
                "nobuf": int(c[4]), "tx_dropped": int(c[5]), "no_arp": int(c[6]), "too_long": int(c[7]),
                "snapshot_dropped": self.snapshot_dropped}

    def close(self):
        try:
            self.tcp.close()
        finally:
            self.port.close()


def run_sim(cfg: SimConfig, ready=None, stop=None) -> dict:
    """Run the venue for cfg.duration seconds (or until ``stop()``); returns statistics."""
    V = build_venue(cfg.instruments, seed=cfg.seed, keepalive_ms=cfg.keepalive_ms)
    replay = None
    if cfg.replay:
        from .replay import load_replay
        replay = load_replay(cfg.replay, cfg.replay_ports)
    md_dropped = 0
    if cfg.e2e_out and (cfg.replay or (cfg.port == "socket" and any(any(x) for x in cfg.impair))):
        raise ValueError("e2e measurement: not with --replay, nor with impairments on kernel sockets")
    tr = _Kernel(cfg) if cfg.port == "socket" else _Frames(cfg)
    snap = np.zeros(2048, np.uint8)
    rx = np.zeros(1 << 16, np.uint8)
    # compile (or load from the cache) everything before a client can connect, so no
    # session timer runs while Numba compiles
    now0 = time.monotonic_ns()
    venue_flow(V, now0, 0)
    venue_oe_input(V, rx, 0, 0, now0)
    venue_timers(V, now0)
    venue_snapshot(V, 0, snap, now0)
    venue_disconnected(V, now0)
    take_md(V)
    take_out(V)
    if ready is not None:
        ready()
    tr.start()
    # the run's clock starts with the first established FIXP session (the engine may spend
    # a while compiling); without one, give up after ``cfg.duration + 600`` s
    t_start = time.monotonic()
    t0 = None
    next_snap = t_start
    done_steps = 0
    connections = 0
    m_span = [0.0, 0.0]            # first and last measuring turn
    pending = b""                  # client bytes the venue has not taken yet
    try:
        while True:
            t = time.monotonic()
            if (t0 is not None and t - t0 >= cfg.duration) or t - t_start > cfg.duration + 600 \
                    or (stop is not None and stop()):
                break
            now = time.monotonic_ns()
            measuring = bool(cfg.e2e_out) and t0 is not None and tr.connected()
            if measuring:
                # poll until the next synthetic flow step is due
                data, new_conn = tr.turn(V, ((done_steps + 1) / cfg.rate - (t - t0)) * 1e6)
                m_span[0] = m_span[0] or t
                m_span[1] = time.monotonic()
            else:
                data, new_conn = tr.poll()
            if new_conn:
                connections += 1
            if data == b"":
                pending = b""
                venue_disconnected(V, now)
                take_out(V)         # unsent bytes were for the lost connection: a new one starts afresh
            elif data or pending:
                data = pending + data if data else pending
                garbage = V.meta[V_GARBAGE]
                venue_oe_input(V, np.frombuffer(data, np.uint8), 0, len(data), now)
                if V.meta[V_GARBAGE] != garbage:    # the session ended on garbage:
                    tr.send_oe(take_out(V))         # the Terminate that says why,
                    tr.hang_up()                    # then close, as iLink 3 does after a Terminate
                    pending = b""
                else:                               # bytes the venue could not take yet
                    pending = data[len(data) - int(V.meta[V_RX_LEFT]):] if V.meta[V_RX_LEFT] else b""
                data = None
            if t0 is None:
                if V.sess[SS_ESTABLISHED] == 0 and cfg.start != "now":
                    if tr.connected():
                        tr.send_oe(take_out(V))
                    continue
                t0 = t          # the run starts with the first established session
                next_snap = t
            if replay is None:
                want = int((t - t0) * cfg.rate)
                if want > done_steps:
                    k = min(want - done_steps, 64)
                    venue_flow(V, now, k)
                    done_steps += k
            venue_timers(V, now)
            if tr.connected():
                tr.send_oe(take_out(V))
            if replay is not None:
                # the recorded stream is the only market data: what the matching engine
                # publishes for the client's own orders would break its sequence numbers
                md_dropped += len(take_md(V))
                due = replay.due(int((t - t0) * 1e9), cfg.replay_speed)
                if isinstance(tr, _Frames):
                    tr.send_packets(due)
                else:
                    tr.send_md(due)
                continue
            if not (cfg.e2e_out and tr.connected()):      # measuring: the next turn sends them
                if isinstance(tr, _Frames):
                    tr.send_md_queue(V)
                else:
                    tr.send_md(take_md(V))
            if t >= next_snap:
                next_snap = t + cfg.snapshot_every
                for i in range(len(cfg.instruments)):
                    n = venue_snapshot(V, i, snap, now)
                    if n > 0:               # (0: does not fit snap; new_publisher's depth check rules it out)
                        tr.send_snapshot(snap[:n].tobytes())
        stats = {"flow_steps": done_steps, "connections": connections, "md_packets": int(V.pub.meta[7]),
                 "md_seq": int(V.pub.meta[0]), **{f"venue_{k}": int(v) for k, v in zip(V_NAMES, V.meta)},
                 **{f"md_{k}": v for k, v in tr.counts.items()}}
        if cfg.e2e_out:
            stats["e2e"] = save_e2e(tr.e2e, cfg.e2e_out, m_span[1] - m_span[0])
        if replay is not None:
            stats.update(replay_packets=len(replay.payloads), replay_sent=replay.next, replay_md_dropped=md_dropped,
                         **{f"replay_skipped_{k}": v for k, v in replay.skipped.items() if v})
        return stats
    finally:
        tr.close()

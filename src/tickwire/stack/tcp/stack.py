"""TcpStack: TCP connections on one Port (the Python API: connect/listen/accept/send/recv/close).

It owns the shared tables (``hot``, ``txq``, ``rxq``, ``tmpl``; see tcb.py), the
demultiplexing of the slow path by 4-tuple, listeners with a bounded backlog,
and the poll loop: ``poll()`` runs one compiled ``poll_step`` (fast path inside),
then the slow path for frames it handed back, timers, and queued output.

ARP and the rest of IPv4: give ``net=Stack(mac, "A.B.C.D/len")`` (stack/iface.py)
and every frame that is not TCP for us goes through ``stack_input`` (ARP cache and
responder, ICMP echo, IGMP, UDP), its replies are transmitted, and peers are
resolved from its ARP cache. Without ``net`` this module answers ARP for
``local_ip`` and resolves peers itself with wire/arp.py; other frames are counted
and dropped.
"""

from __future__ import annotations

import time

import numpy as np

from ...mem.mempool import BUF_SIZE, pool_alloc, pool_free
from ...wire.arp import ARP_REPLY, ARP_REQUEST, arp_check, arp_oper, arp_sha, arp_spa, arp_tpa, arp_write
from ...wire.bytes import ip_to_int, mac_to_int, rd16
from ...wire.causes import OK
from ...wire.checksum import csum_add, csum_pseudo_ipv4
from ...wire.ethernet import BROADCAST, ETHERTYPE_ARP, ETHERTYPE_IPV4, eth_write
from ...wire.ipv4 import PROTO_TCP, ipv4_write
from . import tcb as T
from .config import TcpConfig
from .conn import Connection, TcpError
from .fastpath import build_segment, ring_get, ring_put
from .isn import isn
from .poll import find_slot, poll_step
from .segment import (CAUSE_NAMES, C_NOT_TCP, C_OK, SG_ACK, SG_DATA_LEN, SG_DPORT, SG_DST, SG_FLAGS, SG_SEQ,
                      SG_SPORT, SG_SRC, SG_SRC_MAC, new_fields, tcp_decode)
from ..state import ACT_TX
from .states import ACK, CLOSED, ESTABLISHED, FIN, RST, SYN

BURST = 32
OPT_CAP = 40


class Listener:
    """A passive open on ``port`` (RFC 9293 §3.10.1). ``backlog`` bounds both the
    half-open connections (SYN-RECEIVED) and the established-but-not-accepted ones,
    so a SYN flood costs at most ``backlog`` slots, each freed when its SYN,ACK
    retransmissions time out."""

    def __init__(self, stack, port: int, backlog: int):
        self.stack, self.port, self.backlog = stack, port, backlog
        self.pending: list[Connection] = []
        self.ready: list[Connection] = []

    def on_established(self, conn: Connection) -> None:
        if conn in self.pending:
            self.pending.remove(conn)
        self.ready.append(conn)

    def accept(self, timeout: float | None = None) -> Connection | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.ready:
            if deadline is not None and time.monotonic() >= deadline:
                return None
            self.stack.poll()
        conn = self.ready.pop(0)
        conn.listener = None
        return conn

    def close(self) -> None:
        self.stack.listeners.pop(self.port, None)
        for c in self.pending + self.ready:
            c.abort("listener closed")


class TcpStack:
    def __init__(self, port, local_ip: str, local_mac: int | None = None, cfg: TcpConfig | None = None,
                 max_conns: int = 16, net=None, trace=None):
        self.port = port
        self.pool = port.pool
        self.cfg = cfg or TcpConfig()
        self.local_ip = ip_to_int(local_ip.split("/")[0])
        if local_mac is None:
            local_mac = getattr(port, "mac", None)
        if local_mac is None:
            # ports without a MAC of their own (memif, pipes): a locally administered one (IEEE 802 §8.4)
            local_mac = 0x02_74_77_00_00_00 | (self.local_ip & 0xFFFFFF)
        if isinstance(local_mac, str):
            local_mac = mac_to_int(local_mac)
        self.local_mac = local_mac
        self.nslots = max_conns
        n = max_conns + 1                           # the last row is scratch (RSTs to strangers)
        self.hot = np.zeros((n, T.N_FIELDS), np.int64)
        self.txq = np.zeros((n, self.cfg.snd_buf), np.uint8)
        self.rxq = np.zeros((n, self.cfg.rcv_buf), np.uint8)
        self.tmpl = np.zeros((n, T.TMPL_CAP), np.uint8)
        self.conns: list[Connection | None] = [None] * max_conns
        self.listeners: dict[int, Listener] = {}
        self.arp: dict[int, int] = {}
        self.net = net
        self._trace = trace
        self.sg = new_fields()
        self.bufs = np.zeros(BURST, np.int32)
        self.slow = np.zeros(BURST, np.int32)
        self.acks = np.zeros(max_conns, np.int32)
        self.opts = np.zeros(OPT_CAP, np.uint8)
        self.txpend = np.zeros(256, np.int32)
        self.ntx = 0
        self.last_frame = self.pool.arrays.data
        self.next_ephemeral = 49152 + int(np.random.default_rng().integers(0, 16000))
        self.stats = {f"rx_{c}": 0 for c in CAUSE_NAMES[1:]}
        self.stats.update(rx_no_connection=0, rst_sent=0, syn_backlog_full=0, syn_no_slot=0,
                          out_of_window=0, ooo_dropped=0, tx_no_buffer=0, tx_dropped=0,
                          rx_not_for_us=0, rx_other=0, arp_replies=0, slow_path_segments=0)
        self._t0 = time.monotonic_ns()
        self.poll()       # compile (or load from cache) the loop for this port type now, not mid-handshake

    # ------------------------------------------------------------------ plumbing
    def now(self) -> int:
        """Microseconds on the monotonic clock (the stack's only time base)."""
        return time.monotonic_ns() // 1000

    def count(self, name: str, by: int = 1) -> None:
        self.stats[name] = self.stats.get(name, 0) + by

    def trace(self, conn, msg: str) -> None:
        if self._trace:
            self._trace(f"[{conn.local_port}<->{conn.remote_port}] {msg}")

    def rcv_wscale(self, cfg: TcpConfig) -> int:
        """Smallest shift that lets the 16-bit window field express the whole receive ring."""
        s = 0
        while (65535 << s) < cfg.rcv_buf and s < 14:
            s += 1
        return s

    def new_isn(self, conn, now: int) -> int:
        return isn(self.local_ip, conn.local_port, conn.remote_ip, conn.remote_port, now * 1000)

    @staticmethod
    def ring_put(ring, off, src, n):
        ring_put(ring, off, src, 0, n)

    @staticmethod
    def ring_get(ring, off, dst, n):
        ring_get(ring, off, dst, 0, n)

    # ------------------------------------------------------------------ frames out
    def build_template(self, conn: Connection, with_ts: bool, slot: int | None = None) -> None:
        """Precompute the connection's Ethernet+IPv4+TCP header and the checksum sums of its
        constant fields (what build_segment adds to, RFC 1624 style)."""
        slot = conn.slot if slot is None else slot
        self._template(slot, conn.remote_mac, conn.remote_ip, conn.local_port, conn.remote_port, with_ts)

    def _template(self, slot, rmac, rip, lport, rport, with_ts):
        t, h = self.tmpl[slot], self.hot[slot]
        t[:] = 0
        eth_write(t, 0, rmac, self.local_mac, ETHERTYPE_IPV4)
        ipv4_write(t, 14, self.local_ip, rip, PROTO_TCP, 0, 64, 0, 0, True, False)
        t[16] = t[17] = t[24] = t[25] = 0                  # length, checksum: set per segment
        h[T.IP_SUM] = csum_add(t, 14, 20, np.int64(0))     # sum with length = id = 0
        t[34], t[35], t[36], t[37] = lport >> 8, lport & 255, rport >> 8, rport & 255
        thl = 20
        if with_ts:
            t[54:58] = (1, 1, 8, 10)                       # NOP NOP TS(10): RFC 7323 Appendix A layout
            thl = 32
        h[T.HDR_TCP_OFF], h[T.HDR_TCP_LEN], h[T.TMPL_LEN] = 34, thl, 34 + thl
        h[T.TMPL_SUM] = csum_add(t, 34, thl, csum_pseudo_ipv4(self.local_ip, rip, PROTO_TCP, 0))

    def _alloc(self) -> int:
        idx = pool_alloc(self.pool.arrays)
        if idx < 0:
            self.count("tx_no_buffer")
        return idx

    def send_segment(self, conn, flags, seqno, data_off, plen, opts: bytes, now, syn=False,
                     slot=None) -> None:
        """Build one segment with the template and queue it for transmission."""
        slot = conn.slot if slot is None else slot
        idx = self._alloc()
        if idx < 0:
            return                               # like a loss on the wire: retransmission recovers
        a = self.pool.arrays
        n_opt = len(opts)
        if n_opt:
            self.opts[:n_opt] = np.frombuffer(opts, np.uint8)
        boff = idx * a.meta[BUF_SIZE] + a.data_off[idx]
        n = build_segment(self.hot, slot, self.tmpl, a.data, boff, flags, seqno, self.txq[slot], data_off,
                          plen, self.opts, n_opt, self.cfg.rcv_buf, now)
        a.data_len[idx] = n
        self._queue_tx(idx)

    def _queue_tx(self, idx: int) -> None:
        if self.ntx == len(self.txpend):
            self.flush()
        self.txpend[self.ntx] = idx
        self.ntx += 1

    def flush(self) -> None:
        n = self.ntx
        if not n:
            return
        sent = self.port.tx_burst(self.txpend, n)
        if sent < n:
            self.count("tx_dropped", n - sent)
            self.pool.free_burst(self.txpend[sent:n])
        self.ntx = 0

    def send_rst_for(self, sg, seq: int | None = None) -> None:
        """Reset in answer to a segment with no (matching) connection (RFC 9293 §3.10.7.1)."""
        flags = int(sg[SG_FLAGS])
        if flags & RST:
            return
        s = self.nslots
        h = self.hot[s]
        h[:] = 0
        self._template(s, int(sg[SG_SRC_MAC]), int(sg[SG_SRC]), int(sg[SG_DPORT]), int(sg[SG_SPORT]), False)
        if flags & ACK:
            h[T.RCV_NXT] = 0
            out_flags, out_seq = RST, int(sg[SG_ACK]) if seq is None else seq
        else:
            seg_len = int(sg[SG_DATA_LEN]) + (1 if flags & SYN else 0) + (1 if flags & FIN else 0)
            h[T.RCV_NXT] = (int(sg[SG_SEQ]) + seg_len) & 0xFFFFFFFF
            out_flags, out_seq = RST | ACK, 0
        h[T.RCV_ADV] = h[T.RCV_NXT]
        h[T.RCV_WSCALE] = 14                     # so the window field is 0 (no room promised)
        h[T.RX_NXT] = self.cfg.rcv_buf
        self.count("rst_sent")
        self.send_segment(None, out_flags, out_seq, 0, 0, b"", self.now(), slot=s)

    # ------------------------------------------------------------------ connections
    def _free_slot(self) -> int:
        for i, c in enumerate(self.conns):
            if c is None:
                return i
        return -1

    def release(self, conn: Connection) -> None:
        """Free a closed connection's slot; keep what the user may still read."""
        if conn.slot < 0 or self.conns[conn.slot] is not conn:
            return
        k = conn.readable()
        conn.leftover = bytearray()
        if k > 0:
            out = np.empty(k, np.uint8)
            ring_get(self.rxq[conn.slot], int(conn.h[T.RX_READ]), out, 0, k)
            conn.leftover = bytearray(out.tobytes())
        row = conn.h.copy()
        row[T.RX_READ] = row[T.RX_NXT]
        conn.h = row
        self.hot[conn.slot, T.STATE] = CLOSED
        self.conns[conn.slot] = None
        if conn.listener is not None and conn in conn.listener.pending:
            conn.listener.pending.remove(conn)
        conn.slot = -1

    def on_time_wait(self, conn) -> None:
        pass

    def attach_net(self, net) -> None:
        """Use the IPv4 stack ``net`` for everything that is not TCP (see the module doc), and
        compile its input path now rather than on the first ARP request."""
        self.net = net
        idx = self._alloc()
        if idx >= 0:
            a = self.pool.arrays
            boff = idx * a.meta[BUF_SIZE] + a.data_off[idx]
            eth_write(a.data, boff, self.local_mac, self.local_mac, 0x88B5)   # local experimental type
            a.data_len[idx] = 60
            net.set_now()
            net.input(self.pool, idx)          # an unknown EtherType: counted and left to us
            pool_free(a, idx)

    def _arp_known(self, ip: int) -> bool:
        if self.net is not None:
            from ..arp import arp_lookup
            self.net.set_now()
            mac = int(arp_lookup(self.net.state, ip))
            if mac >= 0:
                self.arp[ip] = mac
        return ip in self.arp

    def resolve(self, ip: int, timeout: float = 3.0) -> int:
        """ARP (RFC 826): ask for ``ip``'s MAC, polling until the reply arrives."""
        # One round before the clock starts: from a cold Numba cache the first call of each
        # piece (ARP lookup, frame writers, transmit, the poll loop) compiles, which takes
        # longer than any ARP timeout (a fresh-cache tcp-send over memif gave up at 3 s).
        if not self._arp_known(ip):
            self._send_arp(ARP_REQUEST, BROADCAST, 0, ip)
            self.poll()
        deadline = time.monotonic() + timeout
        next_req = time.monotonic() + 0.2
        while not self._arp_known(ip):
            t = time.monotonic()
            if t >= deadline:
                raise TcpError(f"ARP: no answer for {ip >> 24}.{ip >> 16 & 255}.{ip >> 8 & 255}.{ip & 255}")
            if t >= next_req:
                self._send_arp(ARP_REQUEST, BROADCAST, 0, ip)
                next_req = t + 0.2
            self.poll()
        return self.arp[ip]

    def _send_arp(self, oper, dst_mac, tha, tpa):
        idx = self._alloc()
        if idx < 0:
            return
        a = self.pool.arrays
        boff = idx * a.meta[BUF_SIZE] + a.data_off[idx]
        eth_write(a.data, boff, dst_mac, self.local_mac, ETHERTYPE_ARP)
        arp_write(a.data, boff + 14, oper, self.local_mac, self.local_ip, tha, tpa)
        a.data[boff + 42:boff + 60] = 0                     # pad to the 60-byte minimum
        a.data_len[idx] = 60
        self._queue_tx(idx)
        self.flush()

    def connect(self, host: str, port: int, timeout: float = 5.0, local_port: int | None = None) -> Connection:
        """Active open; returns an ESTABLISHED connection or raises TcpError with the reason."""
        rip = ip_to_int(host)
        mac = self.resolve(rip)
        conn = self.open(rip, port, mac, local_port)
        deadline = time.monotonic() + timeout
        while conn.state not in (CLOSED, ESTABLISHED):
            if time.monotonic() >= deadline:
                conn.abort("connect timed out")
                break
            self.poll()
        if conn.state == CLOSED:
            raise TcpError(conn.reason or "connection failed")
        return conn

    def open(self, rip: int, rport: int, rmac: int, local_port: int | None = None) -> Connection:
        """Start an active open without waiting (SYN-SENT)."""
        slot = self._free_slot()
        if slot < 0:
            raise TcpError(f"no free connection slot (max_conns={self.nslots})")
        if local_port is None:
            local_port = self.next_ephemeral
            self.next_ephemeral = 49152 + (self.next_ephemeral - 49152 + 1) % 16384
        conn = Connection(self, slot, self.cfg, local_port, rip, rport, rmac)
        self.conns[slot] = conn
        conn.open_active(self.now())
        self.flush()
        return conn

    def listen(self, port: int, backlog: int = 8) -> Listener:
        if port in self.listeners:
            raise ValueError(f"port {port} already listening")
        lst = Listener(self, port, backlog)
        self.listeners[port] = lst
        return lst

    # ------------------------------------------------------------------ input
    def poll(self) -> int:
        """One bounded step: fast path + slow path + timers + output. Returns frames received."""
        now = self.now()
        a = self.pool.arrays
        nslow = poll_step(self.port.state, a, self.bufs, BURST, self.hot, self.nslots, self.txq, self.rxq,
                          self.tmpl, self.sg, self.slow, self.acks, self.opts, self.local_mac, now)
        self.process_slow(nslow, now)
        self.service(now)
        return nslow

    def process_slow(self, nslow: int, now: int | None = None) -> None:
        """Run the slow path on ``self.slow[:nslow]``; frees each buffer unless it became a reply."""
        now = self.now() if now is None else now
        a = self.pool.arrays
        if self.net is not None and nslow:
            self.net.set_now()
        for i in range(nslow):
            b = int(self.slow[i])
            kept = False
            try:
                kept = self._slow_input(b, now)
            finally:
                if not kept:
                    pool_free(a, b)

    def service(self, now: int | None = None) -> None:
        """Timers, queued output and pending ACKs of every connection, then transmit."""
        now = self.now() if now is None else now
        for c in self.conns:
            if c is None:
                continue
            c.on_timers(now)
            if c.slot >= 0:
                h = c.h
                h[T.PY_DEADLINE] = c.next_deadline()
                if h[T.TX_END] > h[T.TX_NXT] or h[T.TX_FIN] == 1:
                    c.output(now)
                if h[T.ACK_PENDING] and not self.cfg.delayed_ack:
                    c.send_ack(now)
        self.flush()
        self.port.poll()             # the port's control plane (memif handshake, link state)

    # ------------------------------------------------------------------ compiled loops
    def clock(self) -> np.ndarray:
        if getattr(self, "_clock", None) is None:
            from .loops import tsc_clock
            self._clock = tsc_clock(self.now())
        return self._clock

    def echo_step(self, iters: int = 2000) -> int:
        """Echo every byte received on every connection, in Numba; slow path in between."""
        from .loops import echo_step
        if getattr(self, "_scratch", None) is None:
            self._scratch = np.zeros(65536, np.uint8)
        echoed, nslow, _ = echo_step(self.port.state, self.pool.arrays, self.bufs, self.hot, self.nslots,
                                     self.txq, self.rxq, self.tmpl, self.sg, self.slow, self.opts,
                                     self._scratch, iters, self.local_mac, self.clock())
        self.process_slow(nslow)
        self.service()
        return echoed

    def pingpong(self, conn: Connection, msg: bytes, n: int, timeout: float = 30.0) -> np.ndarray:
        """``n`` round trips of ``msg`` on an echoing peer, timed in TSC ticks by the compiled
        loop; returns nanoseconds per round trip."""
        from .loops import pingpong
        m = np.frombuffer(msg, np.uint8).copy()
        rtt = np.zeros(n, np.int64)
        scratch = np.zeros(max(len(msg), 64), np.uint8)
        done = 0
        deadline = time.monotonic() + timeout
        clock = self.clock()
        while done < n:
            if time.monotonic() > deadline:
                raise TcpError(f"pingpong stalled after {done}/{n} round trips ({conn.state_name} {conn.reason})")
            k, nslow, pending = pingpong(self.port.state, self.pool.arrays, self.bufs, self.hot, self.nslots,
                                         conn.slot, self.txq, self.rxq, self.tmpl, self.sg, self.slow, self.opts,
                                         m, len(m), n - done, rtt[done:], 200_000, self.local_mac, clock,
                                         scratch)
            done += k
            self.process_slow(nslow)
            self.service()
            if pending:                      # an interrupted round: drain its echo, do not time it
                if not self.run_until(lambda: conn.readable() >= pending or conn.state_name != "ESTABLISHED",
                                      max(deadline - time.monotonic(), 0.01)):
                    continue
                conn.recv(pending)
                self.interrupted_rounds = getattr(self, "interrupted_rounds", 0) + 1
        return rtt * (int(clock[2]) * 1000) >> 32

    def _slow_input(self, b: int, now: int) -> bool:
        """One frame the fast path did not take. Returns True when the buffer was reused
        (an ARP/ICMP reply queued for transmission), False when the caller frees it."""
        a = self.pool.arrays
        off = b * int(a.meta[BUF_SIZE]) + int(a.data_off[b])
        ln = int(a.data_len[b])
        sg = self.sg
        cause = tcp_decode(a.data, off, ln, sg)
        if cause != C_OK:
            if cause == C_NOT_TCP and self.net is not None:
                act = self.net.input(self.pool, b)          # ARP, ICMP echo, IGMP, UDP: the IPv4 stack
                if act == ACT_TX:
                    self._queue_tx(b)
                    return True
                self.count("rx_other")
                return False
            if cause == C_NOT_TCP and ln >= 14 and rd16(a.data, off + 12) == ETHERTYPE_ARP:
                self._arp_input(a.data, off, off + ln)
                return False
            self.count("rx_" + CAUSE_NAMES[cause])
            return False
        dst_mac = (int(a.data[off]) << 40) | int.from_bytes(a.data[off + 1:off + 6].tobytes(), "big")
        # RFC 1122 §4.2.3.10: TCP never accepts a segment sent as a link-layer broadcast
        if int(sg[SG_DST]) != self.local_ip or dst_mac != self.local_mac:
            self.count("rx_not_for_us")
            return False
        self.count("slow_path_segments")
        s = find_slot(self.hot, self.nslots, sg)
        if s >= 0 and self.conns[s] is not None:
            self.conns[s].on_segment(sg, a.data, now)
            return False
        flags = int(sg[SG_FLAGS])
        lst = self.listeners.get(int(sg[SG_DPORT]))
        if lst is not None:
            if flags & RST:
                return False
            if flags & ACK:
                self.send_rst_for(sg)                     # §3.10.7.2: <SEQ=SEG.ACK><CTL=RST>
                return False
            if flags & SYN:
                if len(lst.pending) + len(lst.ready) >= lst.backlog:
                    self.count("syn_backlog_full")
                    return False
                slot = self._free_slot()
                if slot < 0:
                    self.count("syn_no_slot")
                    return False
                conn = Connection(self, slot, self.cfg, lst.port, int(sg[SG_SRC]), int(sg[SG_SPORT]),
                                  int(sg[SG_SRC_MAC]), listener=lst)
                self.conns[slot] = conn
                lst.pending.append(conn)
                conn.open_passive(sg, now)
            return False
        self.count("rx_no_connection")
        self.send_rst_for(sg)
        return False

    def _arp_input(self, data, off, end) -> None:
        p = off + 14
        if arp_check(data, p, end) != OK:
            self.count("rx_bad_arp")
            return
        spa, sha = int(arp_spa(data, p)), int(arp_sha(data, p))
        if spa:
            self.arp[spa] = sha
        if int(arp_oper(data, p)) == ARP_REQUEST and int(arp_tpa(data, p)) == self.local_ip:
            self.count("arp_replies")
            self._send_arp(ARP_REPLY, sha, sha, spa)

    # ------------------------------------------------------------------ helpers for callers
    def run_until(self, cond, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not cond():
            if time.monotonic() >= deadline:
                return False
            self.poll()
        return True

    def counters(self) -> dict[str, int]:
        d = dict(self.stats)
        d["fast_rx"] = int(self.hot[:, T.FAST_RX].sum())
        d["fast_tx"] = int(self.hot[:, T.FAST_TX].sum())
        return d

    def close(self) -> None:
        for c in list(self.conns):
            if c is not None:
                c.abort("stack closed")
        self.flush()

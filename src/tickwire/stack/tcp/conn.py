"""The Python slow path: one TCP connection's RFC 9293 event processing.

Handshakes, every state transition, retransmission, out-of-order data, FIN,
RST and timers live here. The established-state common case is handled by
``fastpath.fast_input`` / ``fast_send`` on the same ``hot`` row; this class is
what runs when the fast path steps aside, and it is a complete TCP on its own.

Section numbers refer to RFC 9293 (TCP), RFC 5681 (congestion control),
RFC 6298 (RTO), RFC 6582 (NewReno), RFC 7323 (window scale, timestamps),
RFC 2018 (SACK), RFC 5961 (blind RST/SYN mitigation).
"""

from __future__ import annotations

import os

import numpy as np

from . import seq as sq
from . import tcb as T
from .config import TcpConfig
from .reassembly import Reassembly
from .rto import RtoEstimator
from .segment import (SG_ACK, SG_DATA_LEN, SG_DATA_OFF, SG_FLAGS, SG_MSS, SG_NSACK, SG_SACK, SG_SACK_PERM,
                      SG_SEQ, SG_TS, SG_TSECR, SG_TSVAL, SG_WND, SG_WSCALE)
from .states import (ACK, CLOSE_WAIT, CLOSED, CLOSING, ESTABLISHED, FIN, FIN_WAIT_1, FIN_WAIT_2,
                     LAST_ACK, LISTEN, NAMES, PSH, RECV_DATA_STATES, RST, SYN, SYN_RECEIVED,
                     SYN_SENT, SYNCHRONIZED, TIME_WAIT)

MASK = 0xFFFFFFFF


class TcpError(ConnectionError):
    """The connection failed; ``reason`` says why (reset by peer, timeout, ...)."""


class Connection:
    """One connection in a slot of its stack's tables. Created by ``TcpStack.connect``
    (active open) or by a listener on an arriving SYN (passive open)."""

    def __init__(self, stack, slot: int, cfg: TcpConfig, local_port: int, remote_ip: int,
                 remote_port: int, remote_mac: int, listener=None):
        self.stack, self.slot, self.cfg = stack, slot, cfg
        self.h = stack.hot[slot]
        self.h[:] = 0
        self.local_port, self.remote_ip, self.remote_port = local_port, remote_ip, remote_port
        self.remote_mac = remote_mac
        self.listener = listener
        self.reason = ""                 # why the connection closed, if not gracefully
        self.rto = RtoEstimator(min_rto=cfg.min_rto_us)
        self.reasm = Reassembly(cfg.rcv_buf, cfg.max_ooo_pieces)
        self.retries = 0
        self.persist_deadline = 0
        self.persist_backoff = 0
        self.keepalive_deadline = 0
        self.keepalive_sent = 0
        self.timewait_deadline = 0
        self.delack_deadline = 0
        self.rtt_seq = -1                # Karn: the segment being timed (no timestamps)
        self.sacked: list[list[int]] = []  # SACK scoreboard: send-stream [start, end) the peer holds
        self.rexmit_next = 0             # in recovery: next stream offset a hole may be resent from
        self.rtt_start = 0
        self.peer_fin_seen = False
        self.eof = False
        self.counters = {"retransmits": 0, "fast_retransmits": 0, "rto_expired": 0, "dupacks": 0,
                         "zero_window_probes": 0, "keepalives": 0, "challenge_acks": 0,
                         "out_of_window": 0, "ooo_dropped": 0, "rst_sent": 0, "sack_retransmits": 0,
                         "sack_blocks_bad": 0, "dsack_blocks": 0}
        h = self.h
        h[T.LOCAL_IP], h[T.REMOTE_IP] = stack.local_ip, remote_ip
        h[T.LOCAL_PORT], h[T.REMOTE_PORT] = local_port, remote_port
        h[T.RTO_US] = self.rto.rto
        h[T.DELAYED_ACK] = 1 if cfg.delayed_ack else 0
        h[T.RX_FIN] = -1
        h[T.SND_MSS] = 536               # RFC 9293 §3.7.1 default until the peer's MSS is seen
        h[T.TS_BASE] = int.from_bytes(os.urandom(4), "little")

    # ------------------------------------------------------------------ helpers
    @property
    def state(self) -> int:
        return int(self.h[T.STATE])

    @property
    def state_name(self) -> str:
        return NAMES[self.state]

    def _set_state(self, st: int) -> None:
        self.stack.trace(self, f"{NAMES[self.state]} -> {NAMES[st]}")
        self.h[T.STATE] = st

    def g(self, f: int) -> int:
        return int(self.h[f])

    def _snd_data_seq(self, off: int) -> int:
        """Sequence number of send-stream byte ``off`` (SYN takes ISS)."""
        return (self.g(T.ISS) + 1 + off) & MASK

    def _rcv_off(self, seqno: int) -> int:
        """Receive-stream offset of sequence number ``seqno`` (near RCV.NXT)."""
        return self.g(T.RX_NXT) + sq.sub(seqno, self.g(T.RCV_NXT))

    def _rcv_wnd(self) -> int:
        """RCV.WND for the acceptability test: what we advertised, at least."""
        free = self.cfg.rcv_buf - (self.g(T.RX_NXT) - self.g(T.RX_READ))
        adv = sq.sub(self.g(T.RCV_ADV), self.g(T.RCV_NXT))
        return max(free, adv, 0)

    def _flight(self) -> int:
        return sq.sub(self.g(T.SND_MAX), self.g(T.SND_UNA))

    # ------------------------------------------------------------------ opens
    def open_active(self, now: int) -> None:
        """RFC 9293 §3.10.1 OPEN call, active: send SYN, enter SYN-SENT."""
        iss = self.stack.new_isn(self, now)
        self._init_send(iss)
        self._set_state(SYN_SENT)
        self._send_syn(now, with_ack=False)

    def open_passive(self, sg, now: int) -> None:
        """A SYN arrived at a listener (§3.10.7.2): record IRS, send SYN,ACK, enter SYN-RECEIVED."""
        self._init_send(self.stack.new_isn(self, now))
        self._take_syn_options(sg)
        self._init_recv(int(sg[SG_SEQ]))
        self._set_state(SYN_RECEIVED)
        self._send_syn(now, with_ack=True)

    def _init_send(self, iss: int) -> None:
        h = self.h
        h[T.ISS] = iss
        h[T.SND_UNA] = iss
        h[T.SND_NXT] = iss
        h[T.SND_MAX] = iss
        h[T.CWND] = 10 * 1460            # RFC 6928 initial window; re-set from the MSS below
        h[T.SSTHRESH] = 1 << 30

    def _init_recv(self, irs: int) -> None:
        h = self.h
        h[T.IRS] = irs
        h[T.RCV_NXT] = (irs + 1) & MASK
        h[T.RCV_ADV] = h[T.RCV_NXT]

    def _take_syn_options(self, sg) -> None:
        """Negotiate options from the peer's SYN (RFC 7323 §1.3: both SYNs must carry them)."""
        h, cfg = self.h, self.cfg
        mss = int(sg[SG_MSS])
        h[T.SND_MSS] = max(88, min(mss if mss > 0 else 536, cfg.mss))
        h[T.CWND] = 10 * int(h[T.SND_MSS])
        self.peer_ws = bool(sg[SG_WSCALE] >= 0)
        if cfg.window_scaling and self.peer_ws:
            h[T.SND_WSCALE] = int(sg[SG_WSCALE])
            h[T.RCV_WSCALE] = self.stack.rcv_wscale(cfg)
        else:
            h[T.SND_WSCALE] = 0
            h[T.RCV_WSCALE] = 0
        if cfg.timestamps and sg[SG_TS]:
            h[T.TS_OK] = 1
            h[T.TS_RECENT] = int(sg[SG_TSVAL])
        if cfg.sack and sg[SG_SACK_PERM]:
            h[T.SACK_OK] = 1
        h[T.SND_WND] = int(sg[SG_WND])           # §3.10.7.3: the window in a SYN is never scaled
        h[T.SND_WL1] = int(sg[SG_SEQ])
        h[T.SND_WL2] = int(sg[SG_ACK])

    def _syn_options(self, now: int, reply_to_syn: bool) -> bytes:
        """MSS, window scale, SACK-permitted, timestamps (RFC 9293 §3.2; RFC 7323; RFC 2018).
        A SYN,ACK only echoes what the peer's SYN offered."""
        cfg, h = self.cfg, self.h
        o = bytearray(b"\x02\x04" + cfg.mss.to_bytes(2, "big"))
        if cfg.window_scaling and (not reply_to_syn or self.peer_ws):
            o += b"\x01\x03\x03" + bytes([self.stack.rcv_wscale(cfg)])
        if cfg.sack and (not reply_to_syn or h[T.SACK_OK]):
            o += b"\x01\x01\x04\x02"
        if cfg.timestamps and (not reply_to_syn or h[T.TS_OK]):
            tsval = (now // 1000 + self.g(T.TS_BASE)) & MASK
            tsecr = self.g(T.TS_RECENT) if reply_to_syn else 0
            o += b"\x01\x01\x08\x0a" + tsval.to_bytes(4, "big") + tsecr.to_bytes(4, "big")
        return bytes(o)

    peer_ws = False

    def _send_syn(self, now: int, with_ack: bool) -> None:
        h = self.h
        opts = self._syn_options(now, with_ack)
        # The SYN carries no timestamps in the template: TS_OK is applied after the handshake.
        ts_ok = self.g(T.TS_OK)
        h[T.TS_OK] = 0
        self.stack.build_template(self, with_ts=False)
        flags = SYN | (ACK if with_ack else 0)
        if not with_ack:
            h[T.RCV_NXT] = 0
        self.stack.send_segment(self, flags, self.g(T.ISS), 0, 0, opts, now, syn=True)
        h[T.TS_OK] = ts_ok
        if ts_ok:           # every later segment carries timestamps (RFC 7323 §3.2)
            self.stack.build_template(self, with_ts=True)
        h[T.SND_NXT] = (self.g(T.ISS) + 1) & MASK
        if sq.lt(self.g(T.SND_MAX), self.g(T.SND_NXT)):
            h[T.SND_MAX] = h[T.SND_NXT]
        self._arm_rtx(now)

    def _established(self, now: int) -> None:
        """Entering ESTABLISHED: switch the template to the negotiated options."""
        self._set_state(ESTABLISHED)
        if self.g(T.TS_OK):
            # RFC 9293 §3.7.1 / RFC 6691: the MSS counts data only; the 12 bytes of timestamps
            # in every segment come out of it, or full segments would exceed the MTU.
            self.h[T.SND_MSS] = self.g(T.SND_MSS) - 12
        self.stack.build_template(self, with_ts=bool(self.g(T.TS_OK)))
        self.h[T.LAST_RX_US] = now
        self._arm_keepalive(now)
        if self.listener is not None:
            self.listener.on_established(self)

    # ------------------------------------------------------------------ timers
    def _arm_rtx(self, now: int) -> None:
        self.h[T.RTO_US] = self.rto.rto
        self.h[T.RTX_DEADLINE] = now + self.rto.rto

    def _arm_keepalive(self, now: int) -> None:
        if self.cfg.keepalive_idle_us > 0:
            self.keepalive_deadline = now + self.cfg.keepalive_idle_us
            self.keepalive_sent = 0

    def next_deadline(self) -> int:
        ds = [d for d in (self.g(T.RTX_DEADLINE), self.persist_deadline, self.keepalive_deadline,
                          self.timewait_deadline, self.delack_deadline) if d]
        return min(ds) if ds else 0

    def on_timers(self, now: int) -> None:
        """Called by the stack on every poll (cheap when nothing is due)."""
        h = self.h
        if h[T.RTT_SAMPLE_US]:                     # a sample taken by the fast path
            self.rto.sample(self.g(T.RTT_SAMPLE_US))
            h[T.RTT_SAMPLE_US] = 0
            h[T.RTO_US] = self.rto.rto
            self.retries = 0
        st = self.state
        if st == TIME_WAIT:
            if now >= self.timewait_deadline:
                self._close("")
            return
        d = self.g(T.RTX_DEADLINE)
        if d and now >= d:
            self._on_rto(now)
        if self.persist_deadline and now >= self.persist_deadline:
            self._on_persist(now)
        if self.keepalive_deadline and now >= self.keepalive_deadline:
            self._on_keepalive(now)
        if self.delack_deadline and now >= self.delack_deadline:
            self.delack_deadline = 0
            if h[T.ACK_PENDING]:
                self.send_ack(now)

    def _on_rto(self, now: int) -> None:
        """RFC 6298 §5.4-5.7 and RFC 5681 §3.1: retransmit the earliest unacknowledged
        segment, back off, collapse the congestion window, go back to SND.UNA."""
        h, st = self.h, self.state
        if h[T.SND_WND] == 0 and st not in (SYN_SENT, SYN_RECEIVED):
            self._enter_persist(now)                 # a closed window is not a loss: probe instead
            return
        self.counters["rto_expired"] += 1
        self.retries += 1
        limit = {SYN_SENT: self.cfg.syn_retries, SYN_RECEIVED: self.cfg.synack_retries}.get(st, self.cfg.max_retries)
        if self.retries > limit:
            what = {SYN_SENT: "connection timed out: no answer to SYN",
                    SYN_RECEIVED: "handshake timed out: no ACK for SYN,ACK"}.get(
                st, "connection timed out: peer stopped acknowledging data")
            self.abort(f"{what} after {self.retries - 1} retransmissions", send_rst=st != SYN_RECEIVED)
            return
        self.rto.back_off()
        self.rtt_seq = -1                            # Karn's rule
        if st in (SYN_SENT, SYN_RECEIVED):
            self.counters["retransmits"] += 1
            self._send_syn(now, with_ack=st == SYN_RECEIVED)
            h[T.RTX_DEADLINE] = now + self.rto.rto
            return
        mss = self.g(T.SND_MSS)
        h[T.SSTHRESH] = max(self._flight() // 2, 2 * mss)
        h[T.CWND] = mss
        h[T.DUPACKS] = 0
        h[T.RECOVER] = 0
        self.sacked.clear()              # RFC 2018 §8: after a timeout, SACK information is not trusted
        self.rexmit_next = 0
        # go back N: resend from SND.UNA (the receiver drops what it already has)
        h[T.SND_NXT] = h[T.SND_UNA]
        h[T.TX_NXT] = h[T.TX_UNA]
        if h[T.TX_FIN] == 2:
            h[T.TX_FIN] = 1
        h[T.RTX_DEADLINE] = 0
        self.counters["retransmits"] += 1
        self.output(now, force_one=True)
        h[T.RTX_DEADLINE] = now + self.rto.rto
        h[T.RTO_US] = self.rto.rto

    def _enter_persist(self, now: int) -> None:
        """The peer's window is zero: stop the retransmission timer (a closed window is not a
        loss), go back to SND.UNA, and let the persist timer probe (RFC 9293 §3.8.6.1)."""
        h = self.h
        h[T.RTX_DEADLINE] = 0
        h[T.SND_NXT] = h[T.SND_UNA]
        h[T.TX_NXT] = h[T.TX_UNA]
        if h[T.TX_FIN] == 2:
            h[T.TX_FIN] = 1
        if not self.persist_deadline:
            self.persist_backoff = 0
            self.persist_deadline = now + self.rto.rto
            self.persist_sent_at = 0

    persist_sent_at = 0

    def _on_persist(self, now: int) -> None:
        """Zero-window probe (RFC 9293 §3.8.6.1): send the next byte beyond the closed window
        (again and again, backing off like the RTO) so the peer's answer carries its window.
        A peer that answers is never given up on; one that stops answering is aborted after
        ``max_retries`` probes, like a peer that stops acknowledging data."""
        h = self.h
        self.persist_deadline = 0
        if h[T.SND_WND] > 0 or (self.g(T.TX_END) == self.g(T.TX_UNA) and h[T.TX_FIN] != 1):
            return
        if self.persist_sent_at and self.g(T.LAST_RX_US) < self.persist_sent_at:
            self.retries += 1
            if self.retries > self.cfg.max_retries:
                self.abort(f"connection timed out: {self.retries - 1} zero-window probes unanswered")
                return
        else:
            self.retries = 0
        self.counters["zero_window_probes"] += 1
        off = self.g(T.TX_UNA)
        if off < self.g(T.TX_END):
            self.stack.send_segment(self, ACK, self.g(T.SND_UNA), off, 1, b"", now)
            h[T.SND_NXT] = self._snd_data_seq(off + 1)
            h[T.TX_NXT] = off + 1
            if sq.lt(self.g(T.SND_MAX), self.g(T.SND_NXT)):
                h[T.SND_MAX] = h[T.SND_NXT]
        self.persist_sent_at = now
        self.persist_backoff = min(self.persist_backoff + 1, 6)
        self.persist_deadline = now + min(self.rto.rto << self.persist_backoff, 60_000_000)

    def _on_keepalive(self, now: int) -> None:
        """RFC 1122 §4.2.3.6: after an idle period send SEG.SEQ = SND.NXT - 1 with no data,
        which forces an ACK; give up after ``keepalive_probes`` unanswered probes."""
        if self.state not in (ESTABLISHED, CLOSE_WAIT, FIN_WAIT_2):
            self.keepalive_deadline = 0
            return
        idle = now - self.g(T.LAST_RX_US)
        if idle < self.cfg.keepalive_idle_us and self.keepalive_sent == 0:
            self.keepalive_deadline = self.g(T.LAST_RX_US) + self.cfg.keepalive_idle_us
            return
        if self.keepalive_sent >= self.cfg.keepalive_probes:
            self.abort(f"keepalive timed out: {self.keepalive_sent} probes unanswered")
            return
        self.keepalive_sent += 1
        self.counters["keepalives"] += 1
        self.stack.send_segment(self, ACK, (self.g(T.SND_NXT) - 1) & MASK, 0, 0, b"", now)
        self.keepalive_deadline = now + self.cfg.keepalive_interval_us

    # ------------------------------------------------------------------ user calls
    def send(self, data, now: int | None = None) -> int:
        """Queue bytes; returns how many fit the send ring (RFC 9293 §3.10.2 SEND)."""
        st = self.state
        if st not in (SYN_SENT, SYN_RECEIVED, ESTABLISHED, CLOSE_WAIT) or self.g(T.TX_FIN):
            raise TcpError(self.reason or f"connection closing ({self.state_name})")
        now = self.stack.now() if now is None else now
        mv = memoryview(data).cast("B")
        room = self.cfg.snd_buf - (self.g(T.TX_END) - self.g(T.TX_UNA))
        n = min(room, len(mv))
        if n > 0:
            end = self.g(T.TX_END)
            self.stack.ring_put(self.stack.txq[self.slot], end, np.frombuffer(mv[:n], np.uint8), n)
            self.h[T.TX_END] = end + n
            self.output(now)
        return n

    leftover = b""                        # bytes still unread when the slot was released

    def recv(self, n: int, now: int | None = None) -> bytes:
        """Take up to ``n`` delivered bytes (RFC 9293 §3.10.3 RECEIVE); b"" when none are ready
        (``eof`` tells end of stream, ``reason`` a failure)."""
        if self.slot < 0:
            out, self.leftover = bytes(self.leftover[:n]), self.leftover[n:]
            return out
        k = min(n, self.readable())
        if k <= 0:
            return b""
        now = self.stack.now() if now is None else now
        out = np.empty(k, np.uint8)
        self.stack.ring_get(self.stack.rxq[self.slot], self.g(T.RX_READ), out, k)
        self.h[T.RX_READ] += k
        # Window update (RFC 9293 §3.8.6.2.2, receiver SWS avoidance): tell the peer when the
        # advertised window was below half the ring and reading has opened it past that.
        half = self.cfg.rcv_buf // 2
        if self.state in RECV_DATA_STATES and sq.sub(self.g(T.RCV_ADV), self.g(T.RCV_NXT)) < half \
                and self.cfg.rcv_buf - self.readable() >= half:
            self.send_ack(now)
        return out.tobytes()

    def readable(self) -> int:
        if self.slot < 0:
            return len(self.leftover)
        return self.g(T.RX_NXT) - self.g(T.RX_READ)

    @property
    def is_closed(self) -> bool:
        return self.state == CLOSED

    def close(self, now: int | None = None) -> None:
        """RFC 9293 §3.10.4 CLOSE: queue a FIN after the pending data."""
        now = self.stack.now() if now is None else now
        st = self.state
        if st in (CLOSED, LISTEN):
            return
        if st == SYN_SENT:
            self._close("")
            return
        if st in (SYN_RECEIVED, ESTABLISHED):
            self.h[T.TX_FIN] = 1
            self._set_state(FIN_WAIT_1)
        elif st == CLOSE_WAIT:
            self.h[T.TX_FIN] = 1
            self._set_state(LAST_ACK)
        else:
            return
        self.output(now)

    def abort(self, reason: str = "aborted by user", send_rst: bool = True) -> None:
        """RFC 9293 §3.10.5 ABORT: send RST (in synchronized states) and forget the connection."""
        if send_rst and self.state in SYNCHRONIZED + (SYN_RECEIVED,) and self.state != TIME_WAIT:
            self.counters["rst_sent"] += 1
            self.stack.send_segment(self, RST | ACK, self.g(T.SND_NXT), 0, 0, b"", self.stack.now())
        self._close(reason)

    def _close(self, reason: str) -> None:
        if reason and not self.reason:
            self.reason = reason
        if self.state != CLOSED:
            self._set_state(CLOSED)
        self.h[T.RTX_DEADLINE] = 0
        self.persist_deadline = self.keepalive_deadline = self.timewait_deadline = self.delack_deadline = 0
        self.reasm.clear()
        self.stack.release(self)

    # ------------------------------------------------------------------ output
    def output(self, now: int, force_one: bool = False) -> None:
        """Send what the windows allow (RFC 9293 §3.8.6, RFC 5681); FIN after the last byte."""
        h = self.h
        if self.state not in (ESTABLISHED, CLOSE_WAIT, FIN_WAIT_1, CLOSING, LAST_ACK):
            return
        mss = self.g(T.SND_MSS)
        sent_any = False
        while True:
            nxt_off, end = self.g(T.TX_NXT), self.g(T.TX_END)
            unsent = end - nxt_off
            wnd = min(self.g(T.SND_WND), self.g(T.CWND))
            if force_one and not sent_any:
                wnd = max(wnd, mss)
            usable = wnd - sq.sub(self.g(T.SND_NXT), self.g(T.SND_UNA))
            if unsent > 0:
                n = min(unsent, mss, usable)
                if n <= 0:
                    if h[T.SND_WND] == 0 and self._flight() == 0:
                        self._enter_persist(now)
                    break
                if self.cfg.nagle and n < mss and self._flight() > 0:
                    break        # RFC 896: hold a small segment while data is unacknowledged
                fin = h[T.TX_FIN] == 1 and nxt_off + n == end
                flags = ACK | PSH | (FIN if fin else 0)
                seqno = self.g(T.SND_NXT)
                self.stack.send_segment(self, flags, seqno, nxt_off, n, b"", now)
                if self.rtt_seq < 0 and not h[T.TS_OK] and seqno == self.g(T.SND_MAX):
                    self.rtt_seq, self.rtt_start = (seqno + n) & MASK, now
                h[T.TX_NXT] = nxt_off + n
                h[T.SND_NXT] = (seqno + n + (1 if fin else 0)) & MASK
                if fin:
                    h[T.TX_FIN] = 2
            elif h[T.TX_FIN] == 1:
                # FIN is not limited by the peer's window (it occupies no buffer space)
                seqno = self.g(T.SND_NXT)
                self.stack.send_segment(self, ACK | FIN, seqno, nxt_off, 0, b"", now)
                h[T.SND_NXT] = (seqno + 1) & MASK
                h[T.TX_FIN] = 2
            else:
                break
            sent_any = True
            if sq.lt(self.g(T.SND_MAX), self.g(T.SND_NXT)):
                h[T.SND_MAX] = h[T.SND_NXT]
            if not h[T.RTX_DEADLINE]:
                self._arm_rtx(now)
            if force_one:
                break

    def _retransmit_first(self, now: int) -> None:
        """Resend one MSS from SND.UNA without moving SND.NXT (fast retransmit, RFC 5681 §3.2)."""
        h = self.h
        off = self.g(T.TX_UNA)
        n = min(self.g(T.TX_NXT) - off, self.g(T.SND_MSS))
        fin = h[T.TX_FIN] == 2 and off + n == self.g(T.TX_END)
        if n <= 0 and not fin:
            return
        self.counters["retransmits"] += 1
        self.stack.send_segment(self, ACK | PSH | (FIN if fin else 0), self.g(T.SND_UNA), off, n, b"", now)
        self.rtt_seq = -1

    def send_ack(self, now: int) -> None:
        opts = self._sack_option()
        self.stack.send_segment(self, ACK, self.g(T.SND_NXT), 0, 0, opts, now)
        self.delack_deadline = 0

    def _sack_option(self) -> bytes:
        """SACK blocks for out-of-order data held (RFC 2018 §4), at most 3 with timestamps."""
        if not self.h[T.SACK_OK] or not len(self.reasm):
            return b""
        base_off, base_seq = self.g(T.RX_NXT), self.g(T.RCV_NXT)
        blocks = self.reasm.blocks(3 if self.h[T.TS_OK] else 4)
        o = bytearray(b"\x01\x01\x05" + bytes([2 + 8 * len(blocks)]))
        for s, e in blocks:
            o += ((base_seq + s - base_off) & MASK).to_bytes(4, "big")
            o += ((base_seq + e - base_off) & MASK).to_bytes(4, "big")
        return bytes(o)

    def _ack_now_or_later(self, now: int, force: bool) -> None:
        h = self.h
        h[T.ACK_PENDING] += 1
        if force or not self.cfg.delayed_ack or h[T.ACK_PENDING] >= 2:
            self.send_ack(now)
        elif not self.delack_deadline:
            self.delack_deadline = now + self.cfg.delayed_ack_us

    # ------------------------------------------------------------------ input
    def on_segment(self, sg, data: np.ndarray, now: int) -> None:
        """SEGMENT ARRIVES (RFC 9293 §3.10.7.3 for SYN-SENT, §3.10.7.4 otherwise)."""
        st = self.state
        if st == SYN_SENT:
            self._in_syn_sent(sg, data, now)
            return
        if st == CLOSED:
            return
        h = self.h
        flags = int(sg[SG_FLAGS])
        seg_seq, seg_ack = int(sg[SG_SEQ]), int(sg[SG_ACK])
        plen = int(sg[SG_DATA_LEN])
        seg_len = plen + (1 if flags & SYN else 0) + (1 if flags & FIN else 0)

        # SYN-RECEIVED: a retransmitted SYN means our SYN,ACK was lost; send it again.
        if st == SYN_RECEIVED and flags & SYN and not flags & ACK and seg_seq == self.g(T.IRS):
            self._send_syn(now, with_ack=True)
            return

        # First: sequence number acceptability (§3.10.7.4, the four cases).
        rcv_nxt, wnd = self.g(T.RCV_NXT), self._rcv_wnd()
        if seg_len == 0:
            ok = seg_seq == rcv_nxt if wnd == 0 else sq.between(rcv_nxt, seg_seq, rcv_nxt + wnd)
        else:
            ok = wnd > 0 and (sq.between(rcv_nxt, seg_seq, rcv_nxt + wnd)
                              or sq.between(rcv_nxt, (seg_seq + seg_len - 1) & MASK, rcv_nxt + wnd))
        if not ok:
            self.counters["out_of_window"] += 1
            self.stack.count("out_of_window")
            if not flags & RST:
                if st == TIME_WAIT and flags & FIN:
                    self.timewait_deadline = now + 2 * self.cfg.msl_us
                self.send_ack(now)
            return

        # Second: RST (RFC 5961 §3.2: exact match resets, in-window gets a challenge ACK).
        if flags & RST:
            if seg_seq != rcv_nxt:
                self.counters["challenge_acks"] += 1
                self.send_ack(now)
                return
            if st == SYN_RECEIVED and self.listener is not None:
                self._close("reset by peer during handshake")    # back to LISTEN: the listener stays
                return
            if st in (CLOSING, LAST_ACK, TIME_WAIT):
                self._close("")
                return
            self._close("connection reset by peer")
            return

        # Fourth: SYN in a synchronized state (RFC 5961 §4.2): challenge ACK, drop.
        if flags & SYN:
            self.counters["challenge_acks"] += 1
            self.send_ack(now)
            return

        # Fifth: ACK.
        if not flags & ACK:
            return
        if sg[SG_TS] and h[T.TS_OK]:
            # RFC 7323 §4.3: TS.Recent tracks the segment that fills the left edge.
            if sq.le(seg_seq, rcv_nxt) and sq.ge(int(sg[SG_TSVAL]), self.g(T.TS_RECENT)):
                h[T.TS_RECENT] = int(sg[SG_TSVAL])
        if st == SYN_RECEIVED:
            if sq.lt(self.g(T.SND_UNA), seg_ack) and sq.le(seg_ack, self.g(T.SND_MAX)):
                h[T.SND_WND] = int(sg[SG_WND]) << self.g(T.SND_WSCALE)
                h[T.SND_WL1], h[T.SND_WL2] = seg_seq, seg_ack
                self._ack_advance(sg, seg_ack, now)
                self._established(now)
                st = ESTABLISHED
            else:
                self.stack.send_rst_for(sg, seq=seg_ack)     # <SEQ=SEG.ACK><CTL=RST>
                return
        else:
            if not self._process_ack(sg, seg_seq, seg_ack, plen, flags, now):
                return
        st = self.state
        if st == CLOSED:
            return
        if st == FIN_WAIT_1 and self._fin_acked():
            self._set_state(FIN_WAIT_2)
            st = FIN_WAIT_2
        elif st == CLOSING and self._fin_acked():
            self._enter_time_wait(now)
            return
        elif st == LAST_ACK and self._fin_acked():
            self._close("")
            return
        elif st == TIME_WAIT and flags & FIN:
            self.send_ack(now)
            self.timewait_deadline = now + 2 * self.cfg.msl_us
            return

        h[T.LAST_RX_US] = now
        if self.keepalive_deadline:
            self._arm_keepalive(now)

        # Seventh: segment text.
        if plen and st in RECV_DATA_STATES:
            self._take_data(seg_seq, data, int(sg[SG_DATA_OFF]), plen, now)
        # Eighth: FIN.
        if flags & FIN and st not in (CLOSED, LISTEN, SYN_SENT):
            fin_off = self._rcv_off(seg_seq) + plen
            if h[T.RX_FIN] < 0 and fin_off >= self.g(T.RX_NXT):
                h[T.RX_FIN] = fin_off
            if self.g(T.RX_FIN) > self.g(T.RX_NXT):
                self._ack_now_or_later(now, force=True)      # FIN beyond a hole: dup ACK
        self._maybe_take_fin(now)

    def _fin_acked(self) -> bool:
        return self.g(T.TX_FIN) == 2 and self.g(T.SND_UNA) == self.g(T.SND_MAX) and \
            self.g(T.TX_UNA) == self.g(T.TX_END)

    def _process_ack(self, sg, seg_seq, seg_ack, plen, flags, now) -> bool:
        """§3.10.7.4 fifth step in a synchronized state; returns False to drop the segment."""
        h = self.h
        una, smax = self.g(T.SND_UNA), self.g(T.SND_MAX)
        if sq.lt(smax, seg_ack):
            self.send_ack(now)                 # acknowledges something not yet sent
            return False
        wnd_field = int(sg[SG_WND]) << self.g(T.SND_WSCALE)
        if sg[SG_NSACK] > 0 and h[T.SACK_OK]:
            self._take_sack(sg, seg_ack)
        if sq.lt(una, seg_ack):
            self._ack_advance(sg, seg_ack, now)
        elif seg_ack == una and plen == 0 and not flags & (SYN | FIN) and self._flight() > 0 \
                and wnd_field == self.g(T.SND_WND) and wnd_field > 0 and not self.persist_deadline:
            self._dupack(now)                  # RFC 5681 §2 "duplicate acknowledgment"
        # Window update (§3.10.7.4): only from a segment not older than the one last used.
        if sq.lt(self.g(T.SND_WL1), seg_seq) or (self.g(T.SND_WL1) == seg_seq and sq.le(self.g(T.SND_WL2), seg_ack)):
            was_zero = h[T.SND_WND] == 0
            h[T.SND_WND] = wnd_field
            h[T.SND_WL1], h[T.SND_WL2] = seg_seq, seg_ack
            if was_zero and wnd_field > 0 and self.persist_deadline:
                # window open again: leave persist, resend from SND.UNA (a probe byte the
                # peer refused is simply sent again; one it took is acknowledged already)
                self.persist_deadline = 0
                self.persist_sent_at = 0
                self.retries = 0
                if self._flight() > 0:
                    h[T.SND_NXT] = h[T.SND_UNA]
                    h[T.TX_NXT] = h[T.TX_UNA]
                    if h[T.TX_FIN] == 2:
                        h[T.TX_FIN] = 1
                    h[T.RTX_DEADLINE] = 0
        return True

    def _ack_advance(self, sg, seg_ack: int, now: int) -> None:
        """New data acknowledged: free it, sample the RTT, grow cwnd, manage the timer."""
        h = self.h
        una = self.g(T.SND_UNA)
        acked = sq.sub(seg_ack, una)
        # Convert acked sequence space to data bytes: the SYN (if unacked) and FIN take one each.
        data_acked = acked
        if una == self.g(T.ISS):
            data_acked -= 1
        data_acked = min(data_acked, self.g(T.TX_END) - self.g(T.TX_UNA))
        h[T.SND_UNA] = seg_ack
        h[T.TX_UNA] = self.g(T.TX_UNA) + max(data_acked, 0)
        if sq.lt(self.g(T.SND_NXT), seg_ack):          # after go-back-N the peer had more
            h[T.SND_NXT] = seg_ack
            h[T.TX_NXT] = min(max(self.g(T.TX_NXT), self.g(T.TX_UNA)), self.g(T.TX_END))
        if self.g(T.TX_NXT) < self.g(T.TX_UNA):
            h[T.TX_NXT] = h[T.TX_UNA]
        if self.sacked:
            una_off = self.g(T.TX_UNA)
            self.sacked = [r for r in self.sacked if r[1] > una_off]
        if h[T.TX_FIN] == 1 and self.g(T.TX_UNA) == self.g(T.TX_END) and \
                sq.gt(seg_ack, self._snd_data_seq(self.g(T.TX_END))):
            h[T.TX_FIN] = 2                  # a FIN sent before a go-back-N rewind was acknowledged
        self.retries = 0
        # RTT: timestamps when negotiated (RFC 7323 §4.1), else Karn's timed segment.
        if h[T.TS_OK] and sg[SG_TS] and sg[SG_TSECR]:
            r = ((now // 1000 + self.g(T.TS_BASE) - int(sg[SG_TSECR])) & MASK)
            if r < 60_000:
                self.rto.sample(max(r * 1000, 1))
        elif self.rtt_seq >= 0 and sq.le(self.rtt_seq, seg_ack):
            self.rto.sample(now - self.rtt_start)
            self.rtt_seq = -1
        h[T.RTO_US] = self.rto.rto
        mss = self.g(T.SND_MSS)
        if h[T.RECOVER]:
            if sq.lt(seg_ack, self.g(T.RECOVER)):
                # RFC 6582 §3.2 step 5: partial ACK, retransmit the next hole (unless the SACK
                # scoreboard already had it resent), deflate
                if self.rexmit_next <= self.g(T.TX_UNA):
                    self._retransmit_first(now)
                    self.rexmit_next = self.g(T.TX_UNA) + mss
                h[T.CWND] = max(self.g(T.CWND) - data_acked + mss, mss)
            else:
                h[T.CWND] = min(self.g(T.SSTHRESH), max(self._flight(), mss) + mss)
                h[T.RECOVER] = 0
                self.rexmit_next = 0
        elif self.g(T.CWND) < self.g(T.SSTHRESH):
            h[T.CWND] = self.g(T.CWND) + min(acked, mss)
        else:
            h[T.CWND] = self.g(T.CWND) + max(1, mss * mss // self.g(T.CWND))
        h[T.DUPACKS] = 0
        if self.g(T.SND_UNA) == self.g(T.SND_MAX):
            h[T.RTX_DEADLINE] = 0
        else:
            self._arm_rtx(now)

    def _dupack(self, now: int) -> None:
        h = self.h
        self.counters["dupacks"] += 1
        h[T.DUPACKS] += 1
        mss = self.g(T.SND_MSS)
        if h[T.RECOVER]:
            h[T.CWND] += mss                                   # RFC 5681 §3.2 step 4
            self._retransmit_sack_hole(now)                    # RFC 6675 spirit: one hole per dupack
        elif h[T.DUPACKS] == 3:
            # RFC 5681 §3.2 steps 2-3 / RFC 6582: fast retransmit, enter recovery.
            self.counters["fast_retransmits"] += 1
            h[T.SSTHRESH] = max(self._flight() // 2, 2 * mss)
            h[T.RECOVER] = self.g(T.SND_MAX) or 1
            self._retransmit_first(now)
            self.rexmit_next = self.g(T.TX_UNA) + mss
            h[T.CWND] = self.g(T.SSTHRESH) + 3 * mss

    def _take_sack(self, sg, seg_ack: int) -> None:
        """Record the peer's SACK blocks (RFC 2018 §3) as send-stream ranges. A block below the
        cumulative ACK is a D-SACK (RFC 2883); one reaching past what was sent, or empty, is
        ignored and counted."""
        base_off = self.g(T.TX_UNA)
        base_seq = self._snd_data_seq(base_off)
        top = base_off + sq.sub(self.g(T.SND_MAX), base_seq)
        for i in range(int(sg[SG_NSACK])):
            s = base_off + sq.sub(int(sg[SG_SACK + 2 * i]), base_seq)
            e = base_off + sq.sub(int(sg[SG_SACK + 2 * i + 1]), base_seq)
            if s < e <= base_off:
                self.counters["dsack_blocks"] += 1     # RFC 2883 D-SACK: a duplicate arrived; ignored
                continue
            if not (s < e <= top):
                self.counters["sack_blocks_bad"] += 1
                continue
            self.sacked.append([max(s, base_off), e])
        self.sacked.sort()
        merged: list[list[int]] = []
        for s, e in self.sacked:
            if merged and s <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], e)
            else:
                merged.append([s, e])
        self.sacked = merged[-16:]                 # bounded: the 16 highest ranges

    def _retransmit_sack_hole(self, now: int) -> None:
        """Resend one MSS of the lowest hole below the highest SACKed byte that was not
        resent yet in this recovery."""
        una = self.g(T.TX_UNA)
        start = max(self.rexmit_next, una)
        for s, e in self.sacked:
            if e <= start:
                continue
            if start < s:
                n = min(s - start, self.g(T.SND_MSS))
                self.stack.send_segment(self, ACK | PSH, self._snd_data_seq(start), start, n, b"", now)
                self.counters["retransmits"] += 1
                self.counters["sack_retransmits"] += 1
                self.rexmit_next = start + n
                return
            start = e

    def _take_data(self, seg_seq: int, data, doff: int, plen: int, now: int) -> None:
        """Seventh step: deliver in-order bytes, hold out-of-order ones, trim what we have."""
        h = self.h
        off = self._rcv_off(seg_seq)
        rx_nxt = self.g(T.RX_NXT)
        if off < rx_nxt:                      # already received prefix: trim it
            cut = rx_nxt - off
            if cut >= plen:
                self._ack_now_or_later(now, force=True)   # pure duplicate: re-ACK
                return
            doff, plen, off = doff + cut, plen - cut, rx_nxt
        limit = self.g(T.RX_READ) + self.cfg.rcv_buf         # ring end: never write past it
        if off + plen > limit:
            plen = limit - off
            if plen <= 0:
                self._ack_now_or_later(now, force=True)
                return
        if off == rx_nxt:
            self.stack.ring_put(self.stack.rxq[self.slot], off, data[doff:doff + plen], plen)
            rx_nxt = off + plen
            more = self.reasm.pop_ready(rx_nxt)
            if more:
                self.stack.ring_put(self.stack.rxq[self.slot], rx_nxt, np.frombuffer(more, np.uint8), len(more))
                rx_nxt += len(more)
            h[T.RCV_NXT] = (self.g(T.RCV_NXT) + rx_nxt - self.g(T.RX_NXT)) & MASK
            h[T.RX_NXT] = rx_nxt
            h[T.OOO] = len(self.reasm)
            # RFC 5681 §4.2: ACK at once when a segment fills (part of) a hole.
            self._ack_now_or_later(now, force=bool(more) or len(self.reasm) > 0)
        else:
            if not self.reasm.insert(off, data[doff:doff + plen].tobytes()):
                self.counters["ooo_dropped"] += 1
                self.stack.count("ooo_dropped")
            h[T.OOO] = len(self.reasm)
            self._ack_now_or_later(now, force=True)    # out of order: immediate dup ACK (SACK)

    def _maybe_take_fin(self, now: int) -> None:
        h = self.h
        if h[T.RX_FIN] < 0 or self.g(T.RX_NXT) != self.g(T.RX_FIN) or self.peer_fin_seen:
            return
        self.peer_fin_seen = True
        self.eof = True
        h[T.RCV_NXT] = (self.g(T.RCV_NXT) + 1) & MASK
        self.send_ack(now)
        st = self.state
        if st in (SYN_RECEIVED, ESTABLISHED):
            self._set_state(CLOSE_WAIT)
        elif st == FIN_WAIT_1:
            if self._fin_acked():
                self._enter_time_wait(now)
            else:
                self._set_state(CLOSING)
        elif st == FIN_WAIT_2:
            self._enter_time_wait(now)

    def _enter_time_wait(self, now: int) -> None:
        self._set_state(TIME_WAIT)
        self.h[T.RTX_DEADLINE] = 0
        self.persist_deadline = self.keepalive_deadline = 0
        self.timewait_deadline = now + 2 * self.cfg.msl_us
        self.stack.on_time_wait(self)

    def _in_syn_sent(self, sg, data, now: int) -> None:
        """RFC 9293 §3.10.7.3."""
        h = self.h
        flags = int(sg[SG_FLAGS])
        seg_ack = int(sg[SG_ACK])
        iss = self.g(T.ISS)
        acceptable = False
        if flags & ACK:
            if sq.le(seg_ack, iss) or sq.gt(seg_ack, self.g(T.SND_MAX)):
                if not flags & RST:
                    self.stack.send_rst_for(sg, seq=seg_ack)
                return
            acceptable = True
        if flags & RST:
            if acceptable:
                self._close("connection refused by peer (RST)")
            return
        if not flags & SYN:
            return
        self._take_syn_options(sg)
        self._init_recv(int(sg[SG_SEQ]))
        if acceptable:
            h[T.SND_UNA] = seg_ack
            h[T.SND_WND] = int(sg[SG_WND])       # SYN windows are not scaled (RFC 7323 §2.2)
            if h[T.TS_OK] and sg[SG_TSECR]:
                r = ((now // 1000 + self.g(T.TS_BASE) - int(sg[SG_TSECR])) & MASK)
                if r < 60_000 and self.retries == 0:
                    self.rto.sample(max(r * 1000, 1))
            self.retries = 0
            h[T.RTX_DEADLINE] = 0
            self._established(now)
            self.send_ack(now)
            plen = int(sg[SG_DATA_LEN])
            if plen:                               # data on a SYN,ACK is rare but legal
                self._take_data((int(sg[SG_SEQ]) + 1) & MASK, data, int(sg[SG_DATA_OFF]), plen, now)
            self.output(now)
        else:
            # Simultaneous open (§3.5 figure 8): SYN-RECEIVED, send SYN,ACK with our ISS.
            self._set_state(SYN_RECEIVED)
            self._send_syn(now, with_ack=True)

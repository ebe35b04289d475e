"""FIXP session: the client (order/session.py) against the venue side
(sim/gateway_session.py), frames passed through the real codec and frame checker."""

import numpy as np

from tickwire.order import wire_layout as W
from tickwire.order.oe_codec import enc_exec, enc_new_order, frame_check, rd_seqnum, template_of
from tickwire.order.session import (A_BUSINESS, A_DOWN, A_DROP, A_RESET, A_UP, SS_DUPLICATES, SS_GAPS, SS_LAPSES,
                                    SS_NEXT_IN, SS_RT_REQUESTS, SS_STATE, ST_DOWN, ST_ESTABLISHED, client_connect,
                                    client_garbage, client_on_frame, client_poll, new_session, next_out_seq)
from tickwire.sim.gateway_session import (journal_put, new_server_session, server_lost, server_on_frame,
                                          server_poll)

T = 10**15


def frames(buf, n):
    off, out = 0, []
    while off < n:
        k = frame_check(buf, off, n - off)
        assert k > 0
        out.append((off, k))
        off += k
    return out


class Pair:
    def __init__(self):
        self.c = new_session(firm=9, keepalive_ms=100)
        self.s, self.j, self.jl = new_server_session(keepalive_ms=100, journal=64)
        self.now = T
        self.out = np.zeros(64 * 1024, np.uint8)
        self.log = []       # (direction, action, template)

    def to_server(self, buf, n):
        acts = []
        for off, k in frames(buf, n):
            a, w = server_on_frame(self.s, self.j, self.jl, buf, off, k, self.now, self.out, 0)
            acts.append(a)
            if w:
                self.to_client(self.out.copy(), w)
        return acts

    def to_client(self, buf, n):
        acts = []
        for off, k in frames(buf, n):
            a, w = client_on_frame(self.c, buf, off, k, self.now, self.out, 0)
            acts.append((a, template_of(buf, off), rd_seqnum(buf, off) if template_of(buf, off) >= 514 else 0))
            self.log.append(acts[-1])
            if w:
                self.to_server(self.out.copy(), w)
        return acts

    def connect(self):
        buf = np.zeros(256, np.uint8)
        n = client_connect(self.c, self.now, buf, 0)
        self.to_server(buf, n)

    def venue_exec(self, clordid, deliver=True):
        """The venue sends an ack for ``clordid`` (journaled); optionally lost in transit."""
        buf = np.zeros(256, np.uint8)
        n = enc_exec(buf, 0, W.ER_NEW, 0, self.now, clordid, 1000 + clordid, 5, 1, 100, 1, 1, 0, 0, 0, 0, 0)
        seq = journal_put(self.s, self.j, self.jl, buf, 0, n)
        if deliver:
            return self.to_client(buf, n)
        return seq

    def client_order(self, clordid):
        buf = np.zeros(256, np.uint8)
        n = enc_new_order(buf, 0, next_out_seq(self.c), self.now, clordid, 100, 1, 5, 1, 0)
        return self.to_server(buf, n)


def test_negotiate_establish_and_sequenced_business():
    p = Pair()
    p.connect()
    assert p.c[SS_STATE] == ST_ESTABLISHED and p.s[SS_STATE] == ST_ESTABLISHED
    assert (A_UP, W.ESTABLISHMENT_ACK, 0) in p.log
    assert p.client_order(1) == [A_BUSINESS]
    assert p.venue_exec(1) == [(A_BUSINESS, W.ER_NEW, 1)]
    assert p.venue_exec(2) == [(A_BUSINESS, W.ER_NEW, 2)]


def test_gap_is_recovered_by_retransmission_in_order():
    p = Pair()
    p.connect()
    p.venue_exec(1)
    p.venue_exec(2, deliver=False)
    p.venue_exec(3, deliver=False)
    p.log.clear()
    acts = p.venue_exec(4)          # seq 4 arrives, 2-3 missing
    assert acts[0][0] == A_DROP
    business = [(a, q) for a, t, q in p.log if t >= 514]
    # retransmission delivers 2, 3, 4 in order, each processed once
    assert business == [(A_DROP, 4), (A_BUSINESS, 2), (A_BUSINESS, 3), (A_BUSINESS, 4)]
    assert p.c[SS_GAPS] == 1 and p.c[SS_RT_REQUESTS] == 1 and p.c[SS_NEXT_IN] == 5


def test_duplicates_are_dropped():
    p = Pair()
    p.connect()
    buf = np.zeros(256, np.uint8)
    n = enc_exec(buf, 0, W.ER_NEW, 0, 1, 7, 1, 5, 1, 100, 1, 1, 0, 0, 0, 0, 0)
    journal_put(p.s, p.j, p.jl, buf, 0, n)
    assert p.to_client(buf, n)[0][0] == A_BUSINESS
    assert p.to_client(buf, n)[0][0] == A_DROP
    assert p.c[SS_DUPLICATES] == 1


def test_reconnect_same_uuid_fetches_what_was_missed():
    p = Pair()
    p.connect()
    p.venue_exec(1)
    server_lost(p.s)
    p.c[SS_STATE] = ST_DOWN
    p.venue_exec(2, deliver=False)       # e.g. cancel-on-disconnect reports
    p.venue_exec(3, deliver=False)
    p.log.clear()
    p.connect()                          # re-Establish, same UUID
    assert p.c[SS_STATE] == ST_ESTABLISHED
    assert [(a, q) for a, t, q in p.log if t >= 514] == [(A_BUSINESS, 2), (A_BUSINESS, 3)]


def test_venue_restart_forces_a_new_session_and_reset():
    p = Pair()
    p.connect()
    p.venue_exec(1)
    old_uuid = int(p.c[1])
    p.s, p.j, p.jl = new_server_session(keepalive_ms=100, journal=64)   # venue lost its state
    p.now += 10
    p.c[SS_STATE] = ST_DOWN
    p.log.clear()
    p.connect()
    assert (A_RESET, W.ESTABLISHMENT_REJECT, 0) in p.log
    assert p.c[SS_STATE] == ST_ESTABLISHED and int(p.c[1]) != old_uuid and p.c[SS_NEXT_IN] == 1
    assert p.venue_exec(5) == [(A_BUSINESS, W.ER_NEW, 1)]


def test_keepalive_heartbeat_and_lapse():
    p = Pair()
    p.connect()
    out = np.zeros(256, np.uint8)
    a, w = client_poll(p.c, p.now + 150_000_000, out, 0)      # idle > 100 ms: heartbeat
    assert w > 0 and template_of(out, 0) == W.SEQUENCE
    a, w = client_poll(p.c, p.now + 250_000_000, out, 0)      # silent venue > 200 ms: lost
    assert a == A_DOWN and template_of(out, 0) == W.TERMINATE and p.c[SS_LAPSES] == 1
    a, w = server_poll(p.s, p.now + 50_000_000, out, 0)
    assert w == 0


def test_venue_heartbeat_ahead_triggers_retransmit_request():
    p = Pair()
    p.connect()
    p.venue_exec(1, deliver=False)
    out = np.zeros(256, np.uint8)
    p.s[4] = p.now  # last rx
    a, w = server_poll(p.s, p.now + 150_000_000, out, 0)
    assert template_of(out, 0) == W.SEQUENCE
    p.log.clear()
    p.to_client(out, w)
    assert [(a, q) for a, t, q in p.log if t >= 514] == [(A_BUSINESS, 1)]


def test_garbage_stream_terminates():
    p = Pair()
    p.connect()
    out = np.zeros(256, np.uint8)
    w = client_garbage(p.c, p.now, out, 0, -1)
    assert template_of(out, 0) == W.TERMINATE and p.c[SS_STATE] == ST_DOWN
    assert p.to_server(out, w) == [A_DOWN]


def test_business_before_establish_is_dropped():
    p = Pair()
    buf = np.zeros(256, np.uint8)
    n = enc_new_order(buf, 0, 1, 1, 1, 100, 1, 5, 1, 0)
    assert p.to_server(buf, n) == [A_DROP]
    n = enc_exec(buf, 0, W.ER_NEW, 1, 1, 7, 1, 5, 1, 100, 1, 1, 0, 0, 0, 0, 0)
    assert p.to_client(buf, n)[0][0] == A_DROP


def test_venue_sequence_going_back_under_the_same_uuid_ends_the_session():
    """EstablishmentAck's NextSeqNo below what we already applied: the venue lost messages
    it had sent us. Accepting it would drop its next reports as duplicates; we Terminate
    (ERR_SEQ_LOWER) instead."""
    from tickwire.order.oe_codec import rd_field_u16
    from tickwire.order.session import SS_LAST_ERROR
    p = Pair()
    p.connect()
    for k in range(1, 4):
        p.venue_exec(k)
    assert p.c[SS_NEXT_IN] == 4
    server_lost(p.s)
    p.c[SS_STATE] = ST_DOWN
    p.s[2] = 2                           # the venue's next outbound seq went back (SS_NEXT_OUT)
    p.log.clear()
    sent = []
    orig = p.to_server
    p.to_server = lambda buf, n: sent.append(bytes(buf[:n])) or orig(buf, n)
    p.connect()
    assert (A_DOWN, W.ESTABLISHMENT_ACK, 0) in p.log and p.c[SS_STATE] == ST_DOWN
    assert p.c[SS_LAST_ERROR] == W.ERR_SEQ_LOWER
    last = np.frombuffer(sent[-1], np.uint8)
    assert template_of(last, 0) == W.TERMINATE and rd_field_u16(last, 0, W.F_TERM_ERR) == W.ERR_SEQ_LOWER


def test_an_unanswered_retransmit_request_ends_the_session_after_two_keepalives():
    from tickwire.order.session import SS_LAST_ERROR
    p = Pair()
    p.connect()
    p.venue_exec(1, deliver=False)
    p.s[3] = 10**9                       # the venue will not answer (its replies go nowhere)
    buf = np.zeros(256, np.uint8)
    n = enc_exec(buf, 0, W.ER_NEW, 0, p.now, 2, 1002, 5, 1, 100, 1, 1, 0, 0, 0, 0, 0)
    journal_put(p.s, p.j, p.jl, buf, 0, n)
    out = np.zeros(256, np.uint8)
    assert client_on_frame(p.c, buf, 0, n, p.now, out, 0)[0] == A_DROP     # seq 2: gap, request sent
    assert p.c[SS_RT_REQUESTS] == 1
    for dt in (50, 150):                 # heard from the venue (heartbeats), still no replay
        p.c[4] = p.now + dt * 1_000_000  # SS_LAST_RX
        a, w = client_poll(p.c, p.now + dt * 1_000_000, out, 0)
        assert a != A_DOWN
    p.c[4] = p.now + 210_000_000
    a, w = client_poll(p.c, p.now + 210_000_000, out, 0)
    assert a == A_DOWN and template_of(out, 0) == W.TERMINATE and p.c[SS_LAST_ERROR] == W.ERR_RETRANS_TIMEOUT

"""RFC 9293 state machine, exercised by two real tickwire stacks joined back to back.
Each test drives a path of figure 5 and asserts the states the connections pass
through (recorded by the stack's trace hook), so every state is reached."""

import os

import pytest

from .pair import B_IP_INT, Pair
from tickwire.stack.tcp.config import TcpConfig
from tickwire.stack.tcp.conn import TcpError

FAST = dict(min_rto_us=50_000, msl_us=100_000)


def traced(pair):
    seen = []
    pair.a._trace = pair.b._trace = seen.append
    return seen


def test_handshake_negotiates_options_and_transfers_both_ways():
    p = Pair()
    c, s = p.connect()
    from tickwire.stack.tcp import tcb as T
    assert c.g(T.SND_MSS) == 1448 and c.g(T.TS_OK) == 1 and c.g(T.SACK_OK) == 1
    assert c.g(T.SND_WSCALE) == s.g(T.RCV_WSCALE) > 0
    d1, d2 = os.urandom(2_000_000), os.urandom(1_000_000)
    assert p.transfer(c, s, d1) == d1
    assert p.transfer(s, c, d2) == d2
    assert p.a.counters()["fast_rx"] > 0 and p.b.counters()["fast_rx"] > 100


@pytest.mark.parametrize("seed", [1, 2])
def test_exact_under_loss_duplication_reordering(seed):
    p = Pair(seed=seed)
    c, s = p.connect()
    for net in (p.net_ab, p.net_ba):
        net.update(loss=0.03, dup=0.02, reorder=0.1)
    d1, d2 = os.urandom(600_000), os.urandom(300_000)
    assert p.transfer(c, s, d1, timeout=60) == d1
    assert p.transfer(s, c, d2, timeout=60) == d2
    assert c.counters["retransmits"] + s.counters["retransmits"] > 0
    # the receivers' SACK blocks steered some retransmissions (RFC 2018)
    assert c.counters["sack_retransmits"] + s.counters["sack_retransmits"] > 0
    assert c.counters["sack_blocks_bad"] == s.counters["sack_blocks_bad"] == 0
    assert p.pool.check() >= 0


def test_graceful_close_active_side_passes_fin_wait_and_time_wait():
    p = Pair()
    c, s = p.connect()
    seen = traced(p)
    c.close()
    assert p.run(lambda: s.eof and c.state_name == "FIN-WAIT-2")
    assert s.state_name == "CLOSE-WAIT"
    s.send(b"last words")                     # half-close: CLOSE-WAIT may still send
    assert p.run(lambda: c.readable() == 10)
    s.close()
    assert p.run(lambda: s.state_name == "CLOSED" and c.state_name == "TIME-WAIT")
    assert c.recv(100) == b"last words" and c.eof
    assert p.run(lambda: c.state_name == "CLOSED", 2)      # 2*MSL = 200 ms here
    text = "\n".join(seen)
    for t in ("ESTABLISHED -> FIN-WAIT-1", "FIN-WAIT-1 -> FIN-WAIT-2", "FIN-WAIT-2 -> TIME-WAIT",
              "TIME-WAIT -> CLOSED", "ESTABLISHED -> CLOSE-WAIT", "CLOSE-WAIT -> LAST-ACK",
              "LAST-ACK -> CLOSED"):
        assert t in text, t
    assert c.reason == "" and s.reason == ""
    assert p.pool.check() == 0


def test_simultaneous_close_passes_closing():
    p = Pair()
    c, s = p.connect()
    seen = traced(p)
    c.close()
    s.close()                                  # both FINs cross on the wire
    assert p.run(lambda: c.state_name in ("CLOSED",) and s.state_name in ("CLOSED",), 3)
    text = "\n".join(seen)
    assert "FIN-WAIT-1 -> CLOSING" in text and "CLOSING -> TIME-WAIT" in text


def test_simultaneous_open_passes_syn_received_from_syn_sent():
    p = Pair()
    seen = traced(p)
    from .pair import A_IP_INT
    c = p.a.open(B_IP_INT, 7100, p.pb.mac, local_port=7200)
    s = p.b.open(A_IP_INT, 7200, p.pa.mac, local_port=7100)   # both SYNs in flight at once
    assert p.run(lambda: c.state_name == s.state_name == "ESTABLISHED", 3)
    assert "\n".join(seen).count("SYN-SENT -> SYN-RECEIVED") == 2
    assert p.transfer(c, s, b"x" * 5000) == b"x" * 5000


def test_abort_sends_rst_and_peer_reports_reset():
    p = Pair()
    c, s = p.connect()
    c.abort()
    assert p.run(lambda: s.state_name == "CLOSED")
    assert s.reason == "connection reset by peer"
    with pytest.raises(TcpError, match="reset by peer"):
        s.send(b"x")


def test_connect_to_closed_port_is_refused_by_rst():
    p = Pair()
    c = p.a.open(B_IP_INT, 7999, p.pb.mac)
    assert p.run(lambda: c.state_name == "CLOSED")
    assert "refused" in c.reason
    assert p.b.counters()["rst_sent"] == 1


def test_syn_lost_is_retransmitted_then_gives_up_with_reason():
    p = Pair(cfg_a=TcpConfig(syn_retries=2, **FAST))
    p.block_ab = True
    c = p.a.open(B_IP_INT, 7000, p.pb.mac)
    assert p.run(lambda: c.state_name == "CLOSED", 10)
    assert "no answer to SYN" in c.reason and c.counters["retransmits"] == 2


def test_peer_that_stops_acking_times_out_with_reason():
    p = Pair(cfg_a=TcpConfig(max_retries=3, **FAST))
    c, s = p.connect()
    p.block_ba = True                          # B's ACKs never arrive
    c.send(b"y" * 10000)
    assert p.run(lambda: c.state_name == "CLOSED", 10)
    assert "peer stopped acknowledging" in c.reason
    assert c.counters["rto_expired"] == 4


def test_zero_window_probe_then_resume():
    small = TcpConfig(rcv_buf=8192, **FAST)
    p = Pair(cfg_a=TcpConfig(max_retries=2, **FAST), cfg_b=small)
    c, s = p.connect()
    data = os.urandom(30_000)
    sent = 0
    while sent < len(data):
        sent += c.send(data[sent:])
        p.step()
    # the receiver does not read for many RTOs: the sender probes and never gives up on it
    assert p.run(lambda: c.counters["zero_window_probes"] >= 6, 10)
    assert c.state_name == "ESTABLISHED" and c.counters["rto_expired"] <= 2
    got = bytearray()
    assert p.run(lambda: got.extend(s.recv(4096)) or len(got) == len(data), 20)
    assert bytes(got) == data


def test_zero_window_peer_that_goes_silent_times_out():
    p = Pair(cfg_a=TcpConfig(max_retries=2, **FAST), cfg_b=TcpConfig(rcv_buf=8192, **FAST))
    c, s = p.connect()
    c.send(os.urandom(30_000))
    assert p.run(lambda: c.counters["zero_window_probes"] >= 1, 5)
    p.block_ba = True
    assert p.run(lambda: c.state_name == "CLOSED", 10)
    assert "zero-window probes unanswered" in c.reason


def test_keepalive_detects_dead_peer():
    cfg = TcpConfig(keepalive_idle_us=100_000, keepalive_interval_us=50_000, keepalive_probes=3, **FAST)
    p = Pair(cfg_a=cfg)
    c, s = p.connect()
    # peer alive: more probes than the limit go out over time, all answered, still up
    assert p.run(lambda: c.counters["keepalives"] >= 5, 5)
    assert c.state_name == "ESTABLISHED"
    p.block_ba = True
    assert p.run(lambda: c.state_name == "CLOSED", 5)
    assert "keepalive" in c.reason


def test_delayed_ack_option_still_exact():
    cfg = TcpConfig(delayed_ack=True, **FAST)
    p = Pair(cfg_a=cfg, cfg_b=cfg)
    c, s = p.connect()
    d = os.urandom(300_000)
    assert p.transfer(c, s, d) == d
    assert p.transfer(s, c, b"z") == b"z"      # a lone segment is ACKed by the timer


def test_nagle_option_coalesces_small_sends():
    p = Pair(cfg_a=TcpConfig(nagle=True, **FAST))
    c, s = p.connect()
    for _ in range(50):
        c.send(b"ab")
    assert p.run(lambda: s.readable() == 100)
    assert s.recv(1000) == b"ab" * 50


def test_fin_before_the_last_data_segment_still_ends_the_stream():
    """Reordering puts the FIN ahead of the final data: the FIN is held, the data fills the
    hole, and EOF is seen without waiting for the peer to retransmit anything."""
    from tickwire.stack.tcp.loopback_pair import CAP
    p = Pair(cfg_a=TcpConfig(min_rto_us=3_000_000, msl_us=100_000))   # no retransmission can help
    c, s = p.connect()
    s.recv(1)                                 # compile everything on this path before timing
    c.send(b"A" * 1000)
    c.close()
    p.a.poll()                                # data segment and FIN queued towards B
    ring = p.pa.state.tx
    head, tail = int(ring[0]), int(ring[1])
    frames = [int(ring[2 + (i & (CAP - 1))]) for i in range(head, tail)]
    if len(frames) >= 2:                      # swap: FIN first, data second
        ring[2 + (head & (CAP - 1))], ring[2 + ((head + 1) & (CAP - 1))] = frames[1], frames[0]
    assert p.run(lambda: s.eof, 2.0)          # well before the sender's first RTO (>= 3 s)
    assert s.recv(2000) == b"A" * 1000
    assert c.counters["retransmits"] == 0

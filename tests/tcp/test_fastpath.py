"""The compiled fast path: its frames checked by scapy (an independent parser), its use
during a transfer, and random corruption of live segments never breaking the stack."""

import os

import numpy as np
from hypothesis import given, settings, strategies as st
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

from .pair import Pair
from tickwire.stack.tcp import tcb as T
from tickwire.stack.tcp.fastpath import fast_send
from tickwire.stack.tcp.loopback_pair import CAP


def test_fast_send_frame_is_valid_tcp_for_scapy():
    p = Pair()
    c, s = p.connect()
    msg = np.frombuffer(b"NewOrderSingle|px=101.25|qty=7|" + bytes(32), np.uint8).copy()
    seq0 = c.g(T.SND_NXT)
    idx = fast_send(p.a.hot, c.slot, p.a.txq, p.a.cfg.rcv_buf, p.a.tmpl, p.pool.arrays, msg, 0, len(msg),
                    p.a.opts, p.a.now())
    assert idx >= 0
    frame = p.pool.read(idx)
    pkt = Ether(frame)
    tcp = pkt[TCP]
    assert bytes(tcp.payload) == msg.tobytes()
    assert tcp.seq == seq0 and tcp.ack == c.g(T.RCV_NXT) and tcp.flags == "PA"
    assert dict((k, v) for k, v in tcp.options if k == "Timestamp")          # RFC 7323: TS on every segment
    # scapy recomputes both checksums from scratch; ours must be identical
    clean = Ether(frame)
    del clean[IP].chksum, clean[TCP].chksum
    rebuilt = Ether(bytes(clean))
    assert rebuilt[IP].chksum == pkt[IP].chksum and rebuilt[TCP].chksum == pkt[TCP].chksum
    assert c.g(T.SND_NXT) == (seq0 + len(msg)) & 0xFFFFFFFF
    # hand it to the peer: the receiver's fast path takes it
    ring = p.pa.state.tx
    ring[2 + (int(ring[1]) & (CAP - 1))] = idx
    ring[1] += 1
    before = p.b.counters()["fast_rx"]
    assert p.run(lambda: s.readable() == len(msg))
    assert s.recv(100) == msg.tobytes() and p.b.counters()["fast_rx"] == before + 1


def test_bulk_transfer_uses_the_fast_path_on_the_receiver():
    p = Pair()
    c, s = p.connect()
    d = os.urandom(500_000)
    assert p.transfer(c, s, d) == d
    b = p.b.counters()
    assert b["fast_rx"] > 300 and b["slow_path_segments"] < 10


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), min_size=1, max_size=6),
       st.integers(0, 120))
def test_corrupted_live_segments_never_break_the_connection(flips, cut):
    """Take real segments of a transfer, corrupt bytes or truncate, inject: counted drops,
    no exception, the pool balanced, and the transfer still exact afterwards."""
    p = _shared()
    c, s = p.conns
    ring = p.pa.state.tx
    first = os.urandom(3000)
    c.send(first)
    p.a.poll()
    head, tail = int(ring[0]), int(ring[1])
    for i in range(head, tail):
        b = int(ring[2 + (i & (CAP - 1))])
        f = bytearray(p.pool.read(b))
        for off, val in flips:
            if off < len(f):
                f[off] = val
        if cut and cut < len(f):
            f = f[:len(f) - cut]
        p.pool.write(b, bytes(f))
    # whatever was destroyed is retransmitted: the first 3000 bytes still arrive exactly
    got = bytearray()
    assert p.run(lambda: got.extend(s.recv(1 << 20)) or len(got) >= len(first), 10)
    assert bytes(got) == first
    d = os.urandom(20_000)
    assert p.transfer(c, s, d) == d
    assert p.pool.in_flight <= 64


_PAIR = None


def _shared():
    global _PAIR
    if _PAIR is None:
        _PAIR = Pair()
        _PAIR.conns = _PAIR.connect()
    return _PAIR


def test_hot_kernels_have_no_float64():
    """notes/numba-hot-path.md §5: a uint64/int64 mix silently becomes float64."""
    import io

    from tickwire.stack.tcp.fastpath import build_segment
    from tickwire.stack.tcp.poll import poll_step
    p = Pair()
    c, s = p.connect()
    d = os.urandom(50_000)
    assert p.transfer(c, s, d) == d
    msg = np.zeros(64, np.uint8)
    fast_send(p.a.hot, c.slot, p.a.txq, p.a.cfg.rcv_buf, p.a.tmpl, p.pool.arrays, msg, 0, 64, p.a.opts, p.a.now())
    checked = 0
    for f in (poll_step, build_segment, fast_send):
        for sig in f.signatures:
            buf = io.StringIO()
            f.inspect_types(file=buf, signature=sig)
            assert "float64" not in buf.getvalue(), f.__name__
            checked += 1
    assert checked >= 3


def test_slow_work_due_tells_a_compiled_loop_when_python_is_needed():
    from tickwire.stack.tcp.poll import slow_work_due
    p = Pair()
    c, s = p.connect()
    now = p.a.now()
    assert not slow_work_due(p.a.hot, p.a.nslots, now + 60_000_000)     # idle: no timer at all
    p.block_ab = True
    c.send(b"x" * 100)                                                   # unacknowledged: RTO armed
    p.a.service()
    rto_at = c.g(T.RTX_DEADLINE)
    assert rto_at > 0
    assert not slow_work_due(p.a.hot, p.a.nslots, rto_at - 1)
    assert slow_work_due(p.a.hot, p.a.nslots, rto_at)


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=0, max_size=300), st.integers(0, 9), st.integers(0, 9), st.integers(0, 9))
def test_copy_and_checksum_in_one_pass_equals_copy_then_csum_add(data, so, o1, o2):
    """fast_send's payload loop: both copies exact (not a byte more), the sum csum_add's."""
    from tickwire.stack.tcp.fastpath import copy2_sum
    from tickwire.wire.checksum import csum_add, csum_finish
    n = len(data)
    src = np.frombuffer(bytes(so) + data + b"\xee" * 9, np.uint8).copy()
    d1 = np.full(n + 20, 0x5A, np.uint8)
    d2 = np.full(n + 20, 0xA5, np.uint8)
    s = copy2_sum(d1, o1, d2, o2, src, so, n)
    assert d1[o1:o1 + n].tobytes() == data and d2[o2:o2 + n].tobytes() == data
    assert (d1[:o1] == 0x5A).all() and (d1[o1 + n:] == 0x5A).all()
    assert (d2[:o2] == 0xA5).all() and (d2[o2 + n:] == 0xA5).all()
    assert csum_finish(s) == csum_finish(csum_add(src, so, n, 0))


def test_fast_send_when_the_send_ring_wraps_inside_the_message():
    """The retransmission copy split at the ring's end; the frame still whole and valid."""
    p = Pair()
    c, s = p.connect()
    cap = p.a.txq.shape[1]
    head = os.urandom(cap - 10)
    assert p.transfer(c, s, head) == head               # TX_END = cap - 10, all acknowledged
    assert p.run(lambda: c.g(T.SND_UNA) == c.g(T.SND_NXT))
    msg = np.frombuffer(os.urandom(52), np.uint8).copy()
    idx = fast_send(p.a.hot, c.slot, p.a.txq, p.a.cfg.rcv_buf, p.a.tmpl, p.pool.arrays, msg, 0, len(msg),
                    p.a.opts, p.a.now())
    assert idx >= 0
    ring = p.a.txq[c.slot]
    assert ring[cap - 10:].tobytes() + ring[:42].tobytes() == msg.tobytes()
    pkt = Ether(p.pool.read(idx))
    assert bytes(pkt[TCP].payload) == msg.tobytes()
    clean = Ether(p.pool.read(idx))
    del clean[IP].chksum, clean[TCP].chksum
    rebuilt = Ether(bytes(clean))
    assert rebuilt[IP].chksum == pkt[IP].chksum and rebuilt[TCP].chksum == pkt[TCP].chksum
    tx = p.pa.state.tx
    tx[2 + (int(tx[1]) & (CAP - 1))] = idx
    tx[1] += 1
    assert p.run(lambda: s.readable() == len(msg))
    assert s.recv(100) == msg.tobytes()


def test_fast_send_leaves_a_frame_that_does_not_fit_the_buffer_to_the_slow_path():
    """A pool of buffers smaller than header template + message: nothing is written past a
    buffer; the bytes are queued (-1) and the slow path sends them (as two segments)."""
    from tickwire.mem.mempool import FREE_TOP, Mempool
    p = Pair()
    c, s = p.connect()
    small = Mempool(n_bufs=8, buf_size=128, headroom=32)
    msg = np.frombuffer(os.urandom(60), np.uint8).copy()
    idx = fast_send(p.a.hot, c.slot, p.a.txq, p.a.cfg.rcv_buf, p.a.tmpl, small.arrays, msg, 0, len(msg),
                    p.a.opts, p.a.now())
    assert idx == -1 and small.arrays.meta[FREE_TOP] == 8          # the buffer went back
    assert p.run(lambda: s.readable() == len(msg))
    assert s.recv(100) == msg.tobytes()

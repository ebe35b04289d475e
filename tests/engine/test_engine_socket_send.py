"""The kernel-socket engine path hands the queued order-entry bytes to its TCP socket in
pieces that fit a pool buffer: a venue can make the queue longer than one buffer (a
RetransmitRequest for every gap it opens), and those bytes must all reach the venue, in
order, without writing past the buffer (review, session 9)."""

import socket
import time

import numpy as np
from numba import njit

from tickwire.drivers.port import open_port
from tickwire.engine.build import EngineConfig, build_engine
from tickwire.engine.core import oe_connected, oe_input
from tickwire.engine.layout import M_CLOSE_TRANSPORT, M_TX_DROPPED, M_TXS_LEN
from tickwire.engine.loop_socket import _send_oe
from tickwire.mem.mempool import Mempool
from tickwire.mem.ref import by_ref
from tickwire.order import oe_codec as C
from tickwire.order import wire_layout as W
from tickwire.order.session import SS_STATE, SS_UUID, ST_ESTABLISHED


@njit(_nrt=False)
def _send(st, pool, E, one):
    _send_oe(st, pool, by_ref(E), one)


def _engine_with_long_queue():
    """An established session, then 60 x (Sequence(next + 1), ExecutionReport): each pair
    opens a gap and queues one RetransmitRequest."""
    E, _ = build_engine(EngineConfig())
    now = time.monotonic_ns()
    oe_connected(E, now)
    uuid = int(E.sess[SS_UUID])
    b = np.zeros(1 << 16, np.uint8)
    n = C.enc_negotiation_response(b, 0, uuid, now, 0, 0)
    n += C.enc_establishment_ack(b, n, uuid, now, 1, 0, 0, 1000)
    oe_input(E, b, 0, n, now)
    assert E.sess[SS_STATE] == ST_ESTABLISHED
    E.meta[M_TXS_LEN] = 0
    n = 0
    for seq in range(1, 61):
        n += C.enc_sequence(b, n, uuid, seq + 1, 0)
        n += C.enc_exec(b, n, W.ER_NEW, seq, now, 999, 1, 1001, 1, 100, 1, 1, 0, 0, 0, 0, 0)
    oe_input(E, b, 0, n, now)
    return E


def test_order_entry_longer_than_a_buffer_reaches_the_venue_whole():
    E = _engine_with_long_queue()
    queued = int(E.meta[M_TXS_LEN])
    pool = Mempool(n_bufs=64)
    room = pool.buf_size - pool.headroom
    assert queued > room, (queued, room)          # the case under test: more than one buffer
    expect = E.txs[:queued].tobytes()
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = open_port(f"tcp:connect=127.0.0.1:{srv.getsockname()[1]}", pool)
    peer, _ = srv.accept()
    try:
        _send(port.state, pool.arrays, E, np.zeros(1, np.int32))
        got = b""
        peer.settimeout(2.0)
        while len(got) < len(expect):
            chunk = peer.recv(1 << 16)
            if not chunk:
                break
            got += chunk
        assert got == expect
        assert E.meta[M_TXS_LEN] == 0 and E.meta[M_TX_DROPPED] == 0 and E.meta[M_CLOSE_TRANSPORT] == 0
        assert pool.check() == 0 and pool.in_flight == 0
    finally:
        port.close()
        peer.close()
        srv.close()

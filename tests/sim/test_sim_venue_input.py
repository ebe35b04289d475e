"""The venue's order-entry input: client bytes are never lost however the transport
splits them, garbage ends the session with a Terminate that says why."""

import numpy as np

from tickwire.order import wire_layout as W
from tickwire.order.oe_codec import enc_sequence, frame_check, rd_field_u16, template_of
from tickwire.order.session import A_DOWN
from tickwire.sim.venue import (V_GARBAGE, V_OUT_OVERFLOW, V_RX_LEFT, V_RXS_LEN, build_venue, take_out,
                                venue_oe_input)

INSTR = [(1001, 5_000_000_000_000, 250_000_000)]


def _sequence_stream(n_frames):
    """Valid frames the venue accepts in any session state (Sequence: a heartbeat)."""
    out = np.zeros(n_frames * 64, np.uint8)
    off = 0
    for i in range(n_frames):
        off += enc_sequence(out, off, 7, i + 1, 0)
    return out[:off]


def _feed(V, data, sizes):
    pos, results = 0, []
    for n in sizes:
        chunk = np.ascontiguousarray(data[pos:pos + n])
        results.append(venue_oe_input(V, chunk, 0, len(chunk), 1))
        assert V.meta[V_RX_LEFT] == 0
        pos += n
    return results


def test_a_partial_frame_then_a_full_recv_loses_nothing():
    """10 bytes (a frame's start), then 65,536 (a whole recv), then the rest: the old venue
    cut what did not fit its 64 KiB buffer, lost the frame boundary and called it garbage."""
    data = _sequence_stream(6000)
    V = build_venue(INSTR)
    assert _feed(V, data, [10, 65536, len(data) - 65546]) == [0, 0, 0]
    assert V.meta[V_GARBAGE] == 0 and V.meta[V_RXS_LEN] == 0


def test_bytes_the_venue_cannot_take_yet_are_left_to_the_transport():
    data = _sequence_stream(6000)
    V = build_venue(INSTR)
    full = V.out
    V = V._replace(out=np.zeros(64 * W.MAX_FRAME - 1, np.uint8))   # replies cannot fit: nothing parsed
    assert venue_oe_input(V, data, 0, len(data), 1) == 0
    left = int(V.meta[V_RX_LEFT])
    assert left == len(data) - 65536 and V.meta[V_OUT_OVERFLOW] > 0
    V = V._replace(out=full)                                     # take_out drained it: feed the rest again
    rest = np.ascontiguousarray(data[len(data) - left:])
    assert venue_oe_input(V, rest, 0, left, 1) == 0
    assert V.meta[V_RX_LEFT] == 0 and V.meta[V_GARBAGE] == 0 and V.meta[V_RXS_LEN] == 0


def test_garbage_is_answered_with_a_terminate_and_ends_the_session():
    data = _sequence_stream(3)
    V = build_venue(INSTR)
    # three good frames, then one whose SBE header names schema 0; then bytes that never count
    bad = np.concatenate([data, np.frombuffer(b"\x00\x40\xeb\x50" + bytes(60) + b"tail", np.uint8)])
    assert venue_oe_input(V, bad, 0, len(bad), 1) == A_DOWN
    assert V.meta[V_GARBAGE] == 1 and V.meta[V_RXS_LEN] == 0 and V.meta[V_RX_LEFT] == 0
    out = np.frombuffer(take_out(V), np.uint8)
    k = frame_check(out, 0, len(out))
    assert k == len(out) and template_of(out, 0) == W.TERMINATE
    assert rd_field_u16(out, 0, W.F_TERM_ERR) == W.ERR_GARBAGE


def _frames(V):
    """The templates of the frames the venue would send now (and takes them)."""
    out = np.frombuffer(take_out(V), np.uint8)
    got, pos = [], 0
    while pos < len(out):
        k = frame_check(out, pos, len(out) - pos)
        assert k > 0
        got.append(template_of(out, pos))
        pos += k
    return got


def _session_with_a_resting_order():
    from tickwire.order.layout import SIDE_BUY, TIF_DAY
    from tickwire.order.oe_codec import enc_establish, enc_negotiate, enc_new_order
    V = build_venue(INSTR)
    buf = np.zeros(512, np.uint8)
    n = enc_negotiate(buf, 0, 77, 1, 1)
    n += enc_establish(buf, n, 77, 2, 1, 1000)
    mid, tick = INSTR[0][1], INSTR[0][2]
    n += enc_new_order(buf, n, 1, 3, 501, mid - 10 * tick, 1, INSTR[0][0], SIDE_BUY, TIF_DAY)
    assert venue_oe_input(V, buf, 0, n, 3) == 0
    assert _frames(V) == [W.NEGOTIATION_RESPONSE, W.ESTABLISHMENT_ACK, W.ER_NEW]
    return V


def test_nothing_follows_the_clients_terminate_the_cancels_stay_journaled():
    """Cancel-on-disconnect after the client's Terminate: the reports are journaled (a
    re-established session fetches them by sequence) but not sent on the ended session."""
    from tickwire.order.oe_codec import enc_terminate, rd_field_u32
    from tickwire.order.session import SS_NEXT_OUT
    from tickwire.sim.venue import V_COD_CANCELS
    V = _session_with_a_resting_order()
    buf = np.zeros(64, np.uint8)
    n = enc_terminate(buf, 0, 77, 4, 0)
    assert venue_oe_input(V, buf, 0, n, 4) == A_DOWN
    assert V.meta[V_COD_CANCELS] == 1 and _frames(V) == []
    seq = int(V.sess[SS_NEXT_OUT]) - 1                  # the cancel report's sequence number
    k = seq % V.journal.shape[0]
    assert template_of(V.journal[k], 0) == W.ER_CANCEL and rd_field_u32(V.journal[k], 0, W.F_SEQNUM) == seq


def test_a_lost_transport_leaves_nothing_for_the_next_connection():
    """The server drops unsent bytes with the connection (server.py), and
    cancel-on-disconnect adds none: a new connection's first frame is the venue's answer
    to its Negotiate."""
    from tickwire.order.oe_codec import enc_negotiate
    from tickwire.sim.venue import venue_disconnected
    V = _session_with_a_resting_order()
    venue_disconnected(V, 5)
    assert _frames(V) == []
    buf = np.zeros(64, np.uint8)
    n = enc_negotiate(buf, 0, 78, 6, 1)
    venue_oe_input(V, buf, 0, n, 6)
    assert _frames(V) == [W.NEGOTIATION_RESPONSE]


def test_a_report_with_no_room_to_send_is_journaled_and_counted():
    """The reply buffer is full: the report goes to the journal only (the client fetches it
    by sequence), counted as overflow, and nothing is written past the buffer."""
    from tickwire.order.session import SS_NEXT_OUT
    from tickwire.sim.venue import venue_disconnected
    V = _session_with_a_resting_order()
    small = np.zeros(2 * W.MAX_FRAME + 16, np.uint8)
    V = V._replace(out=small[:2 * W.MAX_FRAME - 1])
    venue_disconnected(V, 5)
    assert V.meta[V_OUT_OVERFLOW] == 1 and not small[2 * W.MAX_FRAME - 1:].any()
    k = (int(V.sess[SS_NEXT_OUT]) - 1) % V.journal.shape[0]
    assert template_of(V.journal[k], 0) == W.ER_CANCEL


def test_snapshot_sizes_are_checked():
    """A book too deep for one snapshot datagram is refused when the publisher is made; a
    buffer too small for the snapshot gets nothing written."""
    import pytest
    from tickwire.sim.publisher import MAX_PKT, new_publisher, snapshot_bytes, snapshot_packet
    assert snapshot_bytes(10) <= MAX_PKT
    with pytest.raises(ValueError, match="does not fit one"):
        new_publisher([1001], depth=40)
    V = _session_with_a_resting_order()
    out = np.zeros(snapshot_bytes(10) + 8, np.uint8)
    assert snapshot_packet(V.pub, out[:snapshot_bytes(10) - 1], 0, 1, 9) == 0 and not out.any()
    assert snapshot_packet(V.pub, out[:snapshot_bytes(10)], 5, 1, 9) == 0 and not out.any()
    n = snapshot_packet(V.pub, out, 0, 1, 9)
    assert 0 < n <= snapshot_bytes(10) and not out[snapshot_bytes(10):].any()

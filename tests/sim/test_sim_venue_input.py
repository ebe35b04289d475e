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

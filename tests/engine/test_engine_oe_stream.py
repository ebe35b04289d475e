"""The engine's order-entry input never cuts the byte stream: a partial frame followed by
a whole receive buffer's worth of bytes is framed in pieces, nothing lost, no desync."""

import numpy as np

from inproc import Harness
from tickwire.engine.layout import M_OE_FRAMES, M_OE_GARBAGE, M_RXS_LEN, M_RXS_OVERFLOW
from tickwire.engine.core import oe_input
from tickwire.order.oe_codec import enc_sequence
from tickwire.order.session import SS_NEXT_IN, SS_STATE, SS_UUID, ST_ESTABLISHED


def test_a_partial_frame_then_a_full_receive_loses_nothing():
    h = Harness()
    h.connect()
    E = h.E
    assert E.sess[SS_STATE] == ST_ESTABLISHED
    frame = np.zeros(64, np.uint8)
    flen = enc_sequence(frame, 0, E.sess[SS_UUID], E.sess[SS_NEXT_IN], 0)   # a heartbeat: no reply
    cap = E.rxs.shape[0]
    count = (3 * cap) // flen + 1
    stream = np.tile(frame[:flen], count)
    frames0 = int(E.meta[M_OE_FRAMES])
    # 10 bytes (a frame's start), then a whole buffer's worth, then the rest
    for a, b in ((0, 10), (10, 10 + cap), (10 + cap, len(stream))):
        chunk = np.ascontiguousarray(stream[a:b])
        oe_input(E, chunk, 0, len(chunk), h.now)
    assert E.meta[M_OE_GARBAGE] == 0 and E.meta[M_RXS_OVERFLOW] == 0
    assert E.meta[M_OE_FRAMES] - frames0 == count and E.meta[M_RXS_LEN] == 0
    assert E.sess[SS_STATE] == ST_ESTABLISHED

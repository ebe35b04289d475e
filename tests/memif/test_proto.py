"""memif message codec: exact layout (offsets from notes/memif.md §2) and total
robustness of the decoder against arbitrary bytes."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings, strategies as st

from tickwire.drivers.memif import proto


def test_every_message_is_128_bytes_with_type_at_offset_0():
    msgs = [proto.ack(), proto.hello("x", 255, 0, 0, 14), proto.init(7, "n", b"sec"),
            proto.add_region(0, 4227328), proto.add_ring(True, 1, 0, 128, 10),
            proto.connect("a"), proto.connected("b"), proto.disconnect("why")]
    for want_type, m in zip((1, 2, 3, 4, 5, 6, 7, 8), msgs):
        assert len(m) == 128 and struct.unpack_from("<H", m)[0] == want_type


def test_field_offsets_match_the_dpdk_layout():
    m = proto.init(0x01020304, "client-name", b"s3")
    assert struct.unpack_from("<H", m, 2)[0] == 0x0200          # version @2
    assert struct.unpack_from("<I", m, 4)[0] == 0x01020304      # id @4
    assert m[8] == 0 and m[9:11] == b"s3" and m[33:44] == b"client-name"
    m = proto.add_ring(True, 3, 2, 0x1000, 12)
    assert struct.unpack_from("<HHHIB", m, 2) == (1, 3, 2, 0x1000, 12)
    assert struct.unpack_from("<H", m, 13)[0] == 0              # private_hdr_size @13
    m = proto.hello("DPDK 22.11.11", 255, 1, 2, 14)
    assert struct.unpack_from("<HHHHHB", m, 34) == (0x200, 0x200, 255, 1, 2, 14)
    m = proto.disconnect("Invalid ring index", 5)
    assert struct.unpack_from("<I", m, 2)[0] == 5 and m[6:24] == b"Invalid ring index"


def test_roundtrip():
    t, h = proto.decode(proto.hello("srv", 9, 1, 2, 12))
    assert t == proto.HELLO and h == proto.Hello("srv", 0x200, 0x200, 9, 1, 2, 12)
    t, r = proto.decode(proto.add_ring(False, 4, 1, 999, 11))
    assert r == proto.AddRing(False, 4, 1, 999, 11, 0)
    t, d = proto.decode(proto.disconnect("x" * 200))
    assert d.reason == "x" * 95                                 # clipped, NUL kept


@pytest.mark.parametrize("size", [0, 1, 127, 129, 256])
def test_wrong_size_is_a_protocol_error(size):
    with pytest.raises(proto.ProtocolError, match="Invalid message size"):
        proto.decode(bytes(size))


@settings(max_examples=2000)
@given(st.binary(min_size=128, max_size=128))
def test_decoder_never_raises_anything_but_protocol_error(raw):
    try:
        msg_type, payload = proto.decode(raw)
    except proto.ProtocolError:
        return
    assert 1 <= msg_type <= 8

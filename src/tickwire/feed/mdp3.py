"""MDP 3.0 packet framing, Python face (notes/mdp3.md §1).

UDP payload = Binary Packet Header (MsgSeqNum u32, SendingTime u64, little-endian)
followed by messages, each preceded by a u16 MsgSize that counts its own 2 bytes.
"""

from __future__ import annotations

import struct

from ..sbe.codec import Codec, DecodeError

PACKET_HEADER = struct.Struct("<IQ")
PACKET_HEADER_SIZE = 12
MSG_SIZE = struct.Struct("<H")


def encode_packet(seq: int, sending_time: int, messages) -> bytes:
    """Frame already-encoded SBE messages (header + body) into one packet payload."""
    out = bytearray(PACKET_HEADER.pack(seq, sending_time))
    for m in messages:
        if len(m) + 2 > 0xFFFF:
            raise ValueError("message longer than MsgSize can express")
        out += MSG_SIZE.pack(len(m) + 2) + m
    return bytes(out)


def decode_packet(codec: Codec, payload: bytes):
    """Returns (seq, sending_time, [(message dict | None, error str | None)]).

    Bad input never raises: a message that cannot be decoded yields (None, reason) and,
    when its size cannot be trusted, ends the packet.
    """
    if len(payload) < PACKET_HEADER_SIZE:
        return None, None, [(None, "truncated packet header")]
    seq, ts = PACKET_HEADER.unpack_from(payload, 0)
    out, off = [], PACKET_HEADER_SIZE
    while off < len(payload):
        if off + 2 > len(payload):
            out.append((None, "truncated message size"))
            break
        size = MSG_SIZE.unpack_from(payload, off)[0]
        if size < 2 + codec.header_size or off + size > len(payload):
            out.append((None, f"message size {size} overruns the packet"))
            break
        try:
            msg, used = codec.decode(payload, off + 2, off + size)
            out.append((msg, None))
        except DecodeError as e:
            out.append((None, str(e)))
        off += size
    return seq, ts, out

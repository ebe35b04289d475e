"""memif control-channel messages, protocol 2.0 (DPDK drivers/net/memif/memif.h).

Every message is exactly 128 bytes on an AF_UNIX SOCK_SEQPACKET socket: ``u16 type``
at offset 0, a packed payload from offset 2, zero padding after. File descriptors
(memfd with ADD_REGION, eventfd with ADD_RING) travel as SCM_RIGHTS, one per message.
Offsets below are absolute within the message (shared/notes/memif.md §2).

``decode`` validates everything a peer can get wrong before a value is used:
message size, type, string termination, numeric ranges. A violation raises
``ProtocolError`` whose text is what we send back in DISCONNECT and log.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

import numpy as np

COOKIE = 0x3E31F20
VERSION = 0x0200
MSG_SIZE = 128
NAME_LEN = 32
SECRET_LEN = 24
REASON_LEN = 96

# message types
NONE, ACK, HELLO, INIT, ADD_REGION, ADD_RING, CONNECT, CONNECTED, DISCONNECT = range(9)
TYPE_NAMES = ("NONE", "ACK", "HELLO", "INIT", "ADD_REGION", "ADD_RING", "CONNECT", "CONNECTED", "DISCONNECT")

RING_FLAG_C2S = 1          # ADD_RING flags bit0: the ring carries client -> server traffic
MODE_ETHERNET = 0
MAX_LOG2_RING = 14         # rte_eth_memif.h ETH_MEMIF_MAX_LOG2_RING_SIZE
MAX_REGIONS = 256
MAX_QUEUES = 255

# Ring header (memif_ring_t, 64-byte cache lines as built for x86_64).
RING_COOKIE, RING_FLAGS, RING_HEAD, RING_TAIL, RING_DESC = 0, 4, 6, 64, 128
RING_FLAG_MASK_INT = 1
DESC_SIZE = 16
DESC_FLAGS, DESC_REGION, DESC_LENGTH, DESC_OFFSET, DESC_METADATA = 0, 2, 4, 8, 12
DESC_FLAG_NEXT = 1


DESC_DTYPE = np.dtype([("flags", "<u2"), ("region", "<u2"), ("length", "<u4"),
                       ("offset", "<u4"), ("metadata", "<u4")])


def ring_bytes(log2_size: int) -> int:
    return RING_DESC + DESC_SIZE * (1 << log2_size)


class RingView:
    """Python-side (control plane) view of one ring header and its descriptors."""

    def __init__(self, mem: np.ndarray, offset: int, log2_size: int):
        self.mem, self.off = mem, offset
        self.desc = mem[offset + RING_DESC: offset + ring_bytes(log2_size)].view(DESC_DTYPE)

    def _field(self, at, dtype):
        return self.mem[self.off + at: self.off + at + np.dtype(dtype).itemsize].view(dtype)

    cookie = property(lambda s: int(s._field(RING_COOKIE, "<u4")[0]),
                      lambda s, v: s._field(RING_COOKIE, "<u4").__setitem__(0, v))
    flags = property(lambda s: int(s._field(RING_FLAGS, "<u2")[0]),
                     lambda s, v: s._field(RING_FLAGS, "<u2").__setitem__(0, v))
    head = property(lambda s: int(s._field(RING_HEAD, "<u2")[0]),
                    lambda s, v: s._field(RING_HEAD, "<u2").__setitem__(0, v))
    tail = property(lambda s: int(s._field(RING_TAIL, "<u2")[0]),
                    lambda s, v: s._field(RING_TAIL, "<u2").__setitem__(0, v))


class ProtocolError(Exception):
    """The peer broke the protocol; ``str(e)`` is the reason sent in DISCONNECT."""


class Hello(NamedTuple):
    name: str
    min_version: int
    max_version: int
    max_region: int
    max_s2c_ring: int
    max_c2s_ring: int
    max_log2_ring_size: int


class Init(NamedTuple):
    version: int
    id: int
    mode: int
    secret: bytes
    name: str


class AddRegion(NamedTuple):
    index: int
    size: int


class AddRing(NamedTuple):
    c2s: bool
    index: int
    region: int
    offset: int
    log2_size: int
    private_hdr_size: int


class Disconnect(NamedTuple):
    code: int
    reason: str


_HELLO = struct.Struct("<32sHHHHHB")
_INIT = struct.Struct("<HIB24s32s")
_ADD_REGION = struct.Struct("<HQ")
_ADD_RING = struct.Struct("<HHHIBH")
_NAME = struct.Struct("<32s")
_DISCONNECT = struct.Struct("<I96s")


def _frame(msg_type: int, payload: bytes = b"") -> bytes:
    return struct.pack("<H", msg_type) + payload + bytes(MSG_SIZE - 2 - len(payload))


def _cstr(raw: bytes, what: str) -> str:
    """A fixed-size NUL-padded field; text must be NUL-terminated within the field or fill it."""
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


def _fit(text: str | bytes, n: int) -> bytes:
    raw = text.encode() if isinstance(text, str) else text
    return raw[: n - 1] if len(raw) >= n else raw


# --- encoders -----------------------------------------------------------------
def ack() -> bytes:
    return _frame(ACK)


def hello(name: str, max_region: int, max_s2c: int, max_c2s: int, max_log2: int) -> bytes:
    return _frame(HELLO, _HELLO.pack(_fit(name, NAME_LEN), VERSION, VERSION, max_region, max_s2c, max_c2s, max_log2))


def init(if_id: int, name: str, secret: bytes = b"", mode: int = MODE_ETHERNET, version: int = VERSION) -> bytes:
    return _frame(INIT, _INIT.pack(version, if_id, mode, secret[:SECRET_LEN], _fit(name, NAME_LEN)))


def add_region(index: int, size: int) -> bytes:
    return _frame(ADD_REGION, _ADD_REGION.pack(index, size))


def add_ring(c2s: bool, index: int, region: int, offset: int, log2_size: int) -> bytes:
    return _frame(ADD_RING, _ADD_RING.pack(RING_FLAG_C2S if c2s else 0, index, region, offset, log2_size, 0))


def connect(if_name: str) -> bytes:
    return _frame(CONNECT, _NAME.pack(_fit(if_name, NAME_LEN)))


def connected(if_name: str) -> bytes:
    return _frame(CONNECTED, _NAME.pack(_fit(if_name, NAME_LEN)))


def disconnect(reason: str, code: int = 0) -> bytes:
    return _frame(DISCONNECT, _DISCONNECT.pack(code, _fit(reason, REASON_LEN)))


# --- decoder ------------------------------------------------------------------
def decode(msg: bytes):
    """(type, parsed payload) for one received message; ProtocolError when malformed."""
    if len(msg) != MSG_SIZE:
        raise ProtocolError(f"Invalid message size {len(msg)} (must be {MSG_SIZE})")
    (msg_type,) = struct.unpack_from("<H", msg)
    if msg_type == HELLO:
        raw = _HELLO.unpack_from(msg, 2)
        h = Hello(_cstr(raw[0], "name"), *raw[1:])
        if h.max_log2_ring_size > MAX_LOG2_RING:
            h = h._replace(max_log2_ring_size=MAX_LOG2_RING)
        return msg_type, h
    if msg_type == INIT:
        version, if_id, mode, secret, name = _INIT.unpack_from(msg, 2)
        return msg_type, Init(version, if_id, mode, secret.rstrip(b"\0"), _cstr(name, "name"))
    if msg_type == ADD_REGION:
        return msg_type, AddRegion(*_ADD_REGION.unpack_from(msg, 2))
    if msg_type == ADD_RING:
        flags, index, region, offset, log2, priv = _ADD_RING.unpack_from(msg, 2)
        return msg_type, AddRing(bool(flags & RING_FLAG_C2S), index, region, offset, log2, priv)
    if msg_type in (CONNECT, CONNECTED):
        return msg_type, _cstr(_NAME.unpack_from(msg, 2)[0], "if_name")
    if msg_type == DISCONNECT:
        code, reason = _DISCONNECT.unpack_from(msg, 2)
        return msg_type, Disconnect(code, _cstr(reason, "reason"))
    if msg_type == ACK:
        return msg_type, None
    raise ProtocolError(f"Unknown message type {msg_type}")

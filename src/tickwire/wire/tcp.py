"""TCP header and options (RFC 9293 §3.1; window scale and timestamps RFC 7323; SACK RFC 2018).

Layout: source port @0, destination port @2, sequence @4, acknowledgment @8,
data offset (high 4 bits of @12, in 32-bit words), flags @13 (CWR ECE URG ACK
PSH RST SYN FIN; the old NS bit is the low bit of @12), window @14, checksum @16,
urgent pointer @18, options @20 up to data offset * 4 (≤ 60 bytes).

Options decoded into an int64 array (``TcpOptions`` slots, -1 = absent):
MSS (kind 2, len 4), window scale (3, len 3; values above 14 are clamped, RFC 7323 §2.3),
SACK-permitted (4, len 2), SACK blocks (5, len 2+8n, n ≤ 4), timestamps (8, len 10).
This module is the wire format only; the state machine lives in ``stack/tcp*``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numba import njit

from ..mem.hotpath import hot

from .bytes import as_array, ip_to_int, rd16, rd32, rd8, wr16, wr32, wr8
from .causes import BAD_CHECKSUM, BAD_HEADER, OK, TRUNCATED
from .checksum import csum_add, csum_finish, csum_pseudo_ipv4

TCP_HLEN = 20
TCP_SPORT, TCP_DPORT, TCP_SEQ, TCP_ACK, TCP_OFF, TCP_FLAGS, TCP_WIN, TCP_CSUM, TCP_URG = 0, 2, 4, 8, 12, 13, 14, 16, 18
FIN, SYN, RST, PSH, ACK, URG, ECE, CWR = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80
PROTO_TCP = 6

KIND_EOL, KIND_NOP, KIND_MSS, KIND_WSCALE, KIND_SACK_PERM, KIND_SACK, KIND_TS = 0, 1, 2, 3, 4, 5, 8
# slots of the options array filled by tcp_parse_options
OPT_MSS, OPT_WSCALE, OPT_SACK_PERM, OPT_TS_VAL, OPT_TS_ECR, OPT_SACK_N, OPT_SACK0 = 0, 1, 2, 3, 4, 5, 6
MAX_SACK_BLOCKS = 4
TCP_OPT_SLOTS = OPT_SACK0 + 2 * MAX_SACK_BLOCKS


def new_options() -> np.ndarray:
    return np.full(TCP_OPT_SLOTS, -1, np.int64)


@hot(inline="always")
def tcp_check(buf, off, l4_len, src, dst, verify_checksum):
    """Validate a segment ``buf[off:off+l4_len]``; returns (cause, header_len)."""
    if l4_len < TCP_HLEN:
        return TRUNCATED, 0
    hlen = (rd8(buf, off + TCP_OFF) >> 4) * 4
    if hlen < TCP_HLEN:
        return BAD_HEADER, 0
    if hlen > l4_len:
        return TRUNCATED, 0
    if verify_checksum:
        if csum_finish(csum_add(buf, off, l4_len, csum_pseudo_ipv4(src, dst, PROTO_TCP, l4_len))) != 0:
            return BAD_CHECKSUM, 0
    return OK, hlen


@hot
def tcp_parse_options(buf, off, hlen, opts):
    """Fill ``opts`` from the options of the header at ``off`` (length ``hlen``, already
    checked by tcp_check). Unknown kinds are skipped by their length; a length that
    is < 2 or runs past the header is BAD_HEADER."""
    for i in range(opts.shape[0]):
        opts[i] = -1
    opts[OPT_SACK_PERM] = 0
    opts[OPT_SACK_N] = 0
    p = off + TCP_HLEN
    end = off + hlen
    while p < end:
        kind = rd8(buf, p)
        if kind == KIND_EOL:
            break
        if kind == KIND_NOP:
            p += 1
            continue
        if p + 1 >= end:
            return BAD_HEADER
        n = rd8(buf, p + 1)
        if n < 2 or p + n > end:
            return BAD_HEADER
        if kind == KIND_MSS:
            if n != 4:
                return BAD_HEADER
            opts[OPT_MSS] = rd16(buf, p + 2)
        elif kind == KIND_WSCALE:
            if n != 3:
                return BAD_HEADER
            opts[OPT_WSCALE] = min(rd8(buf, p + 2), 14)
        elif kind == KIND_SACK_PERM:
            if n != 2:
                return BAD_HEADER
            opts[OPT_SACK_PERM] = 1
        elif kind == KIND_TS:
            if n != 10:
                return BAD_HEADER
            opts[OPT_TS_VAL] = rd32(buf, p + 2)
            opts[OPT_TS_ECR] = rd32(buf, p + 6)
        elif kind == KIND_SACK:
            nb = (n - 2) // 8
            if (n - 2) % 8 != 0 or nb < 1 or nb > MAX_SACK_BLOCKS:
                return BAD_HEADER
            opts[OPT_SACK_N] = nb
            for b in range(nb):
                opts[OPT_SACK0 + 2 * b] = rd32(buf, p + 2 + 8 * b)
                opts[OPT_SACK0 + 2 * b + 1] = rd32(buf, p + 6 + 8 * b)
        p += n
    return OK


@njit(cache=True, inline="always")
def tcp_sport(buf, off):
    return rd16(buf, off + TCP_SPORT)


@njit(cache=True, inline="always")
def tcp_dport(buf, off):
    return rd16(buf, off + TCP_DPORT)


@njit(cache=True, inline="always")
def tcp_seq(buf, off):
    return rd32(buf, off + TCP_SEQ)


@njit(cache=True, inline="always")
def tcp_ack(buf, off):
    return rd32(buf, off + TCP_ACK)


@njit(cache=True, inline="always")
def tcp_flags(buf, off):
    return rd8(buf, off + TCP_FLAGS)


@njit(cache=True, inline="always")
def tcp_window(buf, off):
    return rd16(buf, off + TCP_WIN)


@hot
def tcp_write_options(buf, off, mss, wscale, sack_perm, ts_val, ts_ecr):
    """Write options in Linux's SYN order, padded with NOPs to a multiple of 4.
    Pass -1 (or 0 for ``sack_perm``) to omit one. Returns the options length (≤ 20)."""
    p = off
    if mss >= 0:
        wr8(buf, p, KIND_MSS)
        wr8(buf, p + 1, 4)
        wr16(buf, p + 2, mss)
        p += 4
    if ts_val >= 0:
        if sack_perm:
            wr8(buf, p, KIND_SACK_PERM)
            wr8(buf, p + 1, 2)
        else:
            wr8(buf, p, KIND_NOP)
            wr8(buf, p + 1, KIND_NOP)
        wr8(buf, p + 2, KIND_TS)
        wr8(buf, p + 3, 10)
        wr32(buf, p + 4, ts_val)
        wr32(buf, p + 8, max(ts_ecr, 0))
        p += 12
    elif sack_perm:
        wr8(buf, p, KIND_NOP)
        wr8(buf, p + 1, KIND_NOP)
        wr8(buf, p + 2, KIND_SACK_PERM)
        wr8(buf, p + 3, 2)
        p += 4
    if wscale >= 0:
        wr8(buf, p, KIND_NOP)
        wr8(buf, p + 1, KIND_WSCALE)
        wr8(buf, p + 2, 3)
        wr8(buf, p + 3, min(wscale, 14))
        p += 4
    return p - off


@hot
def tcp_write_sack(buf, off, blocks, n):
    """NOP NOP SACK(left, right)*n; ``blocks`` holds 2n int64 edges. Returns the length."""
    n = min(n, MAX_SACK_BLOCKS)
    wr8(buf, off, KIND_NOP)
    wr8(buf, off + 1, KIND_NOP)
    wr8(buf, off + 2, KIND_SACK)
    wr8(buf, off + 3, 2 + 8 * n)
    for b in range(n):
        wr32(buf, off + 4 + 8 * b, blocks[2 * b])
        wr32(buf, off + 8 + 8 * b, blocks[2 * b + 1])
    return 4 + 8 * n


@hot
def tcp_write(buf, off, sport, dport, seq, ack, flags, window, opt_len):
    """Write the fixed header (checksum 0, urgent 0) for ``opt_len`` bytes of options
    (a multiple of 4) already at ``off + 20``; returns the payload offset."""
    wr16(buf, off + TCP_SPORT, sport)
    wr16(buf, off + TCP_DPORT, dport)
    wr32(buf, off + TCP_SEQ, seq & 0xFFFFFFFF)
    wr32(buf, off + TCP_ACK, ack & 0xFFFFFFFF)
    wr8(buf, off + TCP_OFF, ((TCP_HLEN + opt_len) >> 2) << 4)
    wr8(buf, off + TCP_FLAGS, flags)
    wr16(buf, off + TCP_WIN, window)
    wr16(buf, off + TCP_CSUM, 0)
    wr16(buf, off + TCP_URG, 0)
    return off + TCP_HLEN + opt_len


@hot
def tcp_fill_checksum(buf, off, seg_len, src, dst):
    wr16(buf, off + TCP_CSUM, 0)
    wr16(buf, off + TCP_CSUM,
         csum_finish(csum_add(buf, off, seg_len, csum_pseudo_ipv4(src, dst, PROTO_TCP, seg_len))))


@dataclass
class TcpRepr:
    sport: int
    dport: int
    seq: int
    ack: int
    flags: int
    window: int
    mss: int = -1
    wscale: int = -1
    sack_perm: bool = False
    ts_val: int = -1
    ts_ecr: int = -1
    sack: list = field(default_factory=list)
    payload: bytes = b""

    @classmethod
    def parse(cls, data: bytes, src: str, dst: str, verify_checksum: bool = True) -> "TcpRepr":
        a = as_array(data)
        cause, hlen = tcp_check(a, 0, len(a), ip_to_int(src), ip_to_int(dst), verify_checksum)
        if cause != OK:
            raise ValueError(f"bad TCP segment (cause {cause})")
        o = new_options()
        if tcp_parse_options(a, 0, hlen, o) != OK:
            raise ValueError("bad TCP options")
        sack = [(int(o[OPT_SACK0 + 2 * i]), int(o[OPT_SACK0 + 2 * i + 1])) for i in range(int(o[OPT_SACK_N]))]
        return cls(int(tcp_sport(a, 0)), int(tcp_dport(a, 0)), int(tcp_seq(a, 0)), int(tcp_ack(a, 0)),
                   int(tcp_flags(a, 0)), int(tcp_window(a, 0)), int(o[OPT_MSS]), int(o[OPT_WSCALE]),
                   bool(o[OPT_SACK_PERM]), int(o[OPT_TS_VAL]), int(o[OPT_TS_ECR]), sack, bytes(data[hlen:]))

    def emit(self, src: str, dst: str) -> bytes:
        a = np.zeros(60 + len(self.payload), np.uint8)
        n = tcp_write_options(a, TCP_HLEN, self.mss, self.wscale, self.sack_perm, self.ts_val, self.ts_ecr)
        if self.sack:
            blocks = np.array([e for b in self.sack for e in b], np.int64)
            n += tcp_write_sack(a, TCP_HLEN + n, blocks, len(self.sack))
        if n > 40:
            raise ValueError("TCP options exceed 40 bytes")
        p = tcp_write(a, 0, self.sport, self.dport, self.seq, self.ack, self.flags, self.window, n)
        a[p:p + len(self.payload)] = np.frombuffer(self.payload, np.uint8)
        seg = p + len(self.payload)
        tcp_fill_checksum(a, 0, seg, ip_to_int(src), ip_to_int(dst))
        return a[:seg].tobytes()

"""IGMP messages: v1/v2 (RFC 2236 §2) and v3 (RFC 3376 §4).

v1/v2 (8 bytes): type @0, max response time @1 (1/10 s), checksum @2, group @4.
v3 query (≥ 12 bytes): the same first 8 + S/QRV @8, QQIC @9, number of sources @10,
sources @12. Version of a query by length (RFC 3376 §7.1): 8 bytes and code 0 = v1,
8 bytes and code ≠ 0 = v2, ≥ 12 bytes = v3; any other length is ignored.
v3 report (type 0x22): reserved @1, checksum @2, reserved @4, number of records @6,
records @8, each: record type @0, aux data length @1 (32-bit words), number of
sources @2, multicast address @4, sources @8, aux data.
All IGMP is sent with TTL 1 and the Router Alert option (RFC 2236 §2, RFC 3376 §4).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numba import njit

from ..mem.hotpath import hot

from .bytes import as_array, int_to_ip, ip_to_int, rd16, rd32, rd8, wr16, wr32, wr8
from .causes import BAD_CHECKSUM, BAD_HEADER, OK, TRUNCATED
from .checksum import csum_add, csum_finish

IGMP_QUERY, IGMPV1_REPORT, IGMPV2_REPORT, IGMPV2_LEAVE, IGMPV3_REPORT = 0x11, 0x12, 0x16, 0x17, 0x22
MODE_IS_INCLUDE, MODE_IS_EXCLUDE, CHANGE_TO_INCLUDE, CHANGE_TO_EXCLUDE = 1, 2, 3, 4
ALL_SYSTEMS = 0xE0000001    # 224.0.0.1: general queries
ALL_ROUTERS = 0xE0000002    # 224.0.0.2: v2 leave
IGMPV3_ROUTERS = 0xE0000016  # 224.0.0.22: v3 reports
PROTO_IGMP = 2


@hot(inline="always")
def igmp_check(buf, off, l4_len):
    """Length and checksum (over the whole IGMP message) of any IGMP message."""
    if l4_len < 8:
        return TRUNCATED
    if csum_finish(csum_add(buf, off, l4_len, np.int64(0))) != 0:
        return BAD_CHECKSUM
    return OK


@njit(cache=True, inline="always")
def igmp_type(buf, off):
    return rd8(buf, off)


@njit(cache=True, inline="always")
def igmp_group(buf, off):
    return rd32(buf, off + 4)


@njit(cache=True, inline="always")
def igmpv3_code_to_ds(code):
    """RFC 3376 §4.1.1: Max Resp Code -> tenths of a second (floating point form >= 128)."""
    if code < 128:
        return code
    return ((code & 0xF) | 0x10) << (((code >> 4) & 7) + 3)


@hot
def igmp_query_decode(buf, off, l4_len):
    """Returns (cause, version, max_resp_ds, group) for a query already igmp_check'ed."""
    code = rd8(buf, off + 1)
    group = rd32(buf, off + 4)
    if l4_len == 8:
        if code == 0:
            return OK, 1, 100, group      # v1: fixed 10 s (RFC 2236 §4)
        return OK, 2, code, group
    if l4_len < 12:
        return BAD_HEADER, 0, 0, 0
    nsrc = rd16(buf, off + 10)
    if 12 + 4 * nsrc > l4_len:
        return TRUNCATED, 0, 0, 0
    return OK, 3, igmpv3_code_to_ds(code), group


@hot
def igmpv2_write(buf, off, typ, max_resp, group):
    """v1/v2 message (report, leave, query); returns the end offset."""
    wr8(buf, off, typ)
    wr8(buf, off + 1, max_resp)
    wr16(buf, off + 2, 0)
    wr32(buf, off + 4, group)
    wr16(buf, off + 2, csum_finish(csum_add(buf, off, 8, np.int64(0))))
    return off + 8


@hot
def igmpv3_write_query(buf, off, max_resp_code, group, qrv, qqic):
    """v3 query with no sources (general or group-specific); returns the end offset."""
    wr8(buf, off, IGMP_QUERY)
    wr8(buf, off + 1, max_resp_code)
    wr16(buf, off + 2, 0)
    wr32(buf, off + 4, group)
    wr8(buf, off + 8, qrv & 7)
    wr8(buf, off + 9, qqic)
    wr16(buf, off + 10, 0)
    wr16(buf, off + 2, csum_finish(csum_add(buf, off, 12, np.int64(0))))
    return off + 12


@hot
def igmpv3_write_report(buf, off, rtypes, groups, n):
    """v3 report with ``n`` source-less records (any-source membership); returns the end."""
    wr8(buf, off, IGMPV3_REPORT)
    wr8(buf, off + 1, 0)
    wr16(buf, off + 2, 0)
    wr16(buf, off + 4, 0)
    wr16(buf, off + 6, n)
    p = off + 8
    for i in range(n):
        wr8(buf, p, rtypes[i])
        wr8(buf, p + 1, 0)
        wr16(buf, p + 2, 0)
        wr32(buf, p + 4, groups[i])
        p += 8
    wr16(buf, off + 2, csum_finish(csum_add(buf, off, p - off, np.int64(0))))
    return p


@hot
def igmpv3_report_check(buf, off, l4_len):
    """Walk the records of a v3 report; returns (cause, number of records)."""
    if l4_len < 8:
        return TRUNCATED, 0
    n = rd16(buf, off + 6)
    p = off + 8
    end = off + l4_len
    for _ in range(n):
        if end - p < 8:
            return TRUNCATED, 0
        p += 8 + 4 * rd16(buf, p + 2) + 4 * rd8(buf, p + 1)
        if p > end:
            return TRUNCATED, 0
    return OK, n


@njit(cache=True, inline="always")
def igmpv3_record_at(buf, p):
    """(record type, number of sources, group, offset of the next record) at ``p``
    (only after igmpv3_report_check said OK)."""
    return (rd8(buf, p), rd16(buf, p + 2), rd32(buf, p + 4),
            p + 8 + 4 * rd16(buf, p + 2) + 4 * rd8(buf, p + 1))


@dataclass
class IgmpRepr:
    """Any IGMP message. ``records`` (v3 report) is a list of (record type, group, [sources])."""
    type: int
    max_resp: int = 0
    group: str = "0.0.0.0"
    version: int = 2
    records: list = field(default_factory=list)

    @classmethod
    def parse(cls, data: bytes) -> "IgmpRepr":
        a = as_array(data)
        n = len(a)
        if igmp_check(a, 0, n) != OK:
            raise ValueError("bad IGMP message (length or checksum)")
        t = int(igmp_type(a, 0))
        if t == IGMP_QUERY:
            cause, ver, mrt, group = igmp_query_decode(a, 0, n)
            if cause != OK:
                raise ValueError("bad IGMP query")
            return cls(t, int(mrt), int_to_ip(int(group)), int(ver))
        if t == IGMPV3_REPORT:
            cause, nrec = igmpv3_report_check(a, 0, n)
            if cause != OK:
                raise ValueError("bad IGMPv3 report")
            recs, p = [], 8
            for _ in range(nrec):
                rt, ns, g, nxt = igmpv3_record_at(a, p)
                srcs = [int_to_ip(int(rd32(a, p + 8 + 4 * k))) for k in range(ns)]
                recs.append((int(rt), int_to_ip(int(g)), srcs))
                p = int(nxt)
            return cls(t, 0, "0.0.0.0", 3, recs)
        return cls(t, int(rd8(a, 1)), int_to_ip(int(igmp_group(a, 0))), 1 if t == IGMPV1_REPORT else 2)

    def emit(self) -> bytes:
        a = np.zeros(8 + 8 * max(1, len(self.records)) + 4, np.uint8)
        if self.type == IGMPV3_REPORT:
            rt = np.array([r[0] for r in self.records], np.int64)
            gs = np.array([ip_to_int(r[1]) for r in self.records], np.int64)
            end = igmpv3_write_report(a, 0, rt, gs, len(self.records))
        elif self.type == IGMP_QUERY and self.version == 3:
            end = igmpv3_write_query(a, 0, self.max_resp, ip_to_int(self.group), 2, 125)
        else:
            end = igmpv2_write(a, 0, self.type, self.max_resp, ip_to_int(self.group))
        return a[:end].tobytes()

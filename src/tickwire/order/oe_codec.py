"""Numba encoders and the frame checker for the order-entry messages (wire_layout.py).

Encoders write one whole frame (SOFH + SBE header + root block) at ``buf[off:]`` and
return its length; the caller guarantees room for MAX_FRAME bytes. The checker
``frame_check`` is the only function that looks at bytes from the peer before they are
trusted: it validates the SOFH, the SBE header (schema id, template range) and that the
header's blockLength covers the template's fields and fits in the frame.
Little-endian field access comes from tickwire.sbe.le (the project's SBE primitives).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..sbe.le import rd_i32, rd_i64, rd_u8, rd_u16, rd_u32, wr_u8, wr_u16, wr_u32, wr_u64
from ..mem.hotpath import into_runtime_free_callers
from . import wire_layout as W

_BLOCK = np.zeros(W.MAX_TEMPLATE - W.MIN_TEMPLATE + 1, np.int64)
for _t, _b in W.BLOCK.items():
    _BLOCK[_t - W.MIN_TEMPLATE] = _b
_BLOCK.setflags(write=False)

# frame_check results (< 0)
FC_NEED_MORE = 0
FC_BAD_SOFH, FC_BAD_LENGTH, FC_BAD_SCHEMA, FC_BAD_TEMPLATE, FC_SHORT_BLOCK = -1, -2, -3, -4, -5
FC_NAMES = {FC_BAD_SOFH: "bad_sofh", FC_BAD_LENGTH: "bad_length", FC_BAD_SCHEMA: "bad_schema",
            FC_BAD_TEMPLATE: "bad_template", FC_SHORT_BLOCK: "short_block"}


@njit(cache=True, inline="always")
def _head(buf, off, template, block):
    n = W.BODY + block
    # SOFH is big-endian (network order), unlike the SBE body
    wr_u8(buf, off, n >> 8)
    wr_u8(buf, off + 1, n & 0xFF)
    wr_u8(buf, off + 2, W.SOFH_SBE_LE >> 8)
    wr_u8(buf, off + 3, W.SOFH_SBE_LE & 0xFF)
    wr_u16(buf, off + 4, block)
    wr_u16(buf, off + 6, template)
    wr_u16(buf, off + 8, W.SCHEMA_ID)
    wr_u16(buf, off + 10, W.SCHEMA_VERSION)
    b = off + W.BODY
    for k in range(block):      # reserved/padding bytes are zero on the wire
        buf[b + k] = 0
    return b


@njit(cache=True, _nrt=False)
def frame_check(buf, off, avail):
    """Length of the complete frame at ``off`` (> 0), FC_NEED_MORE (0) when fewer than a
    whole frame's bytes are available, or a negative FC_* code for garbage."""
    if avail < W.SOFH:
        return FC_NEED_MORE
    n = (rd_u8(buf, off) << 8) | rd_u8(buf, off + 1)
    enc = (rd_u8(buf, off + 2) << 8) | rd_u8(buf, off + 3)
    if enc != W.SOFH_SBE_LE:
        return FC_BAD_SOFH
    if n < W.BODY or n > W.MAX_FRAME:
        return FC_BAD_LENGTH
    if avail < n:
        return FC_NEED_MORE
    block = rd_u16(buf, off + 4)
    tid = rd_u16(buf, off + 6)
    if rd_u16(buf, off + 8) != W.SCHEMA_ID:
        return FC_BAD_SCHEMA
    if tid < W.MIN_TEMPLATE or tid > W.MAX_TEMPLATE or _BLOCK[tid - W.MIN_TEMPLATE] == 0:
        return FC_BAD_TEMPLATE
    if block < _BLOCK[tid - W.MIN_TEMPLATE] or W.BODY + block > n:
        return FC_SHORT_BLOCK
    return n


@njit(cache=True, inline="always")
def template_of(buf, off):
    return rd_u16(buf, off + 6)


# --- session layer ----------------------------------------------------------------------------

@njit(cache=True, _nrt=False)
def enc_negotiate(buf, off, uuid, ts, firm):
    b = _head(buf, off, W.NEGOTIATE, 20)
    wr_u64(buf, b + W.F_UUID, uuid)
    wr_u64(buf, b + W.F_REQ_TS, ts)
    wr_u32(buf, b + W.F_NEG_FIRM, firm)
    return W.BODY + 20


@njit(cache=True, _nrt=False)
def enc_negotiation_response(buf, off, uuid, ts, prev_seq, prev_uuid):
    b = _head(buf, off, W.NEGOTIATION_RESPONSE, 28)
    wr_u64(buf, b + W.F_UUID, uuid)
    wr_u64(buf, b + W.F_REQ_TS, ts)
    wr_u32(buf, b + W.F_NEGR_PREV_SEQ, prev_seq)
    wr_u64(buf, b + W.F_NEGR_PREV_UUID, prev_uuid)
    return W.BODY + 28


@njit(cache=True, _nrt=False)
def enc_establish(buf, off, uuid, ts, next_seq, keepalive_ms):
    b = _head(buf, off, W.ESTABLISH, 24)
    wr_u64(buf, b + W.F_UUID, uuid)
    wr_u64(buf, b + W.F_REQ_TS, ts)
    wr_u32(buf, b + W.F_EST_NEXT_SEQ, next_seq)
    wr_u32(buf, b + W.F_EST_KEEPALIVE, keepalive_ms)
    return W.BODY + 24


@njit(cache=True, _nrt=False)
def enc_establishment_ack(buf, off, uuid, ts, next_seq, prev_seq, prev_uuid, keepalive_ms):
    b = _head(buf, off, W.ESTABLISHMENT_ACK, 36)
    wr_u64(buf, b + W.F_UUID, uuid)
    wr_u64(buf, b + W.F_REQ_TS, ts)
    wr_u32(buf, b + W.F_ACK_NEXT_SEQ, next_seq)
    wr_u32(buf, b + W.F_ACK_PREV_SEQ, prev_seq)
    wr_u64(buf, b + W.F_ACK_PREV_UUID, prev_uuid)
    wr_u32(buf, b + W.F_ACK_KEEPALIVE, keepalive_ms)
    return W.BODY + 36


@njit(cache=True, _nrt=False)
def enc_establishment_reject(buf, off, uuid, ts, next_seq, err):
    b = _head(buf, off, W.ESTABLISHMENT_REJECT, 22)
    wr_u64(buf, b + W.F_UUID, uuid)
    wr_u64(buf, b + W.F_REQ_TS, ts)
    wr_u32(buf, b + W.F_ESTREJ_NEXT_SEQ, next_seq)
    wr_u16(buf, b + W.F_ESTREJ_ERR, err)
    return W.BODY + 22


@njit(cache=True, _nrt=False)
def enc_sequence(buf, off, uuid, next_seq, lapsed):
    b = _head(buf, off, W.SEQUENCE, 14)
    wr_u64(buf, b + W.F_UUID, uuid)
    wr_u32(buf, b + W.F_SEQ_NEXT_SEQ, next_seq)
    wr_u8(buf, b + W.F_SEQ_FTI, 1)
    wr_u8(buf, b + W.F_SEQ_LAPSED, lapsed)
    return W.BODY + 14


@njit(cache=True, _nrt=False)
def enc_terminate(buf, off, uuid, ts, err):
    b = _head(buf, off, W.TERMINATE, 18)
    wr_u64(buf, b + W.F_UUID, uuid)
    wr_u64(buf, b + W.F_REQ_TS, ts)
    wr_u16(buf, b + W.F_TERM_ERR, err)
    return W.BODY + 18


@njit(cache=True, _nrt=False)
def enc_retransmit(buf, off, template, uuid, last_uuid, ts, from_seq, count):
    """RetransmitRequest508 or Retransmission509 (same layout)."""
    b = _head(buf, off, template, 30)
    wr_u64(buf, b + W.F_UUID, uuid)
    wr_u64(buf, b + W.F_RT_LAST_UUID, last_uuid)
    wr_u64(buf, b + W.F_RT_REQ_TS, ts)
    wr_u32(buf, b + W.F_RT_FROM, from_seq)
    wr_u16(buf, b + W.F_RT_COUNT, count)
    return W.BODY + 30


@njit(cache=True, _nrt=False)
def enc_retransmit_reject(buf, off, uuid, last_uuid, ts, err):
    b = _head(buf, off, W.RETRANSMIT_REJECT, 26)
    wr_u64(buf, b + W.F_UUID, uuid)
    wr_u64(buf, b + W.F_RT_LAST_UUID, last_uuid)
    wr_u64(buf, b + W.F_RT_REQ_TS, ts)
    wr_u16(buf, b + W.F_RTREJ_ERR, err)
    return W.BODY + 26


@njit(cache=True, _nrt=False)
def enc_not_applied(buf, off, uuid, from_seq, count):
    """NotApplied513: the venue tells the client which of its sequence numbers it skipped."""
    b = _head(buf, off, W.NOT_APPLIED, 16)
    wr_u64(buf, b + W.F_UUID, uuid)
    wr_u32(buf, b + W.F_NA_FROM, from_seq)
    wr_u32(buf, b + W.F_NA_COUNT, count)
    return W.BODY + 16


# --- business messages ------------------------------------------------------------------------

# inlined into runtime-free callers: the call itself (buffer passed field by field, 9
# arguments) cost about what the ~20 stores of the encoding do
@njit(cache=True, _nrt=False, inline=into_runtime_free_callers)
def enc_new_order(buf, off, seq, now, clordid, price, qty, secid, side, tif):
    b = _head(buf, off, W.NEW_ORDER, 40)
    wr_u32(buf, b + W.F_SEQNUM, seq)
    wr_u64(buf, b + W.F_SENDING_TIME, now)
    wr_u64(buf, b + W.F_CLORDID, clordid)
    wr_u64(buf, b + W.F_NO_PRICE, price)
    wr_u32(buf, b + W.F_NO_QTY, qty)
    wr_u32(buf, b + W.F_NO_SECID, secid)
    wr_u8(buf, b + W.F_NO_SIDE, side)
    wr_u8(buf, b + W.F_NO_ORDTYPE, W.ORD_LIMIT)
    wr_u8(buf, b + W.F_NO_TIF, tif)
    return W.BODY + 40


@njit(cache=True, _nrt=False)
def enc_replace(buf, off, seq, now, clordid, oid, price, qty, secid, side, tif):
    b = _head(buf, off, W.REPLACE_REQUEST, 48)
    wr_u32(buf, b + W.F_SEQNUM, seq)
    wr_u64(buf, b + W.F_SENDING_TIME, now)
    wr_u64(buf, b + W.F_CLORDID, clordid)
    wr_u64(buf, b + W.F_RP_OID, oid)
    wr_u64(buf, b + W.F_RP_PRICE, price)
    wr_u32(buf, b + W.F_RP_QTY, qty)
    wr_u32(buf, b + W.F_RP_SECID, secid)
    wr_u8(buf, b + W.F_RP_SIDE, side)
    wr_u8(buf, b + W.F_RP_ORDTYPE, W.ORD_LIMIT)
    wr_u8(buf, b + W.F_RP_TIF, tif)
    return W.BODY + 48


@njit(cache=True, _nrt=False)
def enc_cancel(buf, off, seq, now, clordid, oid, secid, side):
    b = _head(buf, off, W.CANCEL_REQUEST, 36)
    wr_u32(buf, b + W.F_SEQNUM, seq)
    wr_u64(buf, b + W.F_SENDING_TIME, now)
    wr_u64(buf, b + W.F_CLORDID, clordid)
    wr_u64(buf, b + W.F_CX_OID, oid)
    wr_u32(buf, b + W.F_CX_SECID, secid)
    wr_u8(buf, b + W.F_CX_SIDE, side)
    return W.BODY + 36


@njit(cache=True, _nrt=False)
def enc_exec(buf, off, template, seq, now, clordid, oid, secid, side, price, qty, leaves, cum,
             last_px, last_qty, trade_id, reason):
    """Any execution report / cancel reject (the template decides which extras are written)."""
    block = 76 if template == W.ER_TRADE else (60 if template == W.ER_REJECT or template == W.CANCEL_REJECT else 56)
    b = _head(buf, off, template, block)
    wr_u32(buf, b + W.F_SEQNUM, seq)
    wr_u64(buf, b + W.F_SENDING_TIME, now)
    wr_u64(buf, b + W.F_CLORDID, clordid)
    wr_u64(buf, b + W.F_ER_OID, oid)
    wr_u32(buf, b + W.F_ER_SECID, secid)
    wr_u8(buf, b + W.F_ER_SIDE, side)
    wr_u64(buf, b + W.F_ER_PRICE, price)
    wr_u32(buf, b + W.F_ER_QTY, qty)
    wr_u32(buf, b + W.F_ER_LEAVES, leaves)
    wr_u32(buf, b + W.F_ER_CUM, cum)
    if template == W.ER_TRADE:
        wr_u64(buf, b + W.F_ER_LAST_PX, last_px)
        wr_u32(buf, b + W.F_ER_LAST_QTY, last_qty)
        wr_u32(buf, b + W.F_ER_TRADE_ID, trade_id)
        wr_u8(buf, b + W.F_ER_AGGRESSOR, 0)
    elif block == 60:
        wr_u16(buf, b + W.F_ER_REASON, reason)
    return W.BODY + block


# --- readers (after frame_check) --------------------------------------------------------------

@njit(cache=True, inline="always")
def rd_seqnum(buf, off):
    return rd_u32(buf, off + W.BODY + W.F_SEQNUM)


@njit(cache=True, inline="always")
def rd_field_u64(buf, off, field):
    return rd_i64(buf, off + W.BODY + field)


@njit(cache=True, inline="always")
def rd_field_u32(buf, off, field):
    return rd_u32(buf, off + W.BODY + field)


@njit(cache=True, inline="always")
def rd_field_i32(buf, off, field):
    return rd_i32(buf, off + W.BODY + field)


@njit(cache=True, inline="always")
def rd_field_u16(buf, off, field):
    return rd_u16(buf, off + W.BODY + field)


@njit(cache=True, inline="always")
def rd_field_u8(buf, off, field):
    return rd_u8(buf, off + W.BODY + field)


def is_business(template: int) -> bool:
    return template >= W.NEW_ORDER

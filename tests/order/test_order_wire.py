"""Order-entry schema and codec: constants agree with the XML (through tickwire.sbe), the
Numba encoders produce frames the project's independent Python SBE codec decodes, and the
frame checker refuses garbage without reading past the frame."""

import struct

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tickwire.order import wire_layout as W
from tickwire.order.oe_codec import (FC_BAD_LENGTH, FC_BAD_SCHEMA, FC_BAD_SOFH, FC_BAD_TEMPLATE, FC_NEED_MORE,
                                     FC_SHORT_BLOCK, enc_cancel, enc_exec, enc_new_order, enc_replace, frame_check)
from tickwire.sbe import load
from tickwire.sbe.codec import Codec

XML = "src/tickwire/order/schemas/orderentry.xml"


def schema():
    from importlib.resources import files
    return load(str(files("tickwire.order") / "schemas" / "orderentry.xml"))


def test_constants_match_the_schema():
    s = schema()
    assert s.id == W.SCHEMA_ID and s.version == W.SCHEMA_VERSION
    for tid, block in W.BLOCK.items():
        assert s.messages[tid].block_length == block, tid
    checks = {
        W.NEW_ORDER: dict(SeqNum=W.F_SEQNUM, SendingTimeEpoch=W.F_SENDING_TIME, ClOrdID=W.F_CLORDID,
                          Price=W.F_NO_PRICE, OrderQty=W.F_NO_QTY, SecurityID=W.F_NO_SECID, Side=W.F_NO_SIDE,
                          OrdType=W.F_NO_ORDTYPE, TimeInForce=W.F_NO_TIF),
        W.REPLACE_REQUEST: dict(OrderID=W.F_RP_OID, Price=W.F_RP_PRICE, OrderQty=W.F_RP_QTY,
                                SecurityID=W.F_RP_SECID, Side=W.F_RP_SIDE, OrdType=W.F_RP_ORDTYPE,
                                TimeInForce=W.F_RP_TIF),
        W.CANCEL_REQUEST: dict(OrderID=W.F_CX_OID, SecurityID=W.F_CX_SECID, Side=W.F_CX_SIDE),
        W.ER_TRADE: dict(OrderID=W.F_ER_OID, SecurityID=W.F_ER_SECID, Side=W.F_ER_SIDE, Price=W.F_ER_PRICE,
                         OrderQty=W.F_ER_QTY, LeavesQty=W.F_ER_LEAVES, CumQty=W.F_ER_CUM, LastPx=W.F_ER_LAST_PX,
                         LastQty=W.F_ER_LAST_QTY, TradeID=W.F_ER_TRADE_ID, AggressorIndicator=W.F_ER_AGGRESSOR),
        W.ER_REJECT: dict(OrdRejReason=W.F_ER_REASON), W.CANCEL_REJECT: dict(CxlRejReason=W.F_ER_REASON),
        W.ESTABLISHMENT_ACK: dict(UUID=W.F_UUID, RequestTimestamp=W.F_REQ_TS, NextSeqNo=W.F_ACK_NEXT_SEQ,
                                  PreviousSeqNo=W.F_ACK_PREV_SEQ, PreviousUUID=W.F_ACK_PREV_UUID,
                                  KeepAliveInterval=W.F_ACK_KEEPALIVE),
        W.ESTABLISH: dict(NextSeqNo=W.F_EST_NEXT_SEQ, KeepAliveInterval=W.F_EST_KEEPALIVE),
        W.SEQUENCE: dict(NextSeqNo=W.F_SEQ_NEXT_SEQ, FaultToleranceIndicator=W.F_SEQ_FTI,
                         KeepAliveIntervalLapsed=W.F_SEQ_LAPSED),
        W.RETRANSMIT_REQUEST: dict(LastUUID=W.F_RT_LAST_UUID, RequestTimestamp=W.F_RT_REQ_TS,
                                   FromSeqNo=W.F_RT_FROM, MsgCount=W.F_RT_COUNT),
        W.TERMINATE: dict(ErrorCodes=W.F_TERM_ERR), W.ESTABLISHMENT_REJECT: dict(ErrorCodes=W.F_ESTREJ_ERR),
        W.NOT_APPLIED: dict(FromSeqNo=W.F_NA_FROM, MsgCount=W.F_NA_COUNT),
        W.RETRANSMIT_REJECT: dict(ErrorCodes=W.F_RTREJ_ERR),
    }
    for tid, fields in checks.items():
        m = s.messages[tid]
        for name, off in fields.items():
            assert m.field(name).offset == off, (tid, name)
    # every execution report shares the 56-byte prefix the session and engine rely on
    for tid in (W.ER_NEW, W.ER_REJECT, W.ER_TRADE, W.ER_MODIFY, W.ER_CANCEL, W.CANCEL_REJECT):
        m = s.messages[tid]
        assert [(f.name, f.offset) for f in m.fields[:10]] == [(f.name, f.offset) for f in s.messages[W.ER_NEW].fields]


def decode(frame: bytes):
    n, enc = struct.unpack_from(">HH", frame)
    assert n == len(frame) and enc == 0xCAFE
    msg, end = Codec(schema()).decode(frame, 4)
    assert 4 + end == len(frame)
    return msg


def test_encoders_decode_with_the_sbe_codec():
    buf = np.zeros(256, np.uint8)
    n = enc_new_order(buf, 0, 7, 123456789, 42, 5_000_250_000_000, 3, 777, 2, 3)
    m = decode(buf[:n].tobytes())
    assert m["SeqNum"] == 7 and m["ClOrdID"] == 42 and m["Price"]["mantissa"] == 5_000_250_000_000
    assert m["OrderQty"] == 3 and m["SecurityID"] == 777 and m["Side"] == "Sell" and m["TimeInForce"] == "IOC"
    assert m["OrdType"] == "Limit" and m["SendingTimeEpoch"] == 123456789
    n = enc_replace(buf, 10, 8, 1, 42, 99, 4_000_000, 5, 778, 1, 0)
    m = decode(buf[10:10 + n].tobytes())
    assert (m["OrderID"], m["Price"]["mantissa"], m["OrderQty"], m["Side"]) == (99, 4_000_000, 5, "Buy")
    n = enc_cancel(buf, 0, 9, 1, 42, 99, 778, 1)
    m = decode(buf[:n].tobytes())
    assert (m["SeqNum"], m["ClOrdID"], m["OrderID"], m["SecurityID"]) == (9, 42, 99, 778)
    n = enc_exec(buf, 0, W.ER_TRADE, 11, 1, 42, 99, 778, 1, 4_000_000, 5, 2, 3, 3_999_000, 3, 17, 0)
    m = decode(buf[:n].tobytes())
    assert (m["LastPx"]["mantissa"], m["LastQty"], m["LeavesQty"], m["CumQty"], m["TradeID"]) == \
        (3_999_000, 3, 2, 3, 17)
    n = enc_exec(buf, 0, W.CANCEL_REJECT, 12, 1, 42, 99, 778, 1, 0, 0, 0, 0, 0, 0, 0, 5)
    assert decode(buf[:n].tobytes())["CxlRejReason"] == 5


def test_frame_check_refuses_garbage():
    buf = np.zeros(512, np.uint8)
    n = enc_new_order(buf, 0, 1, 1, 1, 100, 1, 1, 1, 0)
    assert frame_check(buf, 0, n) == n
    assert frame_check(buf, 0, n - 1) == FC_NEED_MORE
    assert frame_check(buf, 0, 3) == FC_NEED_MORE
    bad = buf.copy(); bad[2] = 0xBE
    assert frame_check(bad, 0, n) == FC_BAD_SOFH
    bad = buf.copy(); bad[0], bad[1] = 0, 5
    assert frame_check(bad, 0, n) == FC_BAD_LENGTH
    bad = buf.copy(); bad[0], bad[1] = 0x10, 0
    assert frame_check(bad, 0, 512) == FC_BAD_LENGTH
    bad = buf.copy(); bad[8] = 1
    assert frame_check(bad, 0, n) == FC_BAD_SCHEMA
    bad = buf.copy(); bad[6], bad[7] = 0xFF, 0x01   # template 511 (unused id)
    assert frame_check(bad, 0, n) == FC_BAD_TEMPLATE
    bad = buf.copy(); bad[4] = 39
    assert frame_check(bad, 0, n) == FC_SHORT_BLOCK
    bad = buf.copy(); bad[4] = 41
    assert frame_check(bad, 0, n) == FC_SHORT_BLOCK    # block longer than the frame


@settings(max_examples=400, deadline=None)
@given(st.binary(min_size=0, max_size=300))
def test_frame_check_never_claims_more_than_available(data):
    # padded so a (buggy) over-read would not fault, but the claim must stay within avail
    buf = np.zeros(len(data) + 512, np.uint8)
    buf[:len(data)] = np.frombuffer(data, np.uint8)
    r = frame_check(buf, 0, len(data))
    assert r <= len(data)
    if r > 0:
        assert r >= W.BODY and r <= W.MAX_FRAME

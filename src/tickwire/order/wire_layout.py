"""Byte layout of tickwire's order-entry messages (schemas/orderentry.xml) as constants.

The numbers are written out here rather than read from the XML at import because Numba
freezes globals into cached machine code, and a cache does not notice a change in another
file (numba-hot-path.md §6). tests/order/test_order_wire.py parses the XML with
tickwire.sbe and fails if any constant here disagrees with it.

Frame on TCP: SOFH (Simple Open Framing Header, FIX SOFH 1.0): MessageLength u16
big-endian *including* the 4 SOFH bytes, EncodingType u16 big-endian 0xCAFE (SBE 1.0
little-endian), then the 8-byte SBE header, then the root block.
"""

SCHEMA_ID = 8
SCHEMA_VERSION = 1
SOFH = 4
SOFH_SBE_LE = 0xCAFE
SBE_HDR = 8
BODY = SOFH + SBE_HDR          # offset of the root block inside a frame
MAX_FRAME = 256                # nothing we speak is longer; a longer SOFH length is garbage

# template ids (iLink 3 numbering pattern)
NEGOTIATE, NEGOTIATION_RESPONSE, NEGOTIATION_REJECT = 500, 501, 502
ESTABLISH, ESTABLISHMENT_ACK, ESTABLISHMENT_REJECT = 503, 504, 505
SEQUENCE, TERMINATE, RETRANSMIT_REQUEST, RETRANSMISSION, RETRANSMIT_REJECT, NOT_APPLIED = 506, 507, 508, 509, 510, 513
NEW_ORDER, REPLACE_REQUEST, CANCEL_REQUEST = 514, 515, 516
ER_NEW, ER_REJECT, ER_TRADE, ER_MODIFY, ER_CANCEL, CANCEL_REJECT = 522, 523, 525, 531, 534, 535

BLOCK = {NEGOTIATE: 20, NEGOTIATION_RESPONSE: 28, NEGOTIATION_REJECT: 18, ESTABLISH: 24, ESTABLISHMENT_ACK: 36,
         ESTABLISHMENT_REJECT: 22, SEQUENCE: 14, TERMINATE: 18, RETRANSMIT_REQUEST: 30, RETRANSMISSION: 30,
         RETRANSMIT_REJECT: 26, NOT_APPLIED: 16, NEW_ORDER: 40, REPLACE_REQUEST: 48, CANCEL_REQUEST: 36,
         ER_NEW: 56, ER_REJECT: 60, ER_TRADE: 76, ER_MODIFY: 56, ER_CANCEL: 56, CANCEL_REJECT: 60}
MIN_TEMPLATE, MAX_TEMPLATE = 500, 535

# session messages: field offsets in the root block
F_UUID, F_REQ_TS = 0, 8
F_NEG_FIRM = 16
F_NEGR_PREV_SEQ, F_NEGR_PREV_UUID = 16, 20
F_REJ_ERR_NEG = 16                        # NegotiationReject / Terminate ErrorCodes
F_EST_NEXT_SEQ, F_EST_KEEPALIVE = 16, 20
F_ACK_NEXT_SEQ, F_ACK_PREV_SEQ, F_ACK_PREV_UUID, F_ACK_KEEPALIVE = 16, 20, 24, 32
F_ESTREJ_NEXT_SEQ, F_ESTREJ_ERR = 16, 20
F_SEQ_NEXT_SEQ, F_SEQ_FTI, F_SEQ_LAPSED = 8, 12, 13
F_TERM_ERR = 16
F_RT_LAST_UUID, F_RT_REQ_TS, F_RT_FROM, F_RT_COUNT = 8, 16, 24, 28
F_RTREJ_ERR = 24
F_NA_FROM, F_NA_COUNT = 8, 12

# business messages: common prefix
F_SEQNUM, F_SENDING_TIME, F_CLORDID = 0, 4, 12
# NewOrderSingle514
F_NO_PRICE, F_NO_QTY, F_NO_SECID, F_NO_SIDE, F_NO_ORDTYPE, F_NO_TIF = 20, 28, 32, 36, 37, 38
# OrderCancelReplaceRequest515
F_RP_OID, F_RP_PRICE, F_RP_QTY, F_RP_SECID, F_RP_SIDE, F_RP_ORDTYPE, F_RP_TIF = 20, 28, 36, 40, 44, 45, 46
# OrderCancelRequest516
F_CX_OID, F_CX_SECID, F_CX_SIDE = 20, 28, 32
# execution reports (522/523/525/531/534/535)
F_ER_OID, F_ER_SECID, F_ER_SIDE, F_ER_PRICE, F_ER_QTY, F_ER_LEAVES, F_ER_CUM = 20, 28, 32, 36, 44, 48, 52
F_ER_REASON = 56                          # OrdRejReason / CxlRejReason
F_ER_LAST_PX, F_ER_LAST_QTY, F_ER_TRADE_ID, F_ER_AGGRESSOR = 56, 64, 68, 72

PRICE_NULL = 9223372036854775807
ORD_MARKET, ORD_LIMIT = 1, 2

# Terminate / reject ErrorCodes (our own numbering, carried in ErrorCodes u16)
ERR_NONE, ERR_GARBAGE, ERR_SEQ_LOWER, ERR_KEEPALIVE_LAPSED, ERR_NOT_ESTABLISHED, ERR_UNKNOWN_UUID, ERR_RETRANS_RANGE, \
    ERR_SHUTDOWN, ERR_RETRANS_TIMEOUT = range(9)

"""A trade summary the feed handler refuses reaches neither the strategy's on_trade nor the
risk collar's last price: the engine's trade walk reads 48 under the handler's own rules
(review, session 9)."""

import struct
import time

import numpy as np
import pytest

from tickwire.engine.build import EngineConfig, build_engine, feed_view
from tickwire.engine.core import md_packet
from tickwire.engine.layout import M_TRADE_EVENTS
from tickwire.feed.mdp3 import encode_packet
from tickwire.feed.state import SRC_A, counters
from tickwire.order.layout import I_LAST
from tickwire.sbe import builtin_path, load
from tickwire.sbe.codec import Codec

PX = 123_000_000_000


def _trade_packet():
    codec = Codec(load(builtin_path()))
    m = codec.encode(48, {"TransactTime": 1, "MatchEventIndicator": ["LastTradeMsg"],
                          "NoMDEntries": [{"MDEntryPx": {"mantissa": PX}, "MDEntrySize": 5, "SecurityID": 1001,
                                           "RptSeq": 1, "NumberOfOrders": 1, "AggressorSide": "Buy",
                                           "MDUpdateAction": "New", "MDTradeEntryID": 1}],
                          "NoOrderIDEntries": []})
    return bytearray(encode_packet(1, 1, [m]))


def _run(p):
    E, _ = build_engine(EngineConfig(strategy="taker"))
    md_packet(E, np.frombuffer(bytes(p), np.uint8).copy(), 0, len(p), SRC_A, time.monotonic_ns(), 0)
    return E, counters(feed_view(E))


def test_a_well_formed_trade_reaches_the_engine():
    E, ctr = _run(_trade_packet())
    assert ctr["group_overrun"] == 0 and E.meta[M_TRADE_EVENTS] == 1 and E.risk.inst[0, I_LAST] == PX


@pytest.mark.parametrize("cause", ["group_overrun", "short_root_block"])
def test_a_trade_the_feed_refuses_reaches_neither_on_trade_nor_the_collar(cause):
    p = _trade_packet()
    block = struct.unpack_from("<H", p, 14)[0]       # packet header 12, MsgSize 2, then blockLength
    if cause == "group_overrun":
        p[22 + block + 2] = 200                      # numInGroup 200 in a one-entry message
    else:
        struct.pack_into("<H", p, 14, 0)             # root block of 0 bytes: the group header moves onto it
    E, ctr = _run(p)
    assert sum(v for k, v in ctr.items() if k in ("group_overrun", "block_overrun", "short_entry")) > 0, ctr
    assert E.meta[M_TRADE_EVENTS] == 0 and E.risk.inst[0, I_LAST] == 0

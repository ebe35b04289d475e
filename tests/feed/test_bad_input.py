"""The compiled handler on bad input: counted under a named cause, instruments marked
stale rather than silently wrong, never a crash, never a read past the packet."""

from __future__ import annotations

import struct

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as hs

from tickwire.feed import handler
from tickwire.feed.mdp3 import encode_packet
from tickwire.feed.state import (C_LAST_SEQ, I_DEPTH, I_IDEPTH, I_MINPX, I_STATE, I_STATUS, S_RECOVERING,
                                 S_STALE, S_SYNCED, SRC_A, SRC_SNAPSHOT, counters, new_feed_state, slot_of)
from tickwire.feed.synth import StreamGen, book_entry, definition_message
from tickwire.sbe import builtin_path, load
from tickwire.sbe.codec import Codec

SCHEMA = load(builtin_path())
CODEC = Codec(SCHEMA)


def feed(st, payload, src=SRC_A, guard=0):
    buf = np.full(len(payload) + 64, guard, np.uint8)
    buf[:len(payload)] = np.frombuffer(payload, np.uint8)
    handler.feed_input(st.mem, buf, 0, len(payload), src)


def book_msg(secid=7, rpt=1, level=1, action="New"):
    return CODEC.encode(46, {"TransactTime": 1, "MatchEventIndicator": ["EndOfEvent"], "NoMDEntries": [
        book_entry(100, 5, secid, rpt, level, action, "Bid")]})


def synced_state():
    st = new_feed_state(SCHEMA, max_instruments=4, depth=5, window=4, ring_packets=16)
    feed(st, encode_packet(1, 0, [book_msg()]))
    assert st.inst[slot_of(st, 7), I_STATE] == S_SYNCED
    return st


def test_truncated_and_overrunning_messages_are_counted_and_mark_stale():
    cases = [
        ("truncated_packet", encode_packet(2, 0, [book_msg(rpt=2)])[:20]),
        ("message_overrun", bytearray(encode_packet(2, 0, [book_msg(rpt=2)]))),
        ("group_overrun", bytearray(encode_packet(2, 0, [book_msg(rpt=2)]))),
        ("schema_id_mismatch", bytearray(encode_packet(2, 0, [book_msg(rpt=2)]))),
        ("block_overrun", bytearray(encode_packet(2, 0, [book_msg(rpt=2)]))),
    ]
    struct.pack_into("<H", cases[1][1], 12, 500)          # MsgSize past the packet
    cases[2][1][12 + 2 + 8 + 11 + 2] = 9                   # NoMDEntries numInGroup: 9 x 32 bytes
    struct.pack_into("<H", cases[3][1], 12 + 2 + 4, 2)     # schemaId 2
    struct.pack_into("<H", cases[4][1], 12 + 2, 200)       # blockLength past the message
    for cause, payload in cases:
        st = synced_state()
        feed(st, bytes(payload))
        c = counters(st)
        assert c[cause] == 1, (cause, c)
        assert st.inst[slot_of(st, 7), I_STATE] == S_STALE, cause
        assert st.levels[slot_of(st, 7), 0, 0, 1] == 5      # book untouched
        # The next entry continuing the RptSeq chain proves the book good again.
        feed(st, encode_packet(3, 0, [book_msg(rpt=2, action="Change")]))
        assert st.inst[slot_of(st, 7), I_STATE] == S_SYNCED, cause


def test_unknown_template_and_short_entries_and_bad_levels():
    st = synced_state()
    unknown = bytearray(book_msg(rpt=2))
    struct.pack_into("<H", unknown, 2, 99)
    feed(st, encode_packet(2, 0, [bytes(unknown), book_msg(rpt=2, level=9)]))
    c = counters(st)
    assert c["unknown_template"] == 1 and c["bad_level"] == 1
    assert st.inst[slot_of(st, 7), I_STATE] == S_SYNCED       # level 9 > depth 5: ignored, chain intact
    short = bytearray(book_msg(rpt=3))
    struct.pack_into("<H", short, 8 + 11, 20)                 # entry blockLength 20 < fields we read
    feed(st, encode_packet(3, 0, [bytes(short[:8 + 11 + 3 + 20])]))
    assert counters(st)["short_entry"] == 1
    assert st.inst[slot_of(st, 7), I_STATE] == S_STALE


def test_rpt_jump_sends_instrument_to_recovery_and_snapshot_brings_it_back():
    st = synced_state()
    feed(st, encode_packet(2, 0, [book_msg(rpt=5)]))           # RptSeq 2..4 missing
    s = slot_of(st, 7)
    assert st.inst[s, I_STATE] == S_RECOVERING and counters(st)["rpt_gaps"] == 1
    from tickwire.feed.synth import snapshot_message
    snap = snapshot_message(CODEC, 7, 5, 2, {"Bid": [(300, 1, 1)], "Offer": [(400, 2, 1)]})
    feed(st, encode_packet(1, 0, [snap]), SRC_SNAPSHOT)
    assert st.inst[s, I_STATE] == S_SYNCED
    assert list(st.levels[s, 0, 0]) == [300, 1, 1] and list(st.levels[s, 1, 0]) == [400, 2, 1]


def test_definition_status_and_channel_reset():
    st = synced_state()
    status = CODEC.encode(30, {"TransactTime": 1, "SecurityGroup": "ES", "Asset": "ES", "SecurityID": 7,
                               "TradeDate": None, "MatchEventIndicator": [], "SecurityTradingStatus": "TradingHalt",
                               "HaltReason": "MarketEvent", "SecurityTradingEvent": "NoEvent"})
    reset = CODEC.encode(4, {"TransactTime": 2, "MatchEventIndicator": ["EndOfEvent"], "NoMDEntries": [{"ApplID": 1}]})
    feed(st, encode_packet(2, 0, [definition_message(CODEC, 7, "ESZ6", depth=3, implied_depth=1, min_px=25),
                                  status, reset]))
    s = slot_of(st, 7)
    assert (st.inst[s, I_DEPTH], st.inst[s, I_IDEPTH], st.inst[s, I_MINPX], st.inst[s, I_STATUS]) == (3, 1, 25, 2)
    assert st.levels[s, 0, 0, 1] == 0 and counters(st)["channel_resets"] == 1
    feed(st, encode_packet(3, 0, [book_msg(rpt=1, level=4)]))   # beyond the definition's depth 3
    assert counters(st)["bad_level"] == 1


@settings(max_examples=300, deadline=None)
@given(data=hs.data())
def test_fuzzed_packets_never_crash_nor_read_past_the_end(data):
    gen = StreamGen(CODEC, [1, 2], depth=5, seed=data.draw(hs.integers(0, 1000)))
    payload = bytearray(gen.packet(max_msgs=3, max_entries=4))
    for _ in range(data.draw(hs.integers(1, 6))):
        i = data.draw(hs.integers(0, len(payload) - 1))
        payload[i] = data.draw(hs.integers(0, 255))
    cut = data.draw(hs.integers(0, len(payload)))
    payload = bytes(payload[:cut])
    states = []
    for guard in (0x00, 0xFF):      # bytes after the packet must make no difference
        st = new_feed_state(SCHEMA, max_instruments=4, depth=5, window=4, ring_packets=8)
        feed(st, encode_packet(1, 0, []))
        feed(st, payload, guard=guard)
        feed(st, payload[:12], guard=guard)
        states.append((st.ctr.copy(), st.inst.copy(), st.levels.copy()))
    for a, b in zip(*states):
        assert np.array_equal(a, b)
    assert states[0][0][C_LAST_SEQ] >= 1

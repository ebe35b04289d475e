"""Sequence numbers a corrupt or stray datagram can carry must not silence the feed: a
single packet far ahead does not move the expected sequence (a second one confirms a real
jump)."""

import numpy as np

from tickwire.feed.handler import feed_input
from tickwire.feed.mdp3 import encode_packet
from tickwire.feed.state import C_NEXT_SEQ, SRC_A, SRC_B, counters, new_feed_state
from tickwire.sbe import load
from tickwire.sbe.codec import Codec
from tickwire.sbe.schema import builtin_path

SCHEMA = load(builtin_path())
C = Codec(SCHEMA)
MSG = C.encode("MDIncrementalRefreshBook46", {
    "TransactTime": 1, "MatchEventIndicator": 0x80,
    "NoMDEntries": [{"MDEntryPx": 100, "MDEntrySize": 1, "SecurityID": 7, "RptSeq": 0, "NumberOfOrders": 1,
                     "MDPriceLevel": 1, "MDUpdateAction": "Change", "MDEntryType": "Bid"}],
    "NoOrderIDEntries": []})


def send(f, seq, source=SRC_A):
    p = np.frombuffer(encode_packet(seq, 0, [MSG]), np.uint8).copy()
    feed_input(f.mem, p, 0, p.size, source)


def test_one_datagram_far_ahead_does_not_silence_the_feed():
    f = new_feed_state(SCHEMA)
    send(f, 1)
    send(f, 0xFFFFFFF0)                       # corrupt or stray
    for s in range(2, 7):
        send(f, s)
    c = counters(f)
    assert f.ctr[C_NEXT_SEQ] == 7 and c["duplicates"] == 0 and c["lost_packets"] == 0
    assert c["seq_jumps_unconfirmed"] == 1 and c["messages"] == 6


def test_a_real_jump_is_taken_when_a_second_packet_confirms_it():
    f = new_feed_state(SCHEMA)
    send(f, 1)
    send(f, 5000)                             # the line came back after a long outage
    assert f.ctr[C_NEXT_SEQ] == 2
    send(f, 5001)
    c = counters(f)
    assert f.ctr[C_NEXT_SEQ] == 5002 and c["gaps"] == 1 and c["lost_packets"] == 5001 - 2
    send(f, 5002)
    assert f.ctr[C_NEXT_SEQ] == 5003


def test_the_same_packet_on_both_lines_confirms_a_jump():
    """A and B are independent feeds of one sequence: a stray datagram is not on both.
    (Found by test_book_vs_reference: packets 14, 15 waiting for a lost 13, then the last
    packet 17 on A and B after a lost 16 - both copies were dropped as unconfirmed, 16 was
    never declared lost and an instrument it touched stayed synced with a stale book.)"""
    f = new_feed_state(SCHEMA, window=4)
    send(f, 1)
    send(f, 5000)
    send(f, 5000)                             # the same line again: not a confirmation
    assert f.ctr[C_NEXT_SEQ] == 2 and counters(f)["seq_jumps_unconfirmed"] == 2
    send(f, 5000, SRC_B)
    c = counters(f)
    assert f.ctr[C_NEXT_SEQ] == 5001 and c["gaps"] == 1 and c["lost_packets"] == 5000 - 2 and c["messages"] == 2
    f = new_feed_state(SCHEMA, window=4)
    for s in (1, 3, 4):                       # 2 lost on both lines, 3 and 4 wait for it
        send(f, s)
    send(f, 6)                                # 5 lost too: 6 is past the window of next = 2
    send(f, 6, SRC_B)
    c = counters(f)
    assert f.ctr[C_NEXT_SEQ] == 5 and c["lost_packets"] == 1 and c["messages"] == 3

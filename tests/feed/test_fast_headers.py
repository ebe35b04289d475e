"""The fast path checks a message's 8 SBE header bytes against the exact header of a
current-version CME-layout 46 and 48 (feed.layout.fast_headers) in one compare each, and
takes the checks one by one otherwise. Both routes must leave the same state, and the
words must only exist for templates laid out as the fast path reads them."""

from __future__ import annotations

import numpy as np

from tickwire.feed import handler
from tickwire.feed import layout as L
from tickwire.feed.state import C_NOT_HDR46, C_NOT_HDR48, SRC_A, SRC_B, counters, new_feed_state
from tickwire.feed.synth import StreamGen
from tickwire.sbe import builtin_path, load, parse
from tickwire.sbe.codec import Codec

from .test_entry_layout import SHIFTED_XML

SCHEMA = load(builtin_path())


def test_header_words_of_the_subset_schema():
    h46, h48 = L.fast_headers(SCHEMA, L.build(SCHEMA))
    # blockLength 11, templateId, schemaId 1, version 13 (mdp3_subset.xml), as one LE load reads them
    assert h46 == int.from_bytes(bytes.fromhex("0b00" "2e00" "0100" "0d00"), "little", signed=True)
    assert h48 == int.from_bytes(bytes.fromhex("0b00" "3000" "0100" "0d00"), "little", signed=True)
    st = new_feed_state(SCHEMA, max_instruments=4)
    assert (~st.ctr[C_NOT_HDR46], ~st.ctr[C_NOT_HDR48]) == (h46, h48)


def test_no_header_word_for_another_46_entry_layout():
    other = parse(SHIFTED_XML)
    h46, h48 = L.fast_headers(other, L.build(other))
    assert h46 == L.NO_HEADER and h48 != L.NO_HEADER
    st = new_feed_state(other, max_instruments=4)
    assert st.ctr[C_NOT_HDR46] == 0            # zero (complemented NO_HEADER): matches nothing


def test_a_zeroed_state_word_matches_no_header():
    # NO_HEADER's blockLength (0xFFFF) cannot fit in a message: the block check refuses it
    assert L.NO_HEADER & 0xFFFF == 0xFFFF and ~L.NO_HEADER == 0


def test_one_compare_and_the_checks_one_by_one_leave_the_same_state():
    gen = StreamGen(Codec(SCHEMA), [21, 22, 23, 24, 25], depth=5, seed=7, resets=True, profile="uniform")
    packets = gen.packets(600)
    fast = new_feed_state(SCHEMA, max_instruments=8, depth=5, window=4, ring_packets=32)
    slow = new_feed_state(SCHEMA, max_instruments=8, depth=5, window=4, ring_packets=32)
    slow.ctr[C_NOT_HDR46] = slow.ctr[C_NOT_HDR48] = 0         # never matches: every check one by one
    for i, p in enumerate(packets):
        buf = np.frombuffer(p, np.uint8)
        for src in (SRC_A, SRC_B) if i % 7 else (SRC_B,):    # duplicates, and a lost A copy now and then
            handler.feed_input(fast.mem, buf, 0, len(p), src)
            handler.feed_input(slow.mem, buf, 0, len(p), src)
    c = counters(fast)
    assert c["messages"] > 1000 and c["duplicates"] > 0 and c["old_rpt_entries"] + c["entries"] > 0
    assert c == counters(slow)
    fast.ctr[C_NOT_HDR46] = fast.ctr[C_NOT_HDR48] = 0
    assert np.array_equal(fast.mem.i64, slow.mem.i64) and np.array_equal(fast.mem.u8, slow.mem.u8)

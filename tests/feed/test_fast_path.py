"""The per-packet fast path (feed.fastpath) is only a shortcut: feed_input (fast path,
general walk resumed where it stops) must leave the handler's whole state - every counter,
instrument row, book level, window and replay buffer - exactly as the general walk alone
(handler.slow_packet from the start of the packet) leaves it, after every packet of
random streams that make it stop at every kind of place: new instruments, hash
collisions, RptSeq gaps, book resets, unknown templates, malformed messages, loss,
duplication and reordering on A and B, and snapshots."""

from __future__ import annotations

import os
import random
import struct

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as hs

from tickwire.feed import handler
from tickwire.feed.mdp3 import encode_packet
from tickwire.feed.state import C_BOOK_RESETS, C_PACKETS, C_RPT_GAPS, SRC_A, SRC_B, SRC_SNAPSHOT, new_feed_state
from tickwire.feed.synth import StreamGen, book_entry, snapshot_message
from tickwire.sbe import builtin_path, load
from tickwire.sbe.codec import Codec

SCHEMA = load(builtin_path())
CODEC = Codec(SCHEMA)


def _state():
    # 8 instruments in a 16-word index: collisions are likely with random SecurityIDs
    return new_feed_state(SCHEMA, max_instruments=8, depth=5, window=4, ring_packets=32, max_packet=512)


def _damage(rng, p):
    """Sometimes break a packet the way a bad line would (the general walk counts it)."""
    p = bytearray(p)
    x = rng.random()
    if x < 0.03 and len(p) > 20:
        return bytes(p[:rng.randrange(1, len(p))])                     # truncated
    if x < 0.05 and len(p) > 30:
        struct.pack_into("<H", p, 12 + 2 + 2, 99)                       # unknown template
    elif x < 0.07 and len(p) > 30:
        struct.pack_into("<H", p, 12 + 2 + 4, 7)                        # wrong schema id
    elif x < 0.09 and len(p) > 40:
        p[12 + 2 + 8 + 11 + 2] = 200                                    # numInGroup overruns
    elif x < 0.10 and len(p) > 30:
        struct.pack_into("<H", p, 12, 3)                                # MsgSize too small
    # the header no longer equals the exact 46/48 header the fast path compares with in one
    # go (layout.fast_headers): it takes the checks one by one
    elif x < 0.11 and len(p) > 30:
        struct.pack_into("<H", p, 12 + 2 + 6, 9)                        # an older version
    elif x < 0.12 and len(p) > 30:
        struct.pack_into("<H", p, 12 + 2 + 6, 14)                       # a newer version
    elif x < 0.13 and len(p) > 30:
        struct.pack_into("<H", p, 12 + 2, 9)                            # root block too short
    elif x < 0.14 and len(p) > 40:
        struct.pack_into("<H", p, 12 + 2 + 8 + 11, 24)                  # entries too short (46: 27, 48: 26)
    return bytes(p)


def _run_both(events):
    fast, slow = _state(), _state()
    for src, payload in events:
        buf = np.zeros(len(payload) + 16, np.uint8)
        buf[:len(payload)] = np.frombuffer(payload, np.uint8)
        handler.feed_input(fast.mem, buf, 0, len(payload), src)
        handler.slow_packet(slow.mem, buf, 0, len(payload), src, -1, -1)
        for a, b in zip(fast.mem, slow.mem):
            assert np.array_equal(a, b), (src, payload.hex())
    return fast


@settings(max_examples=int(os.environ.get("TW_FEED_EXAMPLES", 60)), deadline=None)
@given(seed=hs.integers(0, 2**32 - 1), n=hs.integers(5, 120), loss=hs.floats(0, 0.2),
       damage=hs.booleans(), start=hs.sampled_from([1, 1, 5]))
def test_fast_path_leaves_the_same_state_as_the_general_walk(seed, n, loss, damage, start):
    rng = random.Random(seed)
    secids = [rng.randrange(-2**31, 2**31) for _ in range(rng.randint(1, 6))]
    gen = StreamGen(CODEC, secids, depth=5, seed=seed, resets=True, profile=rng.choice(("top", "uniform")))
    gen.seq = start - 1
    packets = gen.packets(n)
    events = []
    for i, p in enumerate(packets):
        for src in (SRC_A, SRC_B):
            if rng.random() < loss:
                continue
            events.append((src, _damage(rng, p) if damage else p))
        if rng.random() < 0.1 and events:                               # reorder on the line
            j = rng.randrange(len(events))
            events[j], events[-1] = events[-1], events[j]
        if rng.random() < 0.05:                                         # a snapshot of one instrument
            s = rng.choice(secids)
            snap = snapshot_message(CODEC, s, gen.rpt[s], gen.seq, {"Bid": [(100, 1, 1)]})
            events.append((SRC_SNAPSHOT, encode_packet(1, 0, [snap])))
    fast = _run_both(events)
    assert fast.ctr[C_PACKETS] == len(events)


def _book(entries, eoe=True):
    return CODEC.encode(46, {"TransactTime": 1, "MatchEventIndicator": ["EndOfEvent"] if eoe else [],
                             "NoMDEntries": entries})


def test_resume_inside_a_message_after_entries_were_applied():
    """Instruments 11 and 12 are known and synced; then a message whose third entry is a
    new instrument (13), another whose second entry jumps RptSeq, and one whose second
    entry is a book reset: the fast path applies the entries before each and the general
    walk takes the rest of that message and of the packet."""
    e = book_entry
    events = [
        (SRC_A, encode_packet(1, 0, [_book([e(100, 1, 11, 1, 1, "New", "Bid"), e(101, 1, 12, 1, 1, "New", "Offer")])])),
        (SRC_A, encode_packet(2, 0, [_book([e(100, 2, 11, 2, 1, "Change", "Bid"), e(101, 3, 12, 2, 1, "Change", "Offer"),
                                            e(99, 4, 13, 1, 1, "New", "Bid"), e(98, 5, 11, 3, 2, "New", "Bid")], False),
                                     _book([e(97, 1, 12, 3, 2, "New", "Offer")])])),
        (SRC_A, encode_packet(3, 0, [_book([e(100, 6, 11, 4, 1, "Change", "Bid"), e(101, 7, 12, 9, 1, "Change", "Offer"),
                                            e(96, 8, 13, 2, 2, "New", "Bid")])])),
        (SRC_A, encode_packet(4, 0, [_book([e(100, 6, 11, 5, 1, "Change", "Bid"),
                                            e(None, None, 13, 3, 0, "New", "BookReset", None),
                                            e(95, 9, 11, 6, 2, "Delete", "Bid")])])),
        (SRC_A, encode_packet(5, 0, [_book([e(100, 7, 11, 7, 1, "Change", "Bid")])])),
    ]
    st = _run_both(events)
    assert dict(zip(("rpt_gaps", "book_resets"), (int(st.ctr[C_RPT_GAPS]), int(st.ctr[C_BOOK_RESETS])))) == \
        {"rpt_gaps": 1, "book_resets": 1}

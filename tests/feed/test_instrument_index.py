"""The SecurityID -> slot index (feed.handler.find_slot/new_slot) keys on the whole
int32 SecurityID, sign included: extreme and colliding ids each get their own book."""

from __future__ import annotations

import numpy as np

from tickwire.feed import handler
from tickwire.feed.mdp3 import encode_packet
from tickwire.feed.state import C_N_INST, I_RPT, I_SECID, SRC_A, counters, new_feed_state
from tickwire.feed.synth import book_entry
from tickwire.sbe import builtin_path, load
from tickwire.sbe.codec import Codec

SCHEMA = load(builtin_path())
CODEC = Codec(SCHEMA)

# int32 extremes, -1 (all ones in the low 32 bits), and ids whose hashes collide in a
# 16-entry table (multiplicative hash, mask 15: ids 16 apart share the low bits).
SECIDS = [-2**31, -1, 0, 2**31 - 1, 7, 7 + 16, 7 + 32, 2**31 - 17]


def test_every_security_id_gets_its_own_slot_and_book():
    st = new_feed_state(SCHEMA, max_instruments=8, depth=5, window=4, ring_packets=16)
    assert st.index.size == 16
    seq = 0
    for rpt in (1, 2):
        for k, secid in enumerate(SECIDS):
            seq += 1
            px = 1000 * (k + 1) + rpt
            msg = CODEC.encode(46, {"TransactTime": 1, "MatchEventIndicator": ["EndOfEvent"], "NoMDEntries": [
                book_entry(px, rpt, secid, rpt, 1, "New" if rpt == 1 else "Change", "Bid")]})
            payload = encode_packet(seq, 0, [msg])
            handler.feed_input(st.mem, np.frombuffer(payload, np.uint8), 0, len(payload), SRC_A)
    c = counters(st)
    assert st.ctr[C_N_INST] == len(SECIDS)
    assert c["rpt_gaps"] == 0 and c["instrument_table_full"] == 0, c
    assert sorted(int(x) for x in st.inst[:len(SECIDS), I_SECID]) == sorted(SECIDS)
    for k, secid in enumerate(SECIDS):
        s = int(np.nonzero(st.inst[:len(SECIDS), I_SECID] == secid)[0][0])
        assert st.inst[s, I_RPT] == 2, secid
        assert tuple(st.levels[s, 0, 0]) == (1000 * (k + 1) + 2, 2, 1), secid


def test_full_table_is_counted_not_overwritten():
    st = new_feed_state(SCHEMA, max_instruments=2, depth=5, window=4, ring_packets=16)
    for seq, secid in enumerate((11, 12, 13), start=1):
        msg = CODEC.encode(46, {"TransactTime": 1, "MatchEventIndicator": ["EndOfEvent"], "NoMDEntries": [
            book_entry(5, 1, secid, 1, 1, "New", "Bid")]})
        payload = encode_packet(seq, 0, [msg])
        handler.feed_input(st.mem, np.frombuffer(payload, np.uint8), 0, len(payload), SRC_A)
    assert counters(st)["instrument_table_full"] == 1
    assert sorted(int(x) for x in st.inst[:2, I_SECID]) == [11, 12]

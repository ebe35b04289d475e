"""tickwire's compiled handler + books against an independent pure-Python reference.

The reference below is written from the MDP 3.0 book-management rules (notes/mdp3.md
§4), decodes with sbedecoder (not tickwire's decoder), and sees every packet once, in
order. tickwire sees the same packets on lines A and B with loss, duplication and
reordering injected independently per line (hypothesis chooses the stream and the
impairments). After every packet, every instrument tickwire calls SYNCED must equal the
reference at tickwire's last processed MsgSeqNum; after a final snapshot loop every
instrument must be SYNCED and equal.
"""

from __future__ import annotations

import copy
import os
import random

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs
from sbedecoder import MDPMessageFactory, MDPSchema, SBEParser

from tickwire.book.mbp import EMPTY_PX
from tickwire.feed import handler
from tickwire.feed.mdp3 import encode_packet
from tickwire.feed.state import (C_LAST_SEQ, C_NEXT_SEQ, I_RPT, I_STATE, S_SYNCED, SRC_A, SRC_B, SRC_SNAPSHOT,
                                 counters, new_feed_state, slot_of)
from tickwire.feed.synth import StreamGen, snapshot_message
from tickwire.sbe import builtin_path, load
from tickwire.sbe.codec import Codec

SCHEMA = load(builtin_path())
CODEC = Codec(SCHEMA)
SBE = MDPSchema()
SBE.parse(builtin_path())
PARSER = SBEParser(MDPMessageFactory(SBE))
SIDES = {"0": 0, "1": 1, "E": 2, "F": 3}
DEPTH = 5


class RefBook:
    """Positional MBP book per instrument: sides -> list of (px, qty, norders) | None."""

    def __init__(self):
        self.books, self.rpt = {}, {}

    def _sides(self, secid):
        return self.books.setdefault(secid, [[None] * DEPTH, [None] * DEPTH, [None] * 2, [None] * 2])

    def apply_packet(self, payload):
        for m in PARSER.parse(payload, offset=12):
            tid = m.template_id.value
            if tid not in (46, 48):
                continue
            for e in m.no_md_entries.repeating_groups:
                secid, rpt = e.security_id.value, e.rpt_seq.value
                self.rpt[secid] = rpt
                book = self._sides(secid)
                if tid == 48:
                    continue
                etype = e.md_entry_type.raw_value
                if etype == "J":
                    for side in book:
                        side[:] = [None] * len(side)
                    continue
                side = book[SIDES[etype]]
                n = len(side)
                lvl, act = e.md_price_level.value, e.md_update_action.raw_value
                row = (e.md_entry_px.mantissa.raw_value, e.md_entry_size.raw_value, e.number_of_orders.raw_value)
                if act == 3:                       # DeleteThru: the whole side
                    side[:] = [None] * n
                elif act == 0:                     # New: insert, push down, drop past depth
                    side.insert(lvl - 1, row)
                    del side[n:]
                elif act == 2:                     # Delete: remove, pull up
                    del side[lvl - 1]
                    side.append(None)
                elif act == 4:                     # DeleteFrom: remove levels 1..lvl
                    del side[:lvl]
                    side.extend([None] * (n - len(side)))
                else:                              # Change / Overlay
                    side[lvl - 1] = row

    def snapshot(self, secid, lmsp):
        names = ("Bid", "Offer", "ImpliedBid", "ImpliedOffer")
        sides = {names[i]: side for i, side in enumerate(self._sides(secid))}
        return snapshot_message(CODEC, secid, self.rpt.get(secid, 0), lmsp, sides)


def as_rows(lv, slot):
    out = []
    for side, n in ((0, DEPTH), (1, DEPTH), (2, 2), (3, 2)):
        out.append([None if lv[slot, side, i, 1] == 0 and lv[slot, side, i, 0] == EMPTY_PX
                    else tuple(int(x) for x in lv[slot, side, i]) for i in range(n)])
    return out


def impair(packets, rng, loss, dup, reorder):
    out = []
    for p in packets:
        if rng.random() < loss:
            continue
        out.append(p)
        if rng.random() < dup:
            out.append(p)
    for i in range(len(out) - 1):
        if rng.random() < reorder:
            j = min(len(out) - 1, i + rng.randint(1, 3))
            out[i], out[j] = out[j], out[i]
    return out


def check_synced(st, ref_at, secids):
    last = int(st.ctr[C_LAST_SEQ])
    ref = ref_at[last]
    synced = 0
    for secid in secids:
        s = slot_of(st, secid)
        if s < 0 or st.inst[s, I_STATE] != S_SYNCED:
            continue
        synced += 1
        exp = ref.books.get(secid, [[None] * DEPTH, [None] * DEPTH, [None] * 2, [None] * 2])
        assert as_rows(st.levels, s) == exp, f"instrument {secid} at seq {last}"
        assert st.inst[s, I_RPT] == ref.rpt.get(secid, 0)
    return synced


@settings(max_examples=int(os.environ.get("TW_FEED_EXAMPLES", "60")), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=hs.integers(0, 2**32 - 1), n=hs.integers(5, 160),
       loss_a=hs.sampled_from([0.0, 0.05, 0.3]), loss_b=hs.sampled_from([0.0, 0.05, 0.3]),
       dup=hs.sampled_from([0.0, 0.2]), reorder=hs.sampled_from([0.0, 0.1, 0.4]),
       snap_every=hs.sampled_from([0, 7, 25]))
def test_book_matches_reference_under_impairment(seed, n, loss_a, loss_b, dup, reorder, snap_every):
    rng = random.Random(seed)
    secids = [101, 202, 303]
    gen = StreamGen(CODEC, secids, depth=DEPTH, seed=seed)
    packets = gen.packets(n)
    ref = RefBook()
    ref_at = {0: copy.deepcopy(ref)}
    for i, p in enumerate(packets, 1):
        ref.apply_packet(p)
        ref_at[i] = copy.deepcopy(ref)

    st = new_feed_state(SCHEMA, max_instruments=8, depth=DEPTH, window=4, ring_packets=64)
    line_a = [(SRC_A, p) for p in impair(packets, rng, loss_a, dup, reorder)]
    line_b = [(SRC_B, p) for p in impair(packets, rng, loss_b, dup, reorder)]
    arrivals = []
    while line_a or line_b:       # interleave the lines at random, each keeps its own order
        src = line_a if (line_a and (not line_b or rng.random() < 0.5)) else line_b
        arrivals.append(src.pop(0))

    for k, (src, p) in enumerate(arrivals):
        buf = np.frombuffer(p, np.uint8)
        handler.feed_input(st.mem, buf, 0, buf.size, src)
        check_synced(st, ref_at, secids)
        if snap_every and k % snap_every == snap_every - 1 and st.ctr[C_NEXT_SEQ] > 0:
            # A snapshot published a little behind the incrementals we have seen.
            lmsp = max(0, int(st.ctr[C_LAST_SEQ]) - rng.randint(0, 3))
            snap = encode_packet(k, 0, [ref_at[lmsp].snapshot(s, lmsp) for s in secids])
            handler.feed_input(st.mem, np.frombuffer(snap, np.uint8), 0, len(snap), SRC_SNAPSHOT)
            check_synced(st, ref_at, secids)

    # The venue's heartbeat (seq n+1, on both lines) exposes any loss at the tail.
    beat = np.frombuffer(encode_packet(n + 1, 0, [CODEC.encode(12, {})]), np.uint8)
    ref_at[n + 1] = ref_at[n]
    for src in (SRC_A, SRC_B):
        handler.feed_input(st.mem, beat, 0, beat.size, src)
    handler.feed_flush(st.mem)
    check_synced(st, ref_at, secids)
    # Final snapshot loop at the last published seq: everything must come back.
    snap = encode_packet(1, 0, [ref_at[n].snapshot(s, n) for s in secids])
    handler.feed_input(st.mem, np.frombuffer(snap, np.uint8), 0, len(snap), SRC_SNAPSHOT)
    c = counters(st)
    for secid in secids:
        s = slot_of(st, secid)
        assert s >= 0
        assert st.inst[s, I_STATE] == S_SYNCED, (secid, c)
        assert as_rows(st.levels, s) == ref_at[n]._sides(secid)
    assert c["truncated_packet"] == c["message_overrun"] == c["group_overrun"] == 0

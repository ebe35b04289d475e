"""Order-by-order books (47 incrementals, 53 chunked snapshots) against a dict reference,
with loss, duplication and reordering on lines A and B; and the order table's hash
index (backward-shift deletion) against a dict under random insert/delete churn."""

from __future__ import annotations

import copy
import os
import random

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

from tickwire.book.mbo import FREE_ID, O_ID, O_PRIO, O_PX, O_QTY, O_SIDE, O_SLOT, mbo_add, mbo_delete, mbo_depth, \
    mbo_find, new_mbo
from tickwire.feed import handler
from tickwire.feed.mdp3 import encode_packet
from tickwire.feed.state import C_LAST_SEQ, I_MBO_STATE, S_EMPTY, S_SYNCED, SRC_A, SRC_B, SRC_SNAPSHOT, counters, \
    new_feed_state, slot_of
from tickwire.sbe import builtin_path, load
from tickwire.sbe.codec import Codec

SCHEMA = load(builtin_path())
CODEC = Codec(SCHEMA)
SECIDS = [41, 42]


def gen_stream(seed, n):
    """Packets of 47 messages over live orders; returns (packets, reference after each seq)."""
    rng = random.Random(seed)
    live, ref_at, packets, next_id = {}, {0: {}}, [], 1
    for seq in range(1, n + 1):
        entries = []
        for _ in range(rng.randint(1, 4)):
            x = rng.random()
            if not live or x < 0.45:
                oid, next_id = next_id * 7919 % (2**61), next_id + 1
                o = (rng.randint(1, 10**9), 4_500_000_000_000 + rng.randint(-5, 5) * 250_000_000,
                     rng.randint(1, 100), rng.choice(SECIDS), rng.randint(0, 1))
                live[oid] = o
                act = "New"
            elif x < 0.75:
                oid = rng.choice(sorted(live))
                prio, px, qty, secid, side = live[oid]
                live[oid] = o = (prio + rng.randint(0, 5), px, rng.randint(1, 100), secid, side)
                act = "Change"
            else:
                oid = rng.choice(sorted(live))
                o = live.pop(oid)
                act = "Delete"
            entries.append({"OrderID": oid, "MDOrderPriority": o[0], "MDEntryPx": {"mantissa": o[1]},
                            "MDDisplayQty": o[2], "SecurityID": o[3], "MDUpdateAction": act,
                            "MDEntryType": ("Bid", "Offer")[o[4]]})
        msg = CODEC.encode(47, {"TransactTime": seq, "MatchEventIndicator": ["EndOfEvent"], "NoMDEntries": entries})
        packets.append(encode_packet(seq, seq, [msg]))
        ref_at[seq] = copy.deepcopy(live)
    return packets, ref_at


def snapshot_packets(ref, lmsp, chunk_size=3):
    out = []
    for secid in SECIDS:
        orders = sorted((oid, o) for oid, o in ref.items() if o[3] == secid)
        chunks = [orders[i:i + chunk_size] for i in range(0, len(orders), chunk_size)] or [[]]
        for k, chunk in enumerate(chunks, 1):
            out.append(CODEC.encode(53, {"LastMsgSeqNumProcessed": lmsp, "TotNumReports": len(SECIDS),
                                         "SecurityID": secid, "NoChunks": len(chunks), "CurrentChunk": k,
                                         "TransactTime": 0, "NoMDEntries": [
                                             {"OrderID": oid, "MDOrderPriority": o[0], "MDEntryPx": {"mantissa": o[1]},
                                              "MDDisplayQty": o[2], "MDEntryType": ("Bid", "Offer")[o[4]]}
                                             for oid, o in chunk]}))
    return [encode_packet(i + 1, 0, [m]) for i, m in enumerate(out)]


def table(st, slot):
    o = st.orders
    rows = np.nonzero((o[:, O_ID] != FREE_ID) & (o[:, O_SLOT] == slot))[0]
    return {int(o[r, O_ID]): (int(o[r, O_PRIO]), int(o[r, O_PX]), int(o[r, O_QTY]), int(o[r, O_SIDE]))
            for r in rows}


def expected(ref, secid):
    return {oid: (o[0], o[1], o[2], o[4]) for oid, o in ref.items() if o[3] == secid}


def check(st, ref_at):
    ref = ref_at[int(st.ctr[C_LAST_SEQ])]
    for secid in SECIDS:
        s = slot_of(st, secid)
        if s >= 0 and st.inst[s, I_MBO_STATE] == S_SYNCED:
            assert table(st, s) == expected(ref, secid), (secid, int(st.ctr[C_LAST_SEQ]))


def impair(packets, rng, loss, reorder):
    out = [p for p in packets if rng.random() >= loss]
    for i in range(len(out) - 1):
        if rng.random() < reorder:
            out[i], out[i + 1] = out[i + 1], out[i]
    return out


@settings(max_examples=int(os.environ.get("TW_FEED_EXAMPLES", "40")), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=hs.integers(0, 2**32 - 1), n=hs.integers(3, 120), loss=hs.sampled_from([0.0, 0.1, 0.4]),
       reorder=hs.sampled_from([0.0, 0.3]))
def test_mbo_matches_reference_with_loss_and_snapshots(seed, n, loss, reorder):
    rng = random.Random(seed)
    packets, ref_at = gen_stream(seed, n)
    st = new_feed_state(SCHEMA, max_instruments=4, depth=5, window=4, ring_packets=256, max_orders=512)
    arrivals = [(SRC_A, p) for p in impair(packets, rng, loss, reorder)]
    arrivals += [(SRC_B, p) for p in impair(packets, rng, loss, reorder)]
    rng.shuffle(arrivals)
    arrivals.sort(key=lambda a: int.from_bytes(a[1][:4], "little") + rng.randint(0, 3))
    for k, (src, p) in enumerate(arrivals):
        handler.feed_input(st.mem, np.frombuffer(p, np.uint8), 0, len(p), src)
        check(st, ref_at)
        if k % 13 == 12:
            lmsp = max(0, int(st.ctr[C_LAST_SEQ]) - rng.randint(0, 2))
            for sp in snapshot_packets(ref_at[lmsp], lmsp):
                handler.feed_input(st.mem, np.frombuffer(sp, np.uint8), 0, len(sp), SRC_SNAPSHOT)
                check(st, ref_at)
    beat = encode_packet(n + 1, 0, [CODEC.encode(12, {})])
    ref_at[n + 1] = ref_at[n]
    handler.feed_input(st.mem, np.frombuffer(beat, np.uint8), 0, len(beat), SRC_A)
    handler.feed_flush(st.mem)
    check(st, ref_at)
    for sp in snapshot_packets(ref_at[n], n):
        handler.feed_input(st.mem, np.frombuffer(sp, np.uint8), 0, len(sp), SRC_SNAPSHOT)
    for secid in SECIDS:
        s = slot_of(st, secid)
        if s < 0 or st.inst[s, I_MBO_STATE] == S_EMPTY:     # never had an MBO entry: no book
            assert expected(ref_at[n], secid) == {}
            continue
        assert st.inst[s, I_MBO_STATE] == S_SYNCED, counters(st)
        assert table(st, s) == expected(ref_at[n], secid)
    # Depth view: aggregated levels in price order.
    s = slot_of(st, SECIDS[0])
    if s < 0:
        return
    out = np.zeros((20, 3), np.int64)
    nlev = mbo_depth(st.orders, s, 0, out)
    bids = {}
    for o in expected(ref_at[n], SECIDS[0]).values():
        if o[3] == 0:
            q, c = bids.get(o[1], (0, 0))
            bids[o[1]] = (q + o[2], c + 1)
    assert [tuple(r) for r in out[:nlev]] == [(px, q, c) for px, (q, c) in sorted(bids.items(), reverse=True)][:20]


@settings(max_examples=50, deadline=None)
@given(ops=hs.lists(hs.tuples(hs.booleans(), hs.integers(0, 40)), max_size=300))
def test_order_index_churn_matches_dict(ops):
    orders, oindex, free, meta = new_mbo(32)
    ref = {}
    for add, k in ops:
        oid = k * 1_000_003 - 7       # clustered ids collide in a 64-slot index
        if add:
            r = mbo_add(orders, oindex, free, meta, oid, 1, 2, 3, 0, 0)
            if oid in ref:
                assert r == 1
            elif len(ref) == 32:
                assert r == 3
            else:
                assert r == 0
                ref[oid] = True
        else:
            assert mbo_delete(orders, oindex, free, meta, oid, 0) == (0 if ref.pop(oid, None) else 2)
        for key in range(41):
            q = key * 1_000_003 - 7
            assert (mbo_find(orders, oindex, q) >= 0) == (q in ref)
    assert meta[1] == len(ref)

"""Order-by-order input a venue (or a corrupt datagram) can send that must not leave a book
marked synced while it is wrong: an entry naming another instrument's order, a snapshot
chunk from another cycle, a ChannelReset, the one OrderID a table row cannot hold."""

import numpy as np
import pytest

from tickwire.book.mbo import FREE_ID, O_ID, O_QTY, O_SLOT
from tickwire.feed.handler import feed_flush, feed_input
from tickwire.feed.mdp3 import encode_packet
from tickwire.feed.state import (I_MBO_STATE, I_SECID, S_RECOVERING, S_SYNCED, SRC_A, SRC_SNAPSHOT, counters,
                                 new_feed_state)
from tickwire.sbe import load
from tickwire.sbe.codec import Codec
from tickwire.sbe.schema import builtin_path

SCHEMA = load(builtin_path())
C = Codec(SCHEMA)


def _send(f, seq, msgs, src=SRC_A):
    p = np.frombuffer(encode_packet(seq, 0, msgs), np.uint8).copy()
    feed_input(f.mem, p, 0, p.size, src)


def inc(f, seq, secid, oid, action="New", qty=1):
    _send(f, seq, [C.encode("MDIncrementalRefreshOrderBook47", {
        "TransactTime": 1, "MatchEventIndicator": 0x80,
        "NoMDEntries": [{"OrderID": oid, "MDOrderPriority": 1, "MDEntryPx": 100, "MDDisplayQty": qty,
                         "SecurityID": secid, "MDUpdateAction": action, "MDEntryType": "Bid"}]})])


def snap(f, lmsp, nchunks, chunk, oids, secid=7):
    _send(f, 1, [C.encode("SnapshotFullRefreshOrderBook53", {
        "LastMsgSeqNumProcessed": lmsp, "TotNumReports": 1, "SecurityID": secid, "NoChunks": nchunks,
        "CurrentChunk": chunk, "TransactTime": 1,
        "NoMDEntries": [{"OrderID": o, "MDOrderPriority": 1, "MDEntryPx": 100, "MDDisplayQty": 1,
                         "MDEntryType": "Bid"} for o in oids]})], SRC_SNAPSHOT)


def orders(f):
    """{secid: {oid: qty}} of the resting orders."""
    out = {}
    for r in f.orders:
        if r[O_ID] != FREE_ID:
            out.setdefault(int(f.inst[r[O_SLOT], I_SECID]), {})[int(r[O_ID])] = int(r[O_QTY])
    return out


def test_an_entry_cannot_change_or_delete_another_instruments_order():
    f = new_feed_state(SCHEMA)
    inc(f, 1, 7, 100)
    inc(f, 2, 8, 555)
    inc(f, 3, 8, 100, "Change", qty=9)        # 100 rests in 7's book, not 8's
    assert orders(f)[7] == {100: 1}
    assert f.inst[1, I_MBO_STATE] == S_RECOVERING and counters(f)["mbo_unknown_order"] == 1
    f2 = new_feed_state(SCHEMA)
    inc(f2, 1, 7, 100)
    inc(f2, 2, 8, 555)
    inc(f2, 3, 8, 100, "Delete")
    assert orders(f2)[7] == {100: 1} and counters(f2)["mbo_unknown_order"] == 1


def test_a_chunk_of_another_snapshot_cycle_is_not_taken_for_the_next_one():
    """Cycle A completes (1 chunk); after another loss the handler joins cycle B at chunk
    2/2: without its chunk 1 (which clears the book) this is not a snapshot."""
    f = new_feed_state(SCHEMA)
    inc(f, 1, 7, 100)
    inc(f, 3, 7, 101)                          # seq 2 lost
    feed_flush(f.mem)
    snap(f, 3, 1, 1, [200])
    assert f.inst[0, I_MBO_STATE] == S_SYNCED and orders(f)[7] == {200: 1}
    inc(f, 5, 7, 102)                          # seq 4 lost (the venue deleted 200 in it)
    feed_flush(f.mem)
    assert f.inst[0, I_MBO_STATE] == S_RECOVERING
    snap(f, 5, 2, 2, [300])
    assert f.inst[0, I_MBO_STATE] == S_RECOVERING and counters(f)["mbo_bad_chunk"] == 1
    snap(f, 5, 2, 1, [300])                    # the next cycle, whole: chunk 1, then 2
    snap(f, 6, 2, 2, [301])                    # ... but chunk 2 of a snapshot taken later
    assert f.inst[0, I_MBO_STATE] == S_RECOVERING and counters(f)["mbo_bad_chunk"] == 2
    snap(f, 5, 2, 1, [300])
    snap(f, 5, 2, 2, [301])
    assert f.inst[0, I_MBO_STATE] == S_SYNCED and orders(f)[7] == {300: 1, 301: 1}


def test_channel_reset_empties_the_order_books_too():
    f = new_feed_state(SCHEMA)
    inc(f, 1, 7, 100)
    _send(f, 2, [C.encode("ChannelReset4", {"TransactTime": 1, "MatchEventIndicator": 0x80,
                                            "NoMDEntries": [{"ApplID": 1}]})])
    assert counters(f)["channel_resets"] == 1 and orders(f) == {} and f.inst[0, I_MBO_STATE] == S_SYNCED
    inc(f, 3, 7, 100)                          # the venue adds it again after the reset
    assert counters(f)["mbo_duplicate_order"] == 0 and orders(f) == {7: {100: 1}}
    assert f.inst[0, I_MBO_STATE] == S_SYNCED


@pytest.mark.parametrize("oid", [1 << 63])     # uint64 on the wire, int64 FREE_ID in the table
def test_the_order_id_that_marks_free_rows_is_refused_and_counted(oid):
    f = new_feed_state(SCHEMA)
    free_before = int((f.orders[:, O_ID] == FREE_ID).sum())
    inc(f, 1, 7, oid)
    assert counters(f)["mbo_bad_order_id"] == 1 and f.inst[0, I_MBO_STATE] == S_RECOVERING
    assert int((f.orders[:, O_ID] == FREE_ID).sum()) == free_before

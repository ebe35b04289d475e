"""Market-data loss between the simulator and the engine: instruments go stale, the
market maker pulls its quotes, the snapshot loop (52) rebuilds the books, quoting resumes,
and the rebuilt books equal the venue's."""

import numpy as np

from inproc import INSTR, TICK, Harness
from test_engine_inproc import books_agree
from tickwire.engine.build import feed_view
from tickwire.engine.layout import TOP_VALID
from tickwire.feed.state import C_GAPS, C_SNAPSHOTS_APPLIED, I_STATE, S_SYNCED, slot_of
from tickwire.order.layout import S_BAD_EXEC, S_LIVE


def test_loss_then_snapshot_recovery():
    h = Harness("market_maker", dict(instr=0, tick=TICK, half_spread=2, qty=1, max_pos=5))
    h.connect()
    h.run(300)
    assert h.E.orders.stats[S_LIVE] > 0
    lost = set(range(h.md_count + 5, h.md_count + 25))      # 20 packets vanish on the way
    h.drop_md = lambda k: k in lost
    h.run(200)
    fv = feed_view(h.E)
    assert fv.ctr[C_GAPS] > 0
    stale = [fv.inst[slot_of(fv, s), I_STATE] != S_SYNCED for s, _, _ in INSTR]
    if any(stale):
        # while the book is not valid the strategy sees it, and new orders are refused
        assert h.E.sv.top[0, TOP_VALID] == 0 or not stale[0]
    h.snapshot()
    h.run(300)
    fv = feed_view(h.E)
    assert fv.ctr[C_SNAPSHOTS_APPLIED] > 0
    books_agree(h)
    assert h.E.sv.top[0, TOP_VALID] == 1
    assert h.E.orders.stats[S_BAD_EXEC] == 0

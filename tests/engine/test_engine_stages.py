"""Stage stamps can be switched off (layout.M_STAGES), so the headline tick-to-trade is not
inflated by its own instrumentation: then each row keeps only what the two ends and the
end-to-end join need. Same seed, same run: the stamps change what is recorded, never what
the engine does. latency.samples reports tick-to-trade for every row and stages only for
rows that have them."""

from types import SimpleNamespace

import numpy as np

from inproc import Harness
from tickwire.engine.latency import samples, ticks_per_ns
from tickwire.engine.layout import (M_STAGES, M_STAMP_N, ST_FEED, ST_MD_SEQ, ST_N, ST_OE_N, ST_OE_SEQ, ST_RISK, ST_RX,
                                    ST_STACK, ST_STRATEGY, ST_TCP, ST_TX)


def _rows(stages):
    h = Harness("taker", dict(instr=1, imbalance_pct=60, cooldown_ns=0, max_pos=5))
    h.E.meta[M_STAGES] = stages
    h.connect()
    h.run(1000)
    return h.E.stamps[:int(h.E.meta[M_STAMP_N])].copy()


def test_stages_off_stamps_only_the_ends_and_changes_nothing_else():
    on, off = _rows(1), _rows(0)
    assert len(on) > 10 and len(off) == len(on)
    for c in (ST_FEED, ST_STRATEGY, ST_RISK):
        assert (on[:, c] > 0).all()
        assert (off[:, c] == 0).all()
    for c in (ST_MD_SEQ, ST_OE_SEQ, ST_OE_N):      # the same orders, from the same packets
        assert np.array_equal(on[:, c], off[:, c])


def _engine(rows):
    meta = np.zeros(40, np.int64)
    meta[M_STAMP_N] = len(rows)
    return SimpleNamespace(meta=meta, stamps=np.array(rows, np.int64).reshape(-1, ST_N))


def test_samples_report_stages_only_where_stamped():
    tick = ticks_per_ns()
    staged = np.zeros(ST_N, np.int64)
    for c, t in ((ST_RX, 1000), (ST_STACK, 1100), (ST_FEED, 1300), (ST_STRATEGY, 1400), (ST_RISK, 1600),
                 (ST_TCP, 1700), (ST_TX, 1800)):
        staged[c] = int(t * tick)
    ends = np.zeros(ST_N, np.int64)
    ends[ST_RX], ends[ST_TX] = int(5000 * tick), int(5500 * tick)
    unsent = staged.copy()
    unsent[ST_TX] = 0                               # no order frame: not a sample at all
    s = samples(_engine([staged, ends, unsent]))
    assert len(s["tick_to_trade"]) == 2
    assert sorted(np.round(s["tick_to_trade"], -1)) == [500, 800]
    for name, want in (("stack", 100), ("feed", 200), ("strategy", 100), ("risk_encode", 200), ("tcp", 100),
                       ("transmit", 100)):
        assert np.round(s[name], -1).tolist() == [want], name
    s = samples(_engine([ends]))
    assert len(s["tick_to_trade"]) == 1 and len(s["feed"]) == 0

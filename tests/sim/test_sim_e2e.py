"""End to end through the simulator (sim/e2e_stamps.py, e2e_poll.py): the simulator's
stamps of market data sent and orders received, joined with the engine's stamp rows.

Unit part: framing and stamping of order-entry bytes split anywhere, first-send-only
market-data stamps, the join's causes for what it cannot match. Live part: simulator and
engine as two processes, memif and kernel sockets, every order joined to its trigger and
no order seen by the simulator before the engine sent it. No timing thresholds."""

import numpy as np
import pytest

from tickwire.engine.layout import ST_MD_SEQ, ST_MD_SRC, ST_N, ST_OE_N, ST_OE_SEQ, ST_RX, ST_TCP, ST_TX
from tickwire.order import wire_layout as W
from tickwire.order.oe_codec import enc_cancel, enc_new_order, enc_sequence
from tickwire.sim.e2e_stamps import EM_GARBAGE, EM_LATE, EM_MD_N, EM_OE_N, join, new_e2e, scan_oe, stamp_md


def _stream():
    b = np.zeros(1024, np.uint8)
    n = enc_new_order(b, 0, 7, 1, 101, 5000, 2, 1001, 1, 0)
    n += enc_sequence(b, n, 1, 9, 0)                      # session message: not an order
    n += enc_cancel(b, n, 8, 2, 101, 55, 1001, 1)
    return b, n


def test_scan_stamps_business_messages_split_anywhere():
    b, n = _stream()
    for cut in range(1, n):
        st = new_e2e(16, 16)
        scan_oe(st, b, 0, cut, 100, 1)
        scan_oe(st, b, cut, n - cut, 200, 0)
        assert st.meta[EM_OE_N] == 2 and st.meta[EM_GARBAGE] == 0
        assert st.oe[0, 0] == 7 and st.oe[1, 0] == 8
        first_end = int(b[0]) << 8 | int(b[1])       # SOFH length, big-endian
        # a message is stamped by the call that completed it
        assert st.oe[0, 1] == (100 if cut >= first_end else 200)
        assert st.oe[1, 1] == 200 and st.oe[1, 2] == 0
        assert st.meta[EM_LATE] == (1 if cut >= first_end else 0)


def test_scan_garbage_is_counted_and_framing_recovers():
    st = new_e2e(16, 16)
    junk = np.full(40, 0xAB, np.uint8)
    scan_oe(st, junk, 0, 40, 1, 0)
    assert st.meta[EM_GARBAGE] == 1 and st.meta[EM_OE_N] == 0
    b, n = _stream()
    scan_oe(st, b, 0, n, 2, 0)
    assert st.meta[EM_OE_N] == 2


def test_market_data_keeps_its_first_send():
    st = new_e2e(8, 4)
    stamp_md(st, 0, 5, 100)
    stamp_md(st, 0, 5, 900)          # duplicate: the first send counts
    stamp_md(st, 1, 5, 150)
    stamp_md(st, 0, 13, 300)         # same ring slot as 5 (13 % 8): a newer packet replaces it
    stamp_md(st, 0, -1, 1)           # no MsgSeqNum: ignored
    assert st.meta[EM_MD_N] == 3
    assert tuple(st.md[0, 5]) == (13, 300) and tuple(st.md[1, 5]) == (5, 150)


def test_join_per_order_and_its_failure_causes():
    rows = np.zeros((4, ST_N), np.int64)
    # row 0: packet (A, 10) -> orders 1, 2; row 1: (B, 11) -> order 3 (never received);
    # row 2: (A, 12) never sent by the simulator; row 3: a snapshot packet
    for r, (src, seq, oe, n) in enumerate([(0, 10, 1, 2), (1, 11, 3, 1), (0, 12, 4, 1), (2, 1, 5, 1)]):
        rows[r, [ST_RX, ST_TX, ST_MD_SRC, ST_MD_SEQ, ST_OE_SEQ, ST_OE_N]] = (1000, 1100, src, seq, oe, n)
    md = np.array([[0, 10, 900], [1, 10, 950], [1, 11, 960]], np.int64)
    oe = np.array([[1, 1300, 0], [2, 1500, 1], [5, 2000, 0]], np.int64)
    j = join(rows, md, oe, 2.0)
    assert list(j["e2e_ns"]) == [200.0, 300.0] and list(j["t2t_ns"]) == [50.0, 50.0]
    assert list(j["late"]) == [0, 1] and j["rows"] == 4
    assert j["unjoined"] == {"trigger_not_sent": 1, "order_not_received": 1, "order_before_trigger": 0,
                             "snapshot_trigger": 1}
    assert j["acausal"] == 0
    rows[0, ST_TCP] = 1400          # order 1, received at 1300, seen before the engine built it
    assert join(rows, md, oe, 2.0)["acausal"] == 1


@pytest.mark.slow
@pytest.mark.parametrize("path", ["memif", "kernel"])
def test_live_every_order_joins_its_trigger(path, tmp_path):
    import os
    from types import SimpleNamespace
    from tickwire.cli.demo import run_path
    rnd = int.from_bytes(os.urandom(2), "little")
    a = SimpleNamespace(duration=3.0, seed=4, strategy="taker", rate=3000.0, cpu=None, rt=False)
    spec = f"memif:socket={tmp_path}/md.sock,role=client" if path == "memif" else "socket"
    res, _, E = run_path(path, a, spec, 20000 + rnd % 20000,
                         (40000 + rnd % 9000, 49000 + rnd % 9000, 58000 + rnd % 7000))
    e = res["end_to_end"]
    assert res["tick_to_trade"]["count"] > 0, res["sim"]
    assert e["count"] > 0 and e["p50_ns"] > 0, e
    # every order the engine sent was seen by the simulator and joined to the packet that triggered it
    assert e["unjoined"]["trigger_not_sent"] == 0 and e["unjoined"]["order_before_trigger"] == 0, e
    assert e["unjoined"]["order_not_received"] <= 1, e          # at most one in flight at the end
    assert e["count"] + sum(e["unjoined"].values()) == int(E.stamps[:, ST_OE_N].sum())
    # the same TSC in both processes: no order reached the simulator before the engine built it,
    # no trigger reached the engine before the simulator sent it
    assert e["acausal"] == 0, e
    assert e["sim"]["oe_garbage"] == 0 and e["sim"]["oe_full"] == 0

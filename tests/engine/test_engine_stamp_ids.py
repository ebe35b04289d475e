"""The stamp rows name what they belong to (layout.ST_MD_SEQ/ST_MD_SRC/ST_OE_SEQ/ST_OE_N):
the MDP packet whose processing produced the orders and the FIXP SeqNums of those
orders, so a peer (the simulator, docs/sim-e2e.md) can join its own stamps to each row.
Checked against the packets actually fed in and the order frames actually sent, parsed
here with struct (independent of the engine's codec)."""

import struct

import inproc
from inproc import Harness
from tickwire.engine.layout import M_SENT_NEW, M_STAMP_N, ST_MD_SEQ, ST_MD_SRC, ST_OE_N, ST_OE_SEQ
from tickwire.feed.state import SRC_A
from tickwire.order import wire_layout as W


def _frames(data):
    """(template, SeqNum) of each SOFH-framed message (SOFH length is big-endian)."""
    pos = 0
    while pos + W.BODY <= len(data):
        n = struct.unpack_from(">H", data, pos)[0]
        assert W.BODY <= n <= len(data) - pos
        tid = struct.unpack_from("<H", data, pos + 6)[0]
        yield tid, struct.unpack_from("<I", data, pos + W.BODY + W.F_SEQNUM)[0]
        pos += n


def test_stamp_rows_name_the_trigger_packet_and_the_orders(monkeypatch):
    sent = []          # (SeqNum, md packets fed so far) of every business message sent
    real = inproc.take_txs

    def spy(E):
        out = real(E)
        for tid, seq in _frames(out):
            if tid in (W.NEW_ORDER, W.REPLACE_REQUEST, W.CANCEL_REQUEST):
                sent.append(seq)
        return out

    monkeypatch.setattr(inproc, "take_txs", spy)
    fed = []
    h = Harness("taker", dict(instr=1, imbalance_pct=60, cooldown_ns=0, max_pos=5))
    real_pump = h.pump_md

    def pump_md():
        before = h.md_count
        real_pump()
        fed.extend(range(before, h.md_count))
    h.pump_md = pump_md
    h.connect()
    h.run(2000)
    E = h.E
    rows = int(E.meta[M_STAMP_N])
    assert E.meta[M_SENT_NEW] > 10 and rows > 0
    s = E.stamps[:rows]
    # the packets fed carry MsgSeqNum 1, 2, ... (one venue, no loss): each row's trigger is one of them
    assert (s[:, ST_MD_SEQ] >= 1).all() and (s[:, ST_MD_SEQ] <= h.md_count).all()
    assert (s[:, ST_MD_SRC] == SRC_A).all()
    assert (s[:, ST_OE_N] >= 1).all()
    # the rows' SeqNum ranges are disjoint, in order, and every one was sent as an order message
    named = [int(q) for r in s for q in range(r[ST_OE_SEQ], r[ST_OE_SEQ] + r[ST_OE_N])]
    assert named == sorted(set(named))
    assert set(named) <= set(sent)
    assert len(named) == len(sent)      # taker: every order comes from a market-data packet

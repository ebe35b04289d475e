"""An engine and a simulated venue joined in-process by plain byte hand-offs (no
transport): the integration harness for tests of the engine core and the venue."""

import numpy as np

from tickwire.engine.build import EngineConfig, build_engine, take_txs
from tickwire.engine.core import md_packet, oe_connected, oe_input, oe_timers
from tickwire.feed.state import SRC_A, SRC_SNAPSHOT
from tickwire.order.config import InstrumentLimits, RiskConfig
from tickwire.sim.venue import V_RX_LEFT, build_venue, take_md, take_out, venue_flow, venue_oe_input, venue_snapshot, \
    venue_timers

TICK = 250_000_000
MID = 5000 * 1_000_000_000
INSTR = [(1001, MID, TICK), (1002, MID // 2, TICK)]


def limits(**kw):
    d = dict(max_qty=10, max_notional=MID * 10, collar=40 * TICK, position_limit=20, tick=TICK)
    d.update(kw)
    return InstrumentLimits(**d)


class Harness:
    def __init__(self, strategy="market_maker", params=None, seed=1, risk=None, **ekw):
        self.V = build_venue(INSTR, seed=seed)
        rc = risk or RiskConfig(instruments=[limits(), limits()], order_rate=100_000, order_burst=1000,
                                message_rate=500_000, message_burst=5000, stale_ns=10**12)
        cfg = EngineConfig(secids=[s for s, _, _ in INSTR], strategy=strategy,
                           strategy_params=params or dict(instr=0, tick=TICK), risk=rc, **ekw)
        self.E, self.mod = build_engine(cfg)
        self.now = 10**15
        self.md_buf = np.zeros(2048, np.uint8)
        self.oe_buf = np.zeros(1 << 20, np.uint8)
        self.drop_md = None     # callable(seq_index) -> bool, to inject loss
        self.md_count = 0
        self.oe_left = b""      # order-entry bytes the venue could not take yet

    def pump_md(self):
        for pkt in take_md(self.V):
            self.md_count += 1
            if self.drop_md is not None and self.drop_md(self.md_count):
                continue
            self.md_buf[:len(pkt)] = np.frombuffer(pkt, np.uint8)
            md_packet(self.E, self.md_buf, 0, len(pkt), SRC_A, self.now, 0)

    def pump_oe(self):
        for _ in range(20):
            moved = False
            tx = self.oe_left + take_txs(self.E)
            if tx:
                self.oe_buf[:len(tx)] = np.frombuffer(tx, np.uint8)
                venue_oe_input(self.V, self.oe_buf, 0, len(tx), self.now)
                left = int(self.V.meta[V_RX_LEFT])      # not taken yet: fed again next turn
                self.oe_left = tx[len(tx) - left:] if left else b""
                moved = True
            out = take_out(self.V)
            if out:
                self.oe_buf[:len(out)] = np.frombuffer(out, np.uint8)
                oe_input(self.E, self.oe_buf, 0, len(out), self.now)
                moved = True
            self.pump_md()
            if not moved:
                break

    def connect(self):
        oe_connected(self.E, self.now)
        self.pump_oe()

    def snapshot(self):
        buf = np.zeros(2048, np.uint8)
        for i in range(len(INSTR)):
            n = venue_snapshot(self.V, i, buf, self.now)
            md_packet(self.E, buf, 0, n, SRC_SNAPSHOT, self.now, 0)

    def run(self, steps, per_step=1, dt=100_000):
        for _ in range(steps):
            self.now += dt
            venue_flow(self.V, self.now, per_step)
            self.pump_md()
            self.pump_oe()
            oe_timers(self.E, self.now)
            venue_timers(self.V, self.now)
            self.pump_oe()

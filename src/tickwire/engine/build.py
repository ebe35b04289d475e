"""Build an EngineState from plain configuration (Python, once, before the loop)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..feed.state import new_feed_state
from ..order.config import InstrumentLimits, RiskConfig, build_risk_state
from ..order.layout import STATUS_READY_TO_TRADE
from ..order.orders import new_order_table
from ..order.session import new_session
from ..sbe import builtin_path, load
from .dispatch import register_strategy
from .layout import (IM_N, IM_SECID, IM_SLOT, IM_STATUS_DEFAULT, IM_UPDATES, IN_N, M_N, M_STAGES, M_WARM_RX,
                     MAX_INTENTS, ST_N, TOP_N, EngineState)
from .strategy import load_strategy


@dataclass
class EngineConfig:
    secids: list[int] = field(default_factory=lambda: [1001])
    strategy: str = "market_maker"
    strategy_params: dict = field(default_factory=dict)
    risk: RiskConfig = field(default_factory=RiskConfig)
    assume_open: bool = True        # no SecurityStatus yet: treat as ReadyToTrade (simulator)
    firm: int = 1
    keepalive_ms: int = 1000
    stamps: int = 1 << 18
    depth: int = 10
    schema: str = ""                # MDP schema XML (default: tickwire's MDP 3.0 subset)

    def __post_init__(self):
        # values a config file gives: refused here with the key named, not deep in the loop
        # (stamps = 0 made the loop's ring index divide by zero at the first order)
        if not self.secids or len(set(self.secids)) != len(self.secids) or \
                not all(isinstance(s, (int, np.integer)) and 0 < s < 2**31 for s in self.secids):
            raise ValueError(f"engine.secids: distinct positive 32-bit integers, got {self.secids!r}")
        for key, low in (("stamps", 1), ("keepalive_ms", 1), ("depth", 1), ("firm", 0)):
            v = getattr(self, key)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < low:
                raise ValueError(f"engine.{key}: an integer >= {low}, got {v!r}")


def build_engine(cfg: EngineConfig):
    """Returns (EngineState, strategy module). ``E.feed`` is the feed's FeedMem (what
    Numba code takes); ``feed_view(E)`` gives the Python handle with named regions."""
    if len(cfg.risk.instruments) != len(cfg.secids):
        if len(cfg.risk.instruments) == 1:
            cfg.risk.instruments = [cfg.risk.instruments[0]] * len(cfg.secids)
        else:
            raise ValueError("risk config: one InstrumentLimits per instrument")
    mod = load_strategy(cfg.strategy)
    view_cls = register_strategy(mod)
    schema = load(cfg.schema or builtin_path())
    feed = new_feed_state(schema, max_instruments=max(16, 2 * len(cfg.secids)), depth=cfg.depth)
    risk = build_risk_state(cfg.risk)
    orders = new_order_table(1024)
    sess = new_session(cfg.firm, cfg.keepalive_ms)
    n = len(cfg.secids)
    imap = np.zeros((n, IM_N), np.int64)
    for i, s in enumerate(cfg.secids):
        imap[i, IM_SECID] = s
        imap[i, IM_SLOT] = -1
        imap[i, IM_UPDATES] = -1
        imap[i, IM_STATUS_DEFAULT] = STATUS_READY_TO_TRADE if cfg.assume_open else 0
    params = mod.params(**cfg.strategy_params)
    view = view_cls(params, np.zeros(16, np.int64), np.zeros((n, TOP_N), np.int64), risk.inst, orders,
                    np.zeros(4, np.int64))
    E = EngineState(feed.mem, risk, orders, sess, view, imap, np.zeros((MAX_INTENTS, IN_N), np.int64),
                    np.zeros(M_N, np.int64), np.zeros((cfg.stamps, ST_N), np.int64), np.zeros(1 << 16, np.uint8),
                    np.zeros(1 << 16, np.uint8))
    for a in (E.stamps, E.rxs, E.txs):
        a.fill(0)       # fault the pages in now, not at the first order of the run
    E.meta[M_STAGES] = 1      # stage stamps on (the transport may turn them off)
    E.meta[M_WARM_RX] = 1     # the idle warm-up covers the receive half too (engine/warm.py)
    return E, mod


def take_txs(E) -> bytes:
    """Python helper (tests, kernel-socket tools): the pending order-entry bytes, cleared."""
    from .layout import M_TXS_LEN
    n = int(E.meta[M_TXS_LEN])
    out = E.txs[:n].tobytes()
    E.meta[M_TXS_LEN] = 0
    return out


def feed_view(E):
    from ..feed.state import Feed
    return Feed(E.feed)

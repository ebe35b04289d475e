"""Risk limits as plain Python (from TOML or code) -> the RiskState arrays the loop uses.

Validation happens here, once, so the hot path can trust the limits (bounded rates and
bursts are what make the token-bucket arithmetic overflow-free; see risk.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

from . import reasons as R
from .layout import (G_DUP_WINDOW_NS, G_KILL_MASK, G_MSG_BURST, G_MSG_FILL_NS, G_MSG_FULL, G_MSG_RATE,
                     G_MSG_TOKENS, G_ORD_BURST, G_ORD_FILL_NS, G_ORD_FULL, G_ORD_RATE, G_ORD_TOKENS, G_STALE_NS,
                     L_COLLAR, L_MAX_NOTIONAL, L_MAX_QTY, L_POS_LIMIT, L_TICK, L_TICK_INV, L_TICK_MAXQ,
                     L_TICK_SHIFT, RiskState)
from .risk import NANO, new_risk_state


@dataclass
class InstrumentLimits:
    max_qty: int = 10
    max_notional: int = 10**15          # in price mantissa units x qty
    collar: int = 0                     # max |price - reference|, price units; 0 = 20 ticks
    position_limit: int = 50
    tick: int = 1                       # MinPriceIncrement mantissa


@dataclass
class RiskConfig:
    instruments: list[InstrumentLimits] = field(default_factory=lambda: [InstrumentLimits()])
    order_rate: int = 100               # orders/s refill (NautilusTrader's default submit rate)
    order_burst: int = 20
    message_rate: int = 500             # new + cancel + replace per second
    message_burst: int = 50
    stale_ns: int = 2_000_000_000       # no market data for this long = stale book
    duplicate_window_ns: int = 1_000_000  # same side/price/qty again within 1 ms = duplicate
    kill_on: tuple[int, ...] = R.LIMIT_BREACHES  # reasons that trip the kill switch

    @classmethod
    def from_dict(cls, d: dict) -> "RiskConfig":
        d = dict(d)
        inst = [InstrumentLimits(**x) for x in d.pop("instruments", [{}])]
        kill_on = d.pop("kill_on", None)
        cfg = cls(instruments=inst, **d)
        if kill_on is not None:
            cfg.kill_on = tuple(R.NAMES.index(n) if isinstance(n, str) else int(n) for n in kill_on)
        return cfg


def _as_int64(v: int) -> int:
    """A 64-bit pattern as the int64 that holds it (the arrays are int64, §5 of numba-hot-path.md)."""
    return v - (1 << 64) if v >= 1 << 63 else v


def tick_divisibility(tick: int) -> tuple[int, int, int]:
    """(INV, SHIFT, MAXQ) for the division-free test "price is a multiple of tick"
    (Granlund & Montgomery 1994 §9; Hacker's Delight 2nd ed. §10-17): with
    tick = odd * 2**SHIFT and INV * odd == 1 (mod 2**64), an unsigned p is a multiple of
    tick exactly when rotate_right(p * INV mod 2**64, SHIFT) <= MAXQ = (2**64 - 1) // tick."""
    if tick <= 0:
        raise ValueError(f"tick must be positive, got {tick}")
    shift = (tick & -tick).bit_length() - 1
    odd = tick >> shift
    inv = pow(odd, -1, 1 << 64)
    return _as_int64(inv), shift, _as_int64(((1 << 64) - 1) // tick)


def build_risk_state(cfg: RiskConfig) -> RiskState:
    if not cfg.instruments:
        raise ValueError("risk config: at least one instrument")
    for name, v, hi in (("order_rate", cfg.order_rate, 10**9), ("message_rate", cfg.message_rate, 10**9),
                        ("order_burst", cfg.order_burst, 10**6), ("message_burst", cfg.message_burst, 10**6)):
        if not 0 < v <= hi:
            raise ValueError(f"risk config: {name}={v} must be in 1..{hi}")
    if cfg.stale_ns <= 0 or cfg.duplicate_window_ns < 0:
        raise ValueError("risk config: stale_ns must be > 0 and duplicate_window_ns >= 0")
    rs = new_risk_state(len(cfg.instruments))
    for i, il in enumerate(cfg.instruments):
        if il.max_qty <= 0 or il.max_notional <= 0 or il.position_limit < 0 or il.tick <= 0 or il.collar < 0:
            raise ValueError(f"risk config: instrument {i}: limits must be positive: {il}")
        if il.max_qty > 10**9 or il.position_limit > 10**12:
            raise ValueError(f"risk config: instrument {i}: max_qty/position_limit absurdly large")
        rs.limits[i, L_MAX_QTY] = il.max_qty
        rs.limits[i, L_MAX_NOTIONAL] = il.max_notional
        rs.limits[i, L_COLLAR] = il.collar if il.collar > 0 else 20 * il.tick
        rs.limits[i, L_POS_LIMIT] = il.position_limit
        rs.limits[i, L_TICK] = il.tick
        rs.limits[i, L_TICK_INV], rs.limits[i, L_TICK_SHIFT], rs.limits[i, L_TICK_MAXQ] = tick_divisibility(il.tick)
    g = rs.glob
    g[G_ORD_RATE], g[G_ORD_BURST] = cfg.order_rate, cfg.order_burst
    g[G_MSG_RATE], g[G_MSG_BURST] = cfg.message_rate, cfg.message_burst
    g[G_ORD_TOKENS] = g[G_ORD_FULL] = cfg.order_burst * NANO        # start full
    g[G_MSG_TOKENS] = g[G_MSG_FULL] = cfg.message_burst * NANO
    # An elapsed time >= FILL_NS refills the bucket completely (risk._refill); below it,
    # elapsed * rate < full + rate <= 1e15 + 1e9: no overflow.
    g[G_ORD_FILL_NS] = cfg.order_burst * NANO // cfg.order_rate + 1
    g[G_MSG_FILL_NS] = cfg.message_burst * NANO // cfg.message_rate + 1
    g[G_STALE_NS] = cfg.stale_ns
    g[G_DUP_WINDOW_NS] = cfg.duplicate_window_ns
    mask = 0
    for r in cfg.kill_on:
        if not 0 < r < R.N_REASONS:
            raise ValueError(f"risk config: kill_on reason {r} unknown")
        mask |= 1 << r
    g[G_KILL_MASK] = mask
    return rs


def reject_counts(rs: RiskState) -> dict[str, int]:
    return {R.NAMES[i]: int(v) for i, v in enumerate(rs.rejects) if i and v}

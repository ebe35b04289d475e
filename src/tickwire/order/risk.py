"""Pre-trade risk: every check O(1) integer math in Numba, every refusal counted by reason.

Regulatory anchor: SEC Rule 15c3-5 (block erroneous orders and orders beyond pre-set credit
thresholds); venue analogues: CME Globex price banding, clip limits, kill switch
(shared/notes/mdp3.md §9). The checks run in the order below: cheapest and most
fundamental first, and the token buckets last, because a refused order must not spend
rate budget.

Overflow discipline: a strategy may hand us any int64. Quantity is bounded by MAX_QTY and
price must be positive before anything is multiplied; the notional product is formed in
two 32-bit halves (``_over_notional``) so it never overflows.

No order divides (session 4): a 64-bit division costs 10-20 cycles and a new order used to
do five (tick, notional, two bucket refills twice). The tick test multiplies by a
precomputed inverse, the notional test multiplies in halves, the bucket refill limits are
precomputed by ``config.build_risk_state``, and each bucket is refilled once per order.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..mem.hotpath import into_runtime_free_callers
from . import reasons as R
from .layout import (G_ACCEPTED, G_DUP_WINDOW_NS, G_KILL, G_KILL_COUNT, G_KILL_MASK, G_KILL_REASON,
                     G_MAX_CLORDID, G_MSG_FILL_NS, G_MSG_FULL, G_MSG_RATE, G_MSG_TOKENS, G_MSG_TS, G_N,
                     G_ORD_FILL_NS, G_ORD_FULL, G_ORD_RATE, G_ORD_TOKENS, G_ORD_TS, G_REJECTED, G_SESSION_UP,
                     G_STALE_NS, I_ASK, I_BID, I_BOOK_VALID, I_DUP_PRICE, I_DUP_QTY, I_DUP_SIDE, I_DUP_TIME,
                     I_HIGH_LIMIT, I_LAST, I_LOW_LIMIT, I_MD_TIME, I_N, I_OPEN_BUY, I_OPEN_SELL, I_POSITION,
                     I_STATUS, L_COLLAR, L_MAX_NOTIONAL, L_MAX_QTY, L_N, L_POS_LIMIT, L_TICK_INV, L_TICK_MAXQ,
                     L_TICK_SHIFT, SIDE_BUY, SIDE_SELL, STATUS_READY_TO_TRADE, RiskState)

NANO = 1_000_000_000


# --- token buckets --------------------------------------------------------------------------

@njit(cache=True, inline="always")
def _refill(glob, tok, ts, rate, fill, full, now):
    """The bucket's tokens after refilling by the elapsed time (nothing stored). Tokens are
    kept in nano-tokens so refill is integer math: ``elapsed_ns * rate_per_s``. An elapsed
    time of ``fill`` or more fills the bucket (``fill = full // rate + 1``, precomputed by
    the config), which also keeps the product from overflowing (rate <= 1e9, burst <= 1e6
    are enforced by the config). Elapsed <= 0 (same tick or clock step back): no refill,
    never a negative one."""
    t = glob[tok]
    elapsed = now - glob[ts]
    if elapsed > 0:
        t = t + elapsed * glob[rate] if elapsed < glob[fill] else glob[full]
        if t > glob[full]:
            t = glob[full]
    return t


@njit(cache=True, inline="always")
def _spend(glob, tok, ts, t, now):
    """Store the refilled bucket ``t`` less one token (the caller checked t >= NANO)."""
    glob[tok] = t - NANO
    if now > glob[ts]:
        glob[ts] = now


@njit(cache=True, inline="always")
def _bucket_take(glob, tok, ts, rate, fill, full, now):
    """Refill by elapsed time, then take one token if there is one."""
    t = _refill(glob, tok, ts, rate, fill, full, now)
    if t >= NANO:
        _spend(glob, tok, ts, t, now)
        return True
    glob[tok] = t
    if now > glob[ts]:
        glob[ts] = now
    return False


@njit(cache=True, inline="always")
def _msg_take(g, now):
    return _bucket_take(g, G_MSG_TOKENS, G_MSG_TS, G_MSG_RATE, G_MSG_FILL_NS, G_MSG_FULL, now)


# --- kill switch -----------------------------------------------------------------------------

@njit(cache=True, _nrt=False)
def kill_engage(risk, why):
    """Stop all new orders. The engine then cancels every working order (orders.collect_cancels).
    The first reason is kept until reset, so the operator sees what tripped it."""
    g = risk.glob
    if g[G_KILL] == 0:
        g[G_KILL] = 1
        g[G_KILL_REASON] = why
        g[G_KILL_COUNT] += 1


@njit(cache=True, _nrt=False)
def kill_reset(risk):
    risk.glob[G_KILL] = 0
    risk.glob[G_KILL_REASON] = R.KILL_NONE


@njit(cache=True, _nrt=False)
def session_changed(risk, up):
    """Session loss engages the kill switch (cancel-on-disconnect on our side too); a kill
    caused only by session loss clears itself when the session is re-established
    (issue 7: "resumes when the venue comes back"). Breach and manual kills stay latched."""
    g = risk.glob
    g[G_SESSION_UP] = 1 if up else 0
    if not up:
        kill_engage(risk, R.KILL_SESSION_LOSS)
    elif g[G_KILL] == 1 and (g[G_KILL_REASON] == R.KILL_SESSION_LOSS):
        kill_reset(risk)


@njit(cache=True, inline="always")
def _refuse(risk, reason):
    risk.rejects[reason] += 1
    risk.glob[G_REJECTED] += 1
    if (risk.glob[G_KILL_MASK] >> reason) & 1:
        kill_engage(risk, R.KILL_BREACH)
    return reason


# --- price checks shared by new and replace ------------------------------------------------

@njit(cache=True, inline="always")
def _reference(inst, i, side):
    """Collar reference: the mid when both sides exist, else the side we would trade against,
    else the last trade. 0 = no reference."""
    bid = inst[i, I_BID]
    ask = inst[i, I_ASK]
    if bid > 0 and ask > 0:
        return bid + (ask - bid) // 2
    if side == SIDE_BUY and ask > 0:
        return ask
    if side == SIDE_SELL and bid > 0:
        return bid
    if bid > 0:
        return bid
    if ask > 0:
        return ask
    return inst[i, I_LAST]


@njit(cache=True, inline="always")
def _on_tick(lim, i, price):
    """``price % tick == 0`` for a positive price, without a division (config.tick_divisibility:
    multiply by the inverse of the tick's odd part, rotate right by its power of two,
    compare). All-uint64 on purpose: one signedness per variable (numba-hot-path.md §5)."""
    x = np.uint64(price) * np.uint64(lim[i, L_TICK_INV])
    k = np.uint64(lim[i, L_TICK_SHIFT])
    x = (x >> k) | (x << ((np.uint64(64) - k) & np.uint64(63)))
    return x <= np.uint64(lim[i, L_TICK_MAXQ])


@njit(cache=True, inline="always")
def _over_notional(qty, price, max_notional):
    """``qty * price > max_notional`` exactly, for 0 < qty < 2**30 and 0 < price, without
    forming a product that could overflow and without a division: price = hi * 2**32 + lo,
    so qty * price = (hi * qty) * 2**32 + lo * qty, each part < 2**62."""
    lo = (price & 0xFFFFFFFF) * qty
    if lo > max_notional:
        return True
    return (price >> 32) * qty > ((max_notional - lo) >> 32)


@njit(cache=True, inline="always")
def _check_order_terms(risk, i, side, price, qty, now):
    """Checks common to a new order and a replace. Returns OK or a reason (not counted)."""
    lim = risk.limits
    inst = risk.inst
    if side != SIDE_BUY and side != SIDE_SELL:
        return R.BAD_SIDE
    if qty <= 0:
        return R.BAD_QTY
    if qty > lim[i, L_MAX_QTY]:
        return R.MAX_QTY
    if price <= 0:
        return R.BAD_PRICE
    if not _on_tick(lim, i, price):
        return R.TICK_SIZE
    hi = inst[i, I_HIGH_LIMIT]
    lo = inst[i, I_LOW_LIMIT]
    if (hi > 0 and price > hi) or (lo > 0 and price < lo):
        return R.PRICE_BAND
    if inst[i, I_STATUS] != STATUS_READY_TO_TRADE:
        return R.TRADING_STATUS
    if inst[i, I_BOOK_VALID] == 0 or now - inst[i, I_MD_TIME] > risk.glob[G_STALE_NS]:
        return R.STALE_BOOK
    ref = _reference(inst, i, side)
    if ref <= 0:
        return R.NO_REFERENCE
    # both positive, so the difference cannot overflow
    dev = price - ref if price > ref else ref - price
    if dev > lim[i, L_COLLAR]:
        return R.PRICE_COLLAR
    # qty <= max_qty <= 1e9 < 2**30 (config); a hand-made larger clip takes the division
    if qty < (1 << 30):
        if _over_notional(qty, price, lim[i, L_MAX_NOTIONAL]):
            return R.MAX_NOTIONAL
    elif qty > lim[i, L_MAX_NOTIONAL] // price:
        return R.MAX_NOTIONAL
    return R.OK


@njit(cache=True, inline="always")
def _check_exposure(risk, i, side, extra):
    """Worst case if every working order fills: position +/- open exposure + ``extra``."""
    inst = risk.inst
    plim = risk.limits[i, L_POS_LIMIT]
    if side == SIDE_BUY:
        if inst[i, I_POSITION] + inst[i, I_OPEN_BUY] + extra > plim:
            return R.POSITION_LIMIT
    else:
        if inst[i, I_POSITION] - inst[i, I_OPEN_SELL] - extra < -plim:
            return R.POSITION_LIMIT
    return R.OK


# --- the three entry points ------------------------------------------------------------------

@njit(cache=True, inline="always")
def _new_verdict(risk, now, i, side, price, qty, clordid):
    """Every check of a new order, without side effects: (OK or the first failing reason,
    the message bucket and the order bucket refilled -- what check_new then spends)."""
    g = risk.glob
    if g[G_KILL] != 0:
        return R.KILLED, 0, 0
    if g[G_SESSION_UP] == 0:
        return R.SESSION_DOWN, 0, 0
    if i < 0 or i >= risk.limits.shape[0]:
        return R.BAD_INSTRUMENT, 0, 0
    r = _check_order_terms(risk, i, side, price, qty, now)
    if r != R.OK:
        return r, 0, 0
    r = _check_exposure(risk, i, side, qty)
    if r != R.OK:
        return r, 0, 0
    if clordid <= g[G_MAX_CLORDID]:
        return R.DUPLICATE_CLORDID, 0, 0
    inst = risk.inst
    if (inst[i, I_DUP_SIDE] == side and inst[i, I_DUP_PRICE] == price and inst[i, I_DUP_QTY] == qty
            and now - inst[i, I_DUP_TIME] < g[G_DUP_WINDOW_NS]):
        return R.DUPLICATE_ORDER, 0, 0
    # Rate last: both buckets must have a token before either is spent.
    t_msg = _refill(g, G_MSG_TOKENS, G_MSG_TS, G_MSG_RATE, G_MSG_FILL_NS, G_MSG_FULL, now)
    if t_msg < NANO:
        return R.MESSAGE_RATE, 0, 0
    t_ord = _refill(g, G_ORD_TOKENS, G_ORD_TS, G_ORD_RATE, G_ORD_FILL_NS, G_ORD_FULL, now)
    if t_ord < NANO:
        return R.ORDER_RATE, 0, 0
    return R.OK, t_msg, t_ord


# The per-order entry points are inlined into runtime-free (@hot) callers -- the engine's
# act_on_intents: a call passes every array of RiskState field by field (~37 words on the
# stack) for a few dozen instructions of work (mem/hotpath.py).
@njit(cache=True, _nrt=False, inline=into_runtime_free_callers)
def check_new(risk, now, i, side, price, qty, clordid):
    """Pre-trade check of a new limit order. On OK the caller must send it and call
    ``commit_new``; on refusal the reason is counted (and may trip the kill switch)."""
    r, t_msg, t_ord = _new_verdict(risk, now, i, side, price, qty, clordid)
    if r != R.OK:
        return _refuse(risk, r)
    # spend what the verdict refilled: one refill per bucket and order
    _spend(risk.glob, G_ORD_TOKENS, G_ORD_TS, t_ord, now)
    _spend(risk.glob, G_MSG_TOKENS, G_MSG_TS, t_msg, now)
    return R.OK


@njit(cache=True, _nrt=False)
def check_new_dry(risk, now, i, side, price, qty, clordid):
    """What ``check_new`` would answer, with nothing counted, spent or engaged: the
    engine runs it on a dummy order while idle so that the risk state the next real
    order reads is in cache (see engine/warm.py)."""
    return _new_verdict(risk, now, i, side, price, qty, clordid)[0]


@njit(cache=True, _nrt=False, inline=into_runtime_free_callers)
def commit_new(risk, now, i, side, price, qty, clordid):
    """Record an accepted order: exposure, duplicate guard, ClOrdID high-water mark."""
    inst = risk.inst
    if side == SIDE_BUY:
        inst[i, I_OPEN_BUY] += qty
    else:
        inst[i, I_OPEN_SELL] += qty
    inst[i, I_DUP_SIDE] = side
    inst[i, I_DUP_PRICE] = price
    inst[i, I_DUP_QTY] = qty
    inst[i, I_DUP_TIME] = now
    risk.glob[G_MAX_CLORDID] = clordid
    risk.glob[G_ACCEPTED] += 1


@njit(cache=True, _nrt=False)
def check_replace(risk, now, i, side, price, qty, extra_exposure):
    """Replace = new terms for a working order. ``extra_exposure`` is how much more open
    quantity the replace reserves (orders.replace computes it)."""
    g = risk.glob
    if g[G_KILL] != 0:
        return _refuse(risk, R.KILLED)
    if g[G_SESSION_UP] == 0:
        return _refuse(risk, R.SESSION_DOWN)
    r = _check_order_terms(risk, i, side, price, qty, now)
    if r != R.OK:
        return _refuse(risk, r)
    if extra_exposure > 0:
        r = _check_exposure(risk, i, side, extra_exposure)
        if r != R.OK:
            return _refuse(risk, r)
    if not _msg_take(g, now):
        return _refuse(risk, R.MESSAGE_RATE)
    g[G_ACCEPTED] += 1
    return R.OK


@njit(cache=True, _nrt=False)
def check_cancel(risk, now):
    """Cancels reduce risk, so only the message bucket applies, the kill switch does not,
    and a refusal here never trips the kill switch (it would loop)."""
    g = risk.glob
    if g[G_SESSION_UP] == 0:
        risk.rejects[R.SESSION_DOWN] += 1
        return R.SESSION_DOWN
    if not _msg_take(g, now):
        risk.rejects[R.MESSAGE_RATE] += 1
        return R.MESSAGE_RATE
    return R.OK


# --- market data inputs (called by the engine after each book event) -----------------------

@njit(cache=True, _nrt=False)
def market_update(risk, i, bid, ask, last, book_valid, now):
    if i < 0 or i >= risk.inst.shape[0]:
        return
    inst = risk.inst
    inst[i, I_BID] = bid
    inst[i, I_ASK] = ask
    if last > 0:
        inst[i, I_LAST] = last
    inst[i, I_BOOK_VALID] = book_valid
    inst[i, I_MD_TIME] = now


@njit(cache=True, _nrt=False)
def status_update(risk, i, status, high_limit, low_limit):
    if i < 0 or i >= risk.inst.shape[0]:
        return
    risk.inst[i, I_STATUS] = status
    risk.inst[i, I_HIGH_LIMIT] = high_limit
    risk.inst[i, I_LOW_LIMIT] = low_limit


def new_risk_state(n_instruments: int) -> RiskState:
    return RiskState(np.zeros((n_instruments, L_N), np.int64), np.zeros((n_instruments, I_N), np.int64),
                     np.zeros(G_N, np.int64), np.zeros(R.N_REASONS, np.int64))

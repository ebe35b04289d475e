"""Why an order was refused: one code per pre-trade check, counted in ``RiskState.rejects``.

Codes are small ints so the hot path counts with ``rejects[code] += 1``; NAMES gives
the label used in counters, JSON and the live view. Checklist: shared/notes/mdp3.md §9
(SEC Rule 15c3-5 "erroneous order" controls, CME Globex price banding and kill switch).
"""

from __future__ import annotations

OK = 0
KILLED = 1            # kill switch engaged: nothing new goes out
BAD_INSTRUMENT = 2    # instrument index out of range / not configured
BAD_SIDE = 3
BAD_QTY = 4           # qty <= 0
MAX_QTY = 5           # qty above the per-order clip (CME MaxTradeVol analogue)
BAD_PRICE = 6         # price <= 0 for a limit order
TICK_SIZE = 7         # price not a multiple of the tick (MinPriceIncrement)
PRICE_BAND = 8        # outside the exchange's Low/HighLimitPrice
PRICE_COLLAR = 9      # too far from the reference price (our own band around the book)
MAX_NOTIONAL = 10     # qty * price above the per-order notional cap
POSITION_LIMIT = 11   # position + open exposure (+ this order) would exceed the limit
ORDER_RATE = 12       # order token bucket empty
MESSAGE_RATE = 13     # message token bucket empty (new + cancel + replace)
DUPLICATE_CLORDID = 14
DUPLICATE_ORDER = 15  # same instrument/side/price/qty within the duplicate window
TRADING_STATUS = 16   # instrument not open for trading (SecurityTradingStatus != 17)
STALE_BOOK = 17       # book invalid (gap/recovery) or no market data for too long
NO_REFERENCE = 18     # no reference price to collar against (empty book, no last)
TABLE_FULL = 19       # order table slot still in use
UNKNOWN_ORDER = 20    # cancel/replace for an order that is not working
NOT_CANCELABLE = 21   # order already pending cancel/replace or done
SESSION_DOWN = 22     # order session not established

NAMES = ("ok", "killed", "bad_instrument", "bad_side", "bad_qty", "max_qty", "bad_price", "tick_size",
         "price_band", "price_collar", "max_notional", "position_limit", "order_rate", "message_rate",
         "duplicate_clordid", "duplicate_order", "trading_status", "stale_book", "no_reference",
         "table_full", "unknown_order", "not_cancelable", "session_down")
N_REASONS = len(NAMES)

# Reasons that are "limit breaches": by default any of them trips the kill switch
# (issue 7: "kill switch ... on any limit breach"). Operational refusals (stale book,
# halted instrument, session down) only block the order.
LIMIT_BREACHES = (MAX_QTY, PRICE_COLLAR, PRICE_BAND, MAX_NOTIONAL, POSITION_LIMIT, ORDER_RATE, MESSAGE_RATE,
                  DUPLICATE_CLORDID, BAD_QTY, BAD_PRICE, TICK_SIZE)
DEFAULT_KILL_MASK = sum(1 << r for r in LIMIT_BREACHES)

# Why the kill switch is engaged (RiskState.glob[KILL_REASON]).
KILL_NONE, KILL_MANUAL, KILL_BREACH, KILL_SESSION_LOSS, KILL_VENUE_ERROR = range(5)
KILL_NAMES = ("none", "manual", "limit_breach", "session_loss", "venue_error")

assert len(NAMES) == SESSION_DOWN + 1

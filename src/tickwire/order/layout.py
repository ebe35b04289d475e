"""Column indices of the risk and order-table arrays (int64 everywhere: one signedness
per kernel, numba-hot-path.md §5; prices are int64 fixed-point mantissas, never floats).

RiskState (namedtuple of arrays, passed to Numba as one argument):
  limits[n_instr, L_N]  configured per instrument, read-only in the loop
  inst[n_instr, I_N]    market + exposure state per instrument, updated by the loop
  glob[G_N]             kill switch, token buckets, clocks, sequence guards
  rejects[N_REASONS]    one counter per rejection reason (reasons.py)

OrderTable:
  orders[capacity, O_N] one row per live order; the slot is ClOrdID & (capacity-1), so an
                        execution report finds its order in O(1) (capacity: power of two)
  stats[S_N]            reconciliation counters
"""

from __future__ import annotations

from collections import namedtuple

# --- limits[i, *] -------------------------------------------------------------------------
L_MAX_QTY, L_MAX_NOTIONAL, L_COLLAR, L_POS_LIMIT, L_TICK = range(5)
# The tick test without a division (risk._on_tick; config.tick_divisibility): tick = odd * 2**SHIFT,
# INV = the odd part's inverse mod 2**64, MAXQ = (2**64 - 1) // tick, both as int64 bit patterns.
# Appended (never inserted): cached compiled code of other modules keeps its column numbers.
L_TICK_INV, L_TICK_SHIFT, L_TICK_MAXQ = range(5, 8)
L_N = 8                         # 8 int64: one 64-byte line per instrument

# --- inst[i, *] ---------------------------------------------------------------------------
(I_BID, I_ASK, I_LAST,          # reference prices; 0 = absent
 I_STATUS,                      # MDP SecurityTradingStatus (17 = ReadyToTrade)
 I_BOOK_VALID,                  # 1 while the book is consistent (no gap, not recovering)
 I_MD_TIME,                     # ns of the last market data seen for this instrument/channel
 I_HIGH_LIMIT, I_LOW_LIMIT,     # exchange price band (0 = none)
 I_POSITION, I_OPEN_BUY, I_OPEN_SELL,
 I_BUY_QTY, I_SELL_QTY,         # traded volume
 I_CASH_TICKS,                  # -sum(signed qty * price/tick): P&L in ticks = cash + position * mark/tick
 I_DUP_SIDE, I_DUP_PRICE, I_DUP_QTY, I_DUP_TIME,
 ) = range(18)
I_N = 18

STATUS_READY_TO_TRADE = 17  # mdp3.md §3, template 30

# --- glob[*] ------------------------------------------------------------------------------
(G_KILL, G_KILL_REASON, G_KILL_COUNT,
 G_KILL_MASK,                   # bit r set: rejection reason r trips the kill switch
 G_SESSION_UP,
 G_ORD_TOKENS, G_ORD_TS, G_ORD_RATE, G_ORD_BURST,   # tokens in nano-tokens (1e9 = one order)
 G_MSG_TOKENS, G_MSG_TS, G_MSG_RATE, G_MSG_BURST,
 G_STALE_NS,                    # max age of market data before quoting stops
 G_DUP_WINDOW_NS,               # identical order within this window = duplicate
 G_MAX_CLORDID,                 # ClOrdIDs must increase: any repeat is refused in O(1)
 G_ACCEPTED, G_REJECTED,
 ) = range(18)
# Derived once by config.build_risk_state so that no order divides (appended, see L_TICK_INV):
# *_FULL = burst in nano-tokens, *_FILL_NS = the time an empty bucket takes to fill (+1).
G_ORD_FULL, G_ORD_FILL_NS, G_MSG_FULL, G_MSG_FILL_NS = range(18, 22)
G_N = 22

RiskState = namedtuple("RiskState", "limits inst glob rejects")

# --- orders[slot, *] ----------------------------------------------------------------------
(O_CLORDID, O_INSTR, O_SIDE, O_PRICE, O_QTY, O_LEAVES, O_CUM, O_STATE, O_EXCH_ID,
 O_PEND_PRICE, O_PEND_QTY, O_TIF, O_RESERVED, O_TIME) = range(14)
O_N = 14

# Order states. Terminal states (filled, canceled, rejected) free the slot.
OS_FREE, OS_PENDING_NEW, OS_WORKING, OS_PENDING_CANCEL, OS_PENDING_REPLACE = range(5)
OS_NAMES = ("free", "pending_new", "working", "pending_cancel", "pending_replace")

SIDE_BUY, SIDE_SELL = 1, 2      # FIX Side(54)
TIF_DAY, TIF_IOC = 0, 3         # FIX TimeInForce(59)

# Execution report types carried by our order-entry schema (schemas/orderentry.xml).
EXEC_NEW, EXEC_TRADE, EXEC_CANCELED, EXEC_REPLACED, EXEC_REJECTED, EXEC_CANCEL_REJECT = range(6)

# --- stats[*] -----------------------------------------------------------------------------
(S_LIVE, S_SENT_NEW, S_SENT_CANCEL, S_SENT_REPLACE,
 S_ACKS, S_FILLS, S_FILLED_QTY, S_CANCELED, S_REPLACED, S_REJECTED, S_CANCEL_REJECTED,
 S_UNKNOWN_EXEC,      # report for a ClOrdID we have no live order for (late/duplicate): counted, ignored
 S_BAD_EXEC,          # report inconsistent with the order (overfill, bad qty/price, wrong state)
 S_EXPIRED,           # IOC remainder canceled by the venue
 ) = range(14)
S_N = 14
STAT_NAMES = ("live", "sent_new", "sent_cancel", "sent_replace", "acks", "fills", "filled_qty", "canceled",
              "replaced", "rejected", "cancel_rejected", "unknown_exec", "bad_exec", "expired")

OrderTable = namedtuple("OrderTable", "orders stats")

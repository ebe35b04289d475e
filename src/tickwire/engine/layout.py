"""The engine's state: one namedtuple of the lower layers' states plus a few arrays of its
own, so the Numba loop takes one argument for all of it (numba-hot-path.md §6).

    feed      feed.state.FeedMem (books: feed.handler.views(feed).levels)
    risk      order.layout.RiskState
    orders    order.layout.OrderTable
    sess      order.session state array (FIXP client)
    sv        StrategyView handed to the strategy callbacks
    imap      imap[i, *]: engine instrument i <-> SecurityID and feed slot
    intents   int64[MAX_INTENTS, N_*]: what the strategy asks for (see strategy.py)
    meta      int64[M_*]: counters and clocks
    stamps    int64[n, ST_*]: per-event stage timestamps (TSC ticks), a ring
    rxs       uint8 stream buffer: order-entry bytes received, not yet framed
    txs       uint8 buffer: order-entry bytes to send at the end of this event
"""

from __future__ import annotations

from collections import namedtuple

EngineState = namedtuple("EngineState", "feed risk orders sess sv imap intents meta stamps rxs txs")
StrategyView = namedtuple("StrategyView", "params state top inst orders ids")

# imap columns
IM_SECID, IM_SLOT, IM_UPDATES, IM_STATUS_DEFAULT = range(4)
IM_N = 4

# top[i, *]: what the strategy sees of each book (prices are int64 mantissas, 0 = none)
TOP_BID, TOP_BID_QTY, TOP_ASK, TOP_ASK_QTY, TOP_LAST, TOP_VALID, TOP_UPDATES = range(7)
TOP_N = 8

# intents
IN_KIND, IN_INSTR, IN_SIDE, IN_PRICE, IN_QTY, IN_TIF, IN_REF = range(7)
IN_N = 8
K_NEW, K_CANCEL, K_REPLACE = 1, 2, 3
MAX_INTENTS = 16

# meta
(M_NOW, M_BOOK_EVENTS, M_TRADE_EVENTS, M_EXEC_EVENTS, M_INTENTS, M_BAD_INTENTS, M_SENT_NEW, M_SENT_CANCEL,
 M_SENT_REPLACE, M_RISK_REJECTS, M_TXS_LEN, M_RXS_LEN, M_OE_GARBAGE, M_CLOSE_TRANSPORT, M_STAMP_N,
 M_MD_PACKETS, M_OE_FRAMES, M_TXS_OVERFLOW, M_RXS_OVERFLOW, M_KILL_CANCELS, M_SESSION_DOWNS, M_RESETS,
 M_LAST_T2T, M_TX_DROPPED, M_SLOW_FRAMES, M_T_RX, M_T_FEED, M_T_STACK, M_T_PREV_POLL, M_MD_SEQ, M_MD_SRC,
 M_WARMS, M_KRX_MISSING, M_STAGES, M_T_TCP, M_WARM_RX, M_SHADOW, M_WARM_FLEN) = range(38)
M_N = 40
META_NAMES = ("now", "book_events", "trade_events", "exec_events", "intents", "bad_intents", "sent_new",
              "sent_cancel", "sent_replace", "risk_rejects", "txs_len", "rxs_len", "oe_garbage", "close_transport",
              "stamps", "md_packets", "oe_frames", "txs_overflow", "rxs_overflow", "kill_cancels", "session_downs",
              "resets", "last_t2t_ticks", "tx_dropped", "slow_frames", "t_rx", "t_feed", "t_stack", "t_prev_poll",
              "md_seq", "md_src", "warms", "krx_missing", "stages", "t_tcp",
              "warm_receive", "shadow", "warm_frame_len")

# M_STAGES: 1 = stamp every stage boundary (rdtsc, not ordered: each costs ~18 ns, an
# rdtscp ~37 ns plus the pipeline it drains), 0 = only the two ends (ST_RX, ST_TX: rdtscp),
# so the headline tick-to-trade does not carry its own instrumentation; the intermediate
# columns then stay 0 (latency.samples reports no stages).
# M_WARM_RX: 1 = the idle warm-up also warms the receive half (warm.warm_receive).
# M_SHADOW: 1 in the warm-up's shadow state (warm.new_warm_state), 0 in the real one: the send
# path run on a shadow stops before the wire (loop_memif.flush_oe); M_WARM_FLEN: the length of
# the segment it built there.

# stamps: one row per market-data packet that led to at least one order
# (TSC ticks). In time order: PREV_POLL (the receive poll before the one that found the
# frame: the frame reached the ring after it), RX (frame taken from the receive ring),
# STACK (Ethernet/IP/UDP done), FEED (feed handler + books), STRATEGY (intents out),
# RISK (risk checks + encoding), TCP (segment built), TX (frame in the transmit ring).
ST_RX, ST_FEED, ST_STRATEGY, ST_RISK, ST_TX, ST_STACK, ST_TCP, ST_PREV_POLL = range(8)
STAGE_NAMES = ("rx", "feed", "strategy", "risk", "tx", "stack", "tcp", "prev_poll")
# Identifiers, not times: they let a peer join its own stamps to the row (end to end through
# the simulator, docs/sim-e2e.md). MD_SEQ: MsgSeqNum of the MDP packet being processed
# (mdp3.md §1 packet header, -1 when the payload is shorter than one), MD_SRC: its feed
# (feed.state SRC_A/SRC_B/SRC_SNAPSHOT); OE_SEQ: FIXP SeqNum of the row's first order-entry
# business message, OE_N: how many the row sent (consecutive SeqNums from OE_SEQ).
ST_MD_SEQ, ST_MD_SRC, ST_OE_SEQ, ST_OE_N = range(8, 12)
# Kernel-socket path only (0 elsewhere), CLOCK_REALTIME ns: KRX when the kernel received the
# market-data datagram (its software receive timestamp, engine/kernel_stamps.py), KTX right
# after ``send`` of the order returned. Tick-to-trade of that path = KTX - KRX.
ST_KRX, ST_KTX = 12, 13
ST_N = 14

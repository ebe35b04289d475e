"""The MDP 3.0 handler's state: a namedtuple of a few numpy arrays.

Everything the handler keeps lives here so the engine can hold it inside its Numba
loop and strategies can read books and per-instrument state without a copy:

    ctr[C_*]          counters (every drop under a named cause) and sequencing scalars
    tpl[tid, slot]    offsets from the schema (feed.layout)
    inst[slot, I_*]   per instrument: SecurityID, state, RptSeq, depth, ...
    index[h]          SecurityID hash -> slot + 1 (open addressing, 0 = empty)
    levels[slot,...]  market-by-price books (book.mbp)
    pend / pend_meta  reorder window: packets ahead of the next expected seq (A/B hole fill)
    ring / ring_meta  packets processed while some instrument is recovering, for replay
                      after its snapshot (notes/mdp3.md §5 "Snapshot alignment")
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from ..book.mbp import new_levels
from . import layout

FeedState = namedtuple("FeedState", "ctr tpl inst index levels pend pend_meta ring ring_meta")

# Instrument states (visible to the strategy through inst[slot, I_STATE]).
S_EMPTY = 0        # slot unused
S_SYNCED = 1       # book valid: every RptSeq since the last snapshot/start applied
S_STALE = 2        # channel lost packets (or a message was unreadable) since the last proof:
                   # do not quote; the next entry with RptSeq = last + 1 proves it good again
S_RECOVERING = 3   # RptSeq chain broken or unknown start: waiting for a snapshot
STATE_NAMES = ("empty", "synced", "stale", "recovering")

INST_COLS = ("secid", "state", "rpt", "depth", "implied_depth", "status", "updates", "last_seq",
             "min_px_inc", "display_factor", "recoveries")
(I_SECID, I_STATE, I_RPT, I_DEPTH, I_IDEPTH, I_STATUS, I_UPDATES, I_LAST_SEQ,
 I_MINPX, I_DISPLAY, I_RECOVERIES) = range(len(INST_COLS))
N_INST_COLS = 12

COUNTERS = (
    # traffic
    "packets", "bytes", "messages", "entries", "snapshot_packets",
    # sequencing
    "duplicates", "reordered", "gaps", "lost_packets", "rpt_gaps", "stale_marks",
    "recoveries", "snapshots_applied", "snapshots_ignored", "snapshots_too_old", "replayed_packets",
    "replay_overflow",
    # drops by cause (bad input)
    "truncated_packet", "message_overrun", "block_overrun", "group_overrun", "schema_id_mismatch",
    "unknown_template", "short_entry", "bad_level", "bad_action", "bad_entry_type", "instrument_table_full",
    "unsupported_template_entries", "old_rpt_entries", "newer_version", "packet_too_big",
    # book resets
    "book_resets", "channel_resets",
    # scalars (not counters)
    "next_seq", "last_lost_seq", "buffering", "ring_first_seq", "ring_head", "ring_count",
    "pend_count", "in_event", "start_synced", "n_inst", "last_seq", "schema_id", "schema_version",
    "default_depth", "replaying",
)
SCALARS_FROM = COUNTERS.index("next_seq")
for _i, _n in enumerate(COUNTERS):
    globals()["C_" + _n.upper()] = _i
N_CTR = len(COUNTERS)

SRC_A, SRC_B, SRC_SNAPSHOT = 0, 1, 2


def new_feed_state(schema, max_instruments=256, depth=10, window=16, ring_packets=4096,
                   max_packet=1500) -> FeedState:
    """Allocate a handler state for ``schema`` (a tickwire.sbe.Schema).

    depth: rows per book side (CME outright books are 10 deep; 54's MarketDepth may
    lower it per instrument). window: packets held for A/B hole fill before a gap is
    declared. ring_packets: incrementals kept for replay during recovery.
    """
    if max_instruments < 1 or depth < 1 or window < 1 or ring_packets < 1:
        raise ValueError("feed state sizes must be positive")
    ctr = np.zeros(N_CTR, np.int64)
    ctr[C_SCHEMA_ID] = schema.id
    ctr[C_SCHEMA_VERSION] = schema.version
    ctr[C_DEFAULT_DEPTH] = depth
    ctr[C_LAST_LOST_SEQ] = -1
    hsize = 1
    while hsize < 2 * max_instruments:
        hsize <<= 1
    return FeedState(
        ctr=ctr,
        tpl=layout.build(schema),
        inst=np.zeros((max_instruments, N_INST_COLS), np.int64),
        index=np.zeros(hsize, np.int64),
        levels=new_levels(max_instruments, depth),
        pend=np.zeros((window, max_packet), np.uint8),
        pend_meta=np.full((window, 2), -1, np.int64),
        ring=np.zeros((ring_packets, max_packet), np.uint8),
        ring_meta=np.zeros((ring_packets, 2), np.int64),
    )


def counters(st: FeedState) -> dict:
    return {n: int(st.ctr[i]) for i, n in enumerate(COUNTERS[:SCALARS_FROM])}


def slot_of(st: FeedState, secid: int) -> int:
    n = int(st.ctr[C_N_INST])
    hits = np.nonzero(st.inst[:n, I_SECID] == secid)[0]
    return int(hits[0]) if len(hits) else -1

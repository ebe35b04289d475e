"""The MDP 3.0 handler's state: two flat numpy arrays (``FeedMem``: int64 + uint8),
seen as named regions.

Everything the handler keeps lives here so the engine can hold it inside its Numba
loop and strategies can read books and per-instrument state without a copy. Numba code
gets the FeedMem and rebuilds the region views (``handler.views``); Python gets a
``Feed`` with the same views as attributes:

    ctr[C_*]          counters (every drop under a named cause) and sequencing scalars
    tpl[tid, slot]    offsets from the schema (feed.layout)
    inst[slot, I_*]   per instrument: SecurityID, state, RptSeq, depth, ...
    index[h]          SecurityID hash -> (SecurityID u32 << 32 | slot + 1) (open addressing, 0 = empty)
    levels[slot,...]  market-by-price books (book.mbp)
    pend / pend_meta  reorder window: packets ahead of the next expected seq (A/B hole fill)
    ring / ring_meta  packets processed while some instrument is recovering, for replay
                      after its snapshot (notes/mdp3.md §5 "Snapshot alignment")
    flat, u8          the two flat arrays themselves (the MBO regions are carved from flat on
                      demand; cold functions take FeedMem(flat, u8) and carve their own views)
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from ..book.mbo import N_META, N_OCOLS, new_mbo
from ..book.mbp import EMPTY_PX, NFIELD, NSIDE, PX
from . import layout

FeedState = namedtuple("FeedState", "ctr tpl inst index levels pend pend_meta ring ring_meta flat u8")

# Instrument states (visible to the strategy through inst[slot, I_STATE]).
S_EMPTY = 0        # slot unused
S_SYNCED = 1       # book valid: every RptSeq since the last snapshot/start applied
S_STALE = 2        # channel lost packets (or a message was unreadable) since the last proof:
                   # do not quote; the next entry with RptSeq = last + 1 proves it good again
S_RECOVERING = 3   # RptSeq chain broken or unknown start: waiting for a snapshot
STATE_NAMES = ("empty", "synced", "stale", "recovering")

INST_COLS = ("secid", "state", "rpt", "depth", "implied_depth", "status", "updates", "last_seq",
             "min_px_inc", "display_factor", "recoveries", "mbo_state", "mbo_chunk", "mbo_chunk_lmsp")
(I_SECID, I_STATE, I_RPT, I_DEPTH, I_IDEPTH, I_STATUS, I_UPDATES, I_LAST_SEQ,
 I_MINPX, I_DISPLAY, I_RECOVERIES, I_MBO_STATE, I_MBO_CHUNK, I_MBO_CHUNK_LMSP) = range(len(INST_COLS))
N_INST_COLS = 16
# The book code picks a side's depth as inst[I_DEPTH + (side >> 1)] (sides 0/1 outright,
# 2/3 implied) with no branch: the two columns must stay adjacent.
assert I_IDEPTH == I_DEPTH + 1
# I_MBO_STATE: S_EMPTY until the instrument's first MBO entry or snapshot (so MBP-only
# channels never wait for MBO recovery); then S_SYNCED or S_RECOVERING (MBO entries
# carry no RptSeq, so after any loss only a 53 snapshot makes the order book whole).

COUNTERS = (
    # traffic
    "packets", "bytes", "messages", "entries", "snapshot_packets",
    # sequencing
    "duplicates", "reordered", "gaps", "lost_packets", "rpt_gaps", "stale_marks",
    "recoveries", "snapshots_applied", "snapshots_ignored", "snapshots_too_old", "replayed_packets",
    "replay_overflow", "seq_jumps_unconfirmed", "window_evicted",
    # drops by cause (bad input)
    "truncated_packet", "message_overrun", "block_overrun", "group_overrun", "schema_id_mismatch",
    "unknown_template", "short_entry", "bad_level", "bad_action", "bad_entry_type", "instrument_table_full",
    "unsupported_template_entries", "old_rpt_entries", "newer_version", "packet_too_big",
    "mbo_unknown_order", "mbo_duplicate_order", "mbo_table_full", "mbo_bad_chunk", "mbo_snapshots_applied",
    "mbo_bad_order_id",
    # book resets
    "book_resets", "channel_resets",
    # scalars (not counters)
    "next_seq", "last_lost_seq", "buffering", "ring_first_seq", "ring_head", "ring_count",
    "pend_count", "in_event", "start_synced", "n_inst", "last_seq", "schema_id", "schema_version",
    "default_depth", "replaying", "first_seq", "jump_seq", "jump_src",
    # the exact SBE headers of a CME-layout 46 and 48 (layout.fast_headers), stored
    # complemented: a zeroed word then stands for NO_HEADER, which no message matches
    "not_hdr46", "not_hdr48",
)
SCALARS_FROM = COUNTERS.index("next_seq")
for _i, _n in enumerate(COUNTERS):
    globals()["C_" + _n.upper()] = _i
N_CTR = len(COUNTERS)

SRC_A, SRC_B, SRC_SNAPSHOT = 0, 1, 2


# Header of the int64 block: where each region starts (in words) and its dimensions.
(H_CTR, H_TPL, H_INST, H_NINST, H_INDEX, H_HSIZE, H_LEVELS, H_DEPTH, H_PENDM, H_WINDOW, H_RINGM, H_RING,
 H_MAXPKT, H_PEND8, H_RING8, H_ORDERS, H_MAXO, H_OINDEX, H_OHSIZE, H_OFREE, H_OMETA) = range(21)
N_HEADER = 24
FeedMem = namedtuple("FeedMem", "i64 u8")


class Feed:
    """Python handle: ``mem`` (two flat arrays, what Numba code is given: passing a
    tuple of many arrays by value costs ~100 ns per call, notes/numba-hot-path.md §6)
    plus numpy views of every region for readers (no copies)."""

    def __init__(self, mem: FeedMem):
        self.mem = mem
        m, b = mem
        h = [int(x) for x in m[:N_HEADER]]
        n, depth, w, r, mp = h[H_NINST], h[H_DEPTH], h[H_WINDOW], h[H_RING], h[H_MAXPKT]
        self.ctr = m[h[H_CTR]:h[H_CTR] + N_CTR]
        self.tpl = m[h[H_TPL]:h[H_TPL] + layout.MAX_TEMPLATE * layout.NSLOT].reshape(layout.MAX_TEMPLATE, layout.NSLOT)
        self.inst = m[h[H_INST]:h[H_INST] + n * N_INST_COLS].reshape(n, N_INST_COLS)
        self.index = m[h[H_INDEX]:h[H_INDEX] + h[H_HSIZE]]
        self.levels = m[h[H_LEVELS]:h[H_LEVELS] + n * NSIDE * depth * NFIELD].reshape(n, NSIDE, depth, NFIELD)
        self.pend_meta = m[h[H_PENDM]:h[H_PENDM] + 2 * w].reshape(w, 2)
        self.ring_meta = m[h[H_RINGM]:h[H_RINGM] + 2 * r].reshape(r, 2)
        self.pend = b[h[H_PEND8]:h[H_PEND8] + w * mp].reshape(w, mp)
        self.ring = b[h[H_RING8]:h[H_RING8] + r * mp].reshape(r, mp)
        mo = h[H_MAXO]
        self.orders = m[h[H_ORDERS]:h[H_ORDERS] + mo * N_OCOLS].reshape(mo, N_OCOLS)
        self.oindex = m[h[H_OINDEX]:h[H_OINDEX] + h[H_OHSIZE]]
        self.ofree = m[h[H_OFREE]:h[H_OFREE] + mo]
        self.ometa = m[h[H_OMETA]:h[H_OMETA] + N_META]


def new_feed_state(schema, max_instruments=256, depth=10, window=16, ring_packets=4096,
                   max_packet=1500, max_orders=1024) -> Feed:
    """Allocate a handler state for ``schema`` (a tickwire.sbe.Schema).

    depth: rows per book side (CME outright books are 10 deep; 54's MarketDepth may
    lower it per instrument). window: packets held for A/B hole fill before a gap is
    declared. ring_packets: incrementals kept for replay during recovery. max_orders:
    resting orders across all MBO books.
    """
    if max_instruments < 1 or depth < 1 or window < 1 or ring_packets < 1 or max_packet < 64 or max_orders < 1:
        raise ValueError("feed state sizes must be positive (max_packet >= 64)")
    if max_instruments > 1 << 29:
        raise ValueError("max_instruments above 2**29: the instrument index must stay below 2**31 slots")
    hsize = 1
    while hsize < 2 * max_instruments:
        hsize <<= 1
    ohsize = 1
    while ohsize < 2 * max_orders:
        ohsize <<= 1
    sizes = [(H_CTR, N_CTR), (H_TPL, layout.MAX_TEMPLATE * layout.NSLOT), (H_INST, max_instruments * N_INST_COLS),
             (H_INDEX, hsize), (H_LEVELS, max_instruments * NSIDE * depth * NFIELD), (H_PENDM, 2 * window),
             (H_RINGM, 2 * ring_packets), (H_ORDERS, max_orders * N_OCOLS), (H_OINDEX, ohsize),
             (H_OFREE, max_orders), (H_OMETA, N_META)]
    head = np.zeros(N_HEADER, np.int64)
    pos = N_HEADER
    for slot, n in sizes:
        pos = (pos + 7) & ~7            # 64-byte aligned regions
        head[slot] = pos
        pos += n
    head[H_NINST], head[H_HSIZE], head[H_DEPTH] = max_instruments, hsize, depth
    head[H_WINDOW], head[H_RING], head[H_MAXPKT] = window, ring_packets, max_packet
    head[H_MAXO], head[H_OHSIZE] = max_orders, ohsize
    head[H_PEND8] = 0
    head[H_RING8] = ((window * max_packet + 63) // 64) * 64
    m = np.zeros(pos, np.int64)
    m[:N_HEADER] = head
    b = np.zeros(int(head[H_RING8]) + ring_packets * max_packet, np.uint8)
    f = Feed(FeedMem(m, b))
    f.ctr[C_SCHEMA_ID] = schema.id
    f.ctr[C_SCHEMA_VERSION] = schema.version
    f.ctr[C_DEFAULT_DEPTH] = depth
    f.ctr[C_LAST_LOST_SEQ] = -1
    f.tpl[:] = layout.build(schema)
    f.ctr[C_NOT_HDR46], f.ctr[C_NOT_HDR48] = (~w for w in layout.fast_headers(schema, f.tpl))
    f.levels[:, :, :, PX] = EMPTY_PX
    f.pend_meta[:] = -1
    orders, _, free, meta = new_mbo(max_orders)
    f.orders[:] = orders
    f.ofree[:] = free
    f.ometa[:] = meta
    return f


def counters(st: FeedState) -> dict:
    return {n: int(st.ctr[i]) for i, n in enumerate(COUNTERS[:SCALARS_FROM])}


def slot_of(st: FeedState, secid: int) -> int:
    n = int(st.ctr[C_N_INST])
    hits = np.nonzero(st.inst[:n, I_SECID] == secid)[0]
    return int(hits[0]) if len(hits) else -1

"""Schema -> the int64 table the MDP 3.0 handler reads offsets from.

The handler (feed.handler) is one compiled function for every schema version: it
does not hard-code offsets, it reads them from ``tpl[templateId, slot]``, built here
by field *name* from the user's schema (CME v9-v13 or tickwire's subset). A field the
schema lacks is -1. The table is a few KB and stays in L1, so a lookup costs one load.

Templates are classified by id, as CME numbers them (notes/mdp3.md §3); any other
template whose first group has SecurityID and RptSeq only advances RptSeq, and an
unsupported *book* template (e.g. BookLongQty64) marks its instruments for recovery
instead of leaving their books silently wrong.
"""

from __future__ import annotations

import numpy as np

from ..sbe.schema import Composite, Enum, Schema, Set, Type

MAX_TEMPLATE = 128     # CME ids are < 100; ids at or above this count as unknown

# kinds
(K_UNKNOWN, K_IGNORE, K_BOOK, K_TRADE, K_RPT_ONLY, K_RPT_BREAK, K_SNAP, K_STATUS, K_RESET, K_DEF,
 K_MBO, K_SNAP_MBO) = range(12)
KIND_NAMES = ("unknown", "ignore", "book", "trade", "rpt_only", "rpt_break", "snapshot", "status", "reset",
              "definition", "mbo", "snapshot_mbo")

# slots
T_KIND, T_NGRP, T_TARGET, T_RNEED, T_ENEED = range(5)
T_GRP = 5              # 4 groups x (header size, numInGroup offset, numInGroup width, blockLength width)
MAX_GROUPS = 4
R_ = T_GRP + 4 * MAX_GROUPS          # root field offsets
R_MEI, R_SECID, R_RPT, R_LMSP, R_STATUS, R_MINPX, R_DISPLAY, R_NCHUNKS, R_CHUNK = range(R_, R_ + 9)
E_ = R_ + 10                         # entry field offsets (target group)
(E_PX, E_SIZE, E_SECID, E_RPT, E_NORD, E_LEVEL, E_ACTION, E_TYPE, E_ORDERID, E_PRIO,
 E_FEEDTYPE, E_DEPTH) = range(E_, E_ + 12)
NSLOT = E_ + 12
T_STD46 = R_ + 9       # (the spare root slot) 1: a book template laid out as CME's 46 (STD46
                       # below), read with constant offsets (decided here once, not per message)
assert T_STD46 < E_

# MDIncrementalRefreshBook46's NoMDEntries in CME MDP 3.0 v9-v13 (and tickwire's subset):
# MDEntryPx 0, MDEntrySize 8, SecurityID 12, RptSeq 16, NumberOfOrders 20, MDPriceLevel 24,
# MDUpdateAction 25, MDEntryType 26 (notes/mdp3.md §3), behind a groupSize dimension
# (blockLength u16 at 0, numInGroup u8 at 2: 3 bytes).
STD46 = (0, 8, 12, 16, 20, 24, 25, 26)
STD46_GROUP = (3, 2, 1)                 # dimension size, numInGroup offset, numInGroup width
STD46_ENEED = 27                        # bytes of an entry the handler reads (MDEntryType + 1)
# MDIncrementalRefreshTradeSummary48's NoMDEntries in CME MDP 3.0 v9-v13 (and the subset): the
# same groupSize dimension, SecurityID at 12, RptSeq at 16 (the two fields the handler reads);
# the entry must be as long as the general walk demands (T_ENEED: up to MDUpdateAction at 25).
STD48 = (12, 16)
STD48_ENEED = 26
# Both CME templates carry MatchEventIndicator at offset 8 of the root block (after TransactTime).
STD_MEI = 8

# field name -> (slot, allowed encoded sizes)
_ROOT = {"MatchEventIndicator": (R_MEI, (1,)), "SecurityID": (R_SECID, (4,)), "RptSeq": (R_RPT, (4,)),
         "LastMsgSeqNumProcessed": (R_LMSP, (4,)), "SecurityTradingStatus": (R_STATUS, (1,)),
         "MinPriceIncrement": (R_MINPX, (8,)), "DisplayFactor": (R_DISPLAY, (8,)),
         "NoChunks": (R_NCHUNKS, (4,)), "CurrentChunk": (R_CHUNK, (4,))}
_ENTRY = {"MDEntryPx": (E_PX, (8,)), "MDEntrySize": (E_SIZE, (4,)), "MDDisplayQty": (E_SIZE, (4,)),
          "SecurityID": (E_SECID, (4,)), "RptSeq": (E_RPT, (4,)), "NumberOfOrders": (E_NORD, (4,)),
          "MDPriceLevel": (E_LEVEL, (1,)), "MDUpdateAction": (E_ACTION, (1,)), "MDEntryType": (E_TYPE, (1,)),
          "OrderID": (E_ORDERID, (8,)), "MDOrderPriority": (E_PRIO, (8,)), "MDFeedType": (E_FEEDTYPE, (3,)),
          "MarketDepth": (E_DEPTH, (1,))}

_KIND_BY_ID = {46: K_BOOK, 47: K_MBO, 48: K_TRADE, 52: K_SNAP, 53: K_SNAP_MBO, 30: K_STATUS, 4: K_RESET,
               12: K_IGNORE, 15: K_IGNORE, 16: K_IGNORE}
_REQUIRED = {K_BOOK: (E_PX, E_SIZE, E_SECID, E_RPT, E_LEVEL, E_ACTION, E_TYPE),
             K_TRADE: (E_SECID, E_RPT), K_RPT_ONLY: (E_SECID, E_RPT), K_RPT_BREAK: (E_SECID,),
             K_SNAP: (R_LMSP, R_SECID, R_RPT, E_PX, E_SIZE, E_LEVEL, E_TYPE),
             K_STATUS: (R_SECID, R_STATUS), K_RESET: (), K_DEF: (R_SECID,),
             K_MBO: (E_ORDERID, E_PRIO, E_PX, E_SIZE, E_SECID, E_ACTION, E_TYPE),
             K_SNAP_MBO: (R_LMSP, R_SECID, E_ORDERID, E_PRIO, E_PX, E_SIZE, E_TYPE)}


def _enc_size(enc) -> int:
    if isinstance(enc, Composite):  # price composites: the mantissa is what we read
        m, _ = enc.member("mantissa")
        return m.size if m is not None else enc.size
    return enc.size


def _fill(row, fields, table, where):
    need = 0
    for f in fields:
        if f.name not in table or f.constant is not None:
            continue
        slot, sizes = table[f.name]
        size = _enc_size(f.encoding)
        if size not in sizes:
            # e.g. the LongQty templates (64-69) carry 8-byte sizes: leave the field absent;
            # a template that needs it is demoted below (recovery, never a misread).
            continue
        if isinstance(f.encoding, Composite):
            m, moff = f.encoding.member("mantissa")
            off = f.offset + (moff or 0)
        else:
            off = f.offset
        row[slot] = off
        need = max(need, off + size)
    return need


def _dimension(g):
    bl_t, bl_o = g.dimension.member("blockLength")
    n_t, n_o = g.dimension.member("numInGroup")
    if bl_o != 0 or bl_t.size != 2 or n_t.size not in (1, 2):
        raise ValueError(f"group {g.name}: dimension {g.dimension.name} is not blockLength u16 + numInGroup u8/u16")
    return g.dimension.size, n_o, n_t.size


def build(schema: Schema) -> np.ndarray:
    tpl = np.full((MAX_TEMPLATE, NSLOT), -1, np.int64)
    tpl[:, T_KIND] = K_UNKNOWN
    for tid, msg in schema.messages.items():
        if tid >= MAX_TEMPLATE:
            continue
        row = tpl[tid]
        names = {f.name for g in msg.groups[:1] for f in g.fields}
        kind = _KIND_BY_ID.get(tid)
        if kind is None:
            if msg.name.startswith("MDInstrumentDefinition"):
                kind = K_DEF
            elif "SecurityID" in names and "RptSeq" in names:
                kind = K_RPT_BREAK if "Book" in msg.name else K_RPT_ONLY
            else:
                kind = K_IGNORE
        target = 0
        if kind == K_DEF:
            target = next((i for i, g in enumerate(msg.groups) if g.name == "NoMDFeedTypes"), -1)
        if target >= MAX_GROUPS:
            target = -1
        row[T_KIND] = kind
        row[T_TARGET] = target
        ngrp = min(len(msg.groups), target + 1 if target >= 0 else 0)
        if kind not in (K_DEF, K_IGNORE, K_STATUS, K_RESET):
            ngrp = min(1, len(msg.groups))
        row[T_NGRP] = ngrp
        for i in range(ngrp):
            hs, noff, nw = _dimension(msg.groups[i])
            row[T_GRP + 4 * i: T_GRP + 4 * i + 3] = (hs, noff, nw)
        row[T_RNEED] = _fill(row, msg.fields, _ROOT, msg.name)
        row[T_ENEED] = _fill(row, msg.groups[target].fields, _ENTRY, msg.name) if ngrp > target >= 0 else 0
        missing = [s for s in _REQUIRED.get(kind, ()) if row[s] < 0]
        if kind in (K_BOOK, K_TRADE, K_RPT_ONLY, K_RPT_BREAK, K_SNAP, K_MBO, K_SNAP_MBO) and ngrp < 1:
            missing.append(-1)
        if missing:
            # A template we cannot read safely: treat as unknown (counted) rather than guess.
            row[:] = -1
            row[T_KIND] = K_UNKNOWN if kind not in (K_BOOK, K_MBO) else K_RPT_BREAK
            if row[T_KIND] == K_RPT_BREAK and msg.groups:
                hs, noff, nw = _dimension(msg.groups[0])
                row[T_NGRP] = 1
                row[T_GRP:T_GRP + 3] = (hs, noff, nw)
                row[T_RNEED] = 0
                row[T_ENEED] = _fill(row, [f for f in msg.groups[0].fields if f.name == "SecurityID"], _ENTRY, msg.name)
                if row[E_SECID] < 0:
                    row[T_KIND] = K_UNKNOWN
        row[T_STD46] = int(row[T_KIND] == K_BOOK and tuple(row[E_PX:E_TYPE + 1]) == STD46
                           and tuple(row[T_GRP:T_GRP + 3]) == STD46_GROUP and row[T_ENEED] == STD46_ENEED)
    return tpl


def describe(tpl: np.ndarray) -> dict:
    return {tid: KIND_NAMES[int(tpl[tid, T_KIND])] for tid in range(MAX_TEMPLATE) if tpl[tid, T_KIND] != K_UNKNOWN}


def header_word(block_len: int, tid: int, schema_id: int, version: int) -> int:
    """The SBE message header (blockLength, templateId, schemaId, version: u16 each, little
    endian, notes/mdp3.md §1) as the int64 one 8-byte little-endian load of it gives."""
    w = block_len | tid << 16 | schema_id << 32 | version << 48
    return w - (1 << 64) if w >= 1 << 63 else w


# A header word no message header can equal once it has passed the framing checks: its
# blockLength 0xFFFF does not fit in a message (MsgSize is a u16 and counts itself and the header).
NO_HEADER = header_word(0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF)


def fast_headers(schema: Schema, tpl: np.ndarray) -> tuple:
    """(book46, trade48): the exact message header of a current-version 46 laid out as CME's
    (T_STD46, MatchEventIndicator at STD_MEI) and of a 48 laid out as CME's (STD46_GROUP
    dimension, STD48 entry offsets, MatchEventIndicator at STD_MEI), or NO_HEADER where the
    schema's template is not laid out so. A message whose 8 header bytes equal one of these
    has passed every header check of the fast path at once: the schema id, the template
    (known, of its kind), the version (not newer) and the root block long enough for the
    fields read (feed.fastpath)."""
    words = []
    for tid, ok in ((46, lambda r: r[T_STD46] == 1),
                    (48, lambda r: (r[T_KIND] == K_TRADE and tuple(r[T_GRP:T_GRP + 3]) == STD46_GROUP
                                    and (r[E_SECID], r[E_RPT]) == STD48 and r[T_ENEED] == STD48_ENEED))):
        msg = schema.messages.get(tid)
        row = tpl[tid]
        if (msg is None or not ok(row) or row[R_MEI] != STD_MEI or not row[T_RNEED] <= msg.block_length < 0xFFFF
                or not (0 <= schema.id < 0x10000 and 0 <= schema.version < 0x10000)):
            words.append(NO_HEADER)
        else:
            words.append(header_word(msg.block_length, tid, schema.id, schema.version))
    return tuple(words)

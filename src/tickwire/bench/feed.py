"""MDP 3.0 decode + book update, messages/s per core, beside sbedecoder and a struct decoder.

One recorded stream (synthetic MDP 3.0 incrementals encoded from tickwire's schema:
46 book updates with every update action, 48 trade summaries; 1-3 messages per packet,
1-4 entries per message) is run through:
  * tickwire ``feed_run``: the compiled handler over the recorded batch (region views built
    once per batch; per packet: bounds, sequencing, decode, RptSeq checks, book update);
  * tickwire ``feed_input``: the same handler called once per packet from a Numba loop,
    views rebuilt per packet - the engine's path;
  * sbedecoder: decode only (the fields below read as raw values), no book;
  * struct: a hand-written ``struct.unpack_from`` decoder plus the same positional book
    update in plain Python (lists).

READS - the fields the tickwire handler reads to build the book from this stream; both
competitors read exactly these, no more (a decoder that skipped some would be timed on
less work, one that read more on more):
  * per packet: MsgSeqNum (SendingTime is not read);
  * per message: MsgSize, blockLength, templateId, schemaId, version, MatchEventIndicator
    (TransactTime is not read); the NoMDEntries group's blockLength and numInGroup;
  * per 46 entry: MDEntryPx (mantissa), MDEntrySize, SecurityID, RptSeq, NumberOfOrders,
    MDPriceLevel, MDUpdateAction, MDEntryType;
  * per 48 entry: SecurityID, RptSeq (a trade advances RptSeq; the MBP book is untouched).
sbedecoder reads MsgSize, templateId, version and the group dimension itself while framing,
so its contender adds the rest; it has no packet-header decoder, so MsgSeqNum is one struct read.
Each is timed ``--repeat`` times; medians are reported, with ratios tickwire/competitor,
and both of the issue's targets (>= 20 M msgs/s/core, >= 500x sbedecoder) are judged
separately: 500x sbedecoder is a different bar from 20 M on every machine (on the dev VM
sbedecoder decodes ~60-66 k msgs/s of this stream, so 500x of it is ~30-33 M msgs/s; the
bench prints the figure measured in the same run).
The VM is a shared 2-core box with other engineers compiling: numbers are noisy.
"""

from __future__ import annotations

import json
import os
import statistics
import struct
import time

import numpy as np

from ..cli._common import at_least
from ..feed import handler
from ..book.mbp import EMPTY_PX
from ..feed.state import C_MESSAGES, new_feed_state, slot_of
from ..feed.synth import StreamGen
from ..sbe import builtin_path, load
from ..sbe.codec import Codec


def add_arguments(p):
    p.add_argument("--packets", type=at_least(1), default=20000, help="packets in the recorded stream (default 20000)")
    p.add_argument("--repeat", type=at_least(1), default=5, help="timed runs per decoder (median reported)")
    p.add_argument("--sbedecoder-packets", type=at_least(1), default=3000,
                   help="packets given to sbedecoder (it is slow; rate is per message either way)")
    p.add_argument("--schema", default=None, help="schema XML (default: tickwire's MDP 3.0 subset)")
    p.add_argument("--profile", choices=("top", "uniform"), default="top",
                   help="stream shape: 'top' = mostly Changes near the top of book (default), "
                        "'uniform' = uniformly random levels/actions (worst case for the book)")


def run_stream(mem, buf, offs, lens, reps, per_packet=False):
    # handler.feed_run/feed_each live beside feed_input, so their Numba cache is invalidated
    # with it (a caller in another module would keep a stale inlined copy, notes §6).
    fn = handler.feed_each if per_packet else handler.feed_run
    for _ in range(reps):
        fn(mem, buf, offs, lens, 0)
    return reps


def _count_messages(payloads):
    n = e = 0
    for p in payloads:
        off = 12
        while off < len(p):
            size = struct.unpack_from("<H", p, off)[0]
            tid = struct.unpack_from("<H", p, off + 4)[0]
            n += 1
            if tid in (46, 48):
                e += p[off + 2 + 8 + 11 + 2]
            off += size
    return n, e


def _struct_decoder(payloads, depth):
    """Hand-written decoder for 46/48 + positional book in Python lists. It reads the
    fields the tickwire handler reads (READS), no more."""
    seq_num = struct.Struct("<I")
    hdr = struct.Struct("<HHHHH")         # MsgSize, blockLength, templateId, schemaId, version
    grp = struct.Struct("<HB")
    ent46 = struct.Struct("<qiiIiBBc")    # px, size, secid, rpt, norders, level, action, type
    ent48 = struct.Struct("<iI")          # secid, rpt (at +12)
    books, rpts = {}, {}
    acc = 0
    for p in payloads:
        acc += seq_num.unpack_from(p, 0)[0]
        off = 12
        end = len(p)
        while off < end:
            size, bl, tid, schema_id, version = hdr.unpack_from(p, off)
            acc += p[off + 10 + 8] + schema_id + version          # MatchEventIndicator (46/48: +8)
            g = off + 10 + bl
            entry_len, count = grp.unpack_from(p, g)
            e = g + 3
            if tid == 46:
                for _ in range(count):
                    px, qty, secid, rpt, nord, level, action, etype = ent46.unpack_from(p, e)
                    rpts[secid] = rpt
                    book = books.get(secid)
                    if book is None:
                        book = books[secid] = {b"0": [None] * depth, b"1": [None] * depth,
                                               b"E": [None] * 2, b"F": [None] * 2}
                    side = book.get(etype)
                    if side is not None:
                        n = len(side)
                        if action == 0:
                            side.insert(level - 1, (px, qty, nord))
                            del side[n:]
                        elif action == 2:
                            del side[level - 1]
                            side.append(None)
                        elif action == 3:
                            side[:] = [None] * n
                        elif action == 4:
                            del side[:level]
                            side.extend([None] * (n - len(side)))
                        else:
                            side[level - 1] = (px, qty, nord)
                    e += entry_len
            elif tid == 48:
                for _ in range(count):
                    secid, rpt = ent48.unpack_from(p, e + 12)
                    rpts[secid] = rpt
                    e += entry_len
            off += size
    return books


def _check_books(feed, books):
    """The timed tickwire run must end with the books the struct decoder builds
    independently (same stream, same positional rules): a benchmark of wrong work is void."""
    for secid, book in books.items():
        slot = slot_of(feed, secid)
        if slot < 0:
            raise RuntimeError(f"tickwire has no book for SecurityID {secid}")
        for side, rows in enumerate((book[b"0"], book[b"1"], book[b"E"], book[b"F"])):
            for i, row in enumerate(rows):
                got = tuple(int(x) for x in feed.levels[slot, side, i])
                want = row if row is not None else (EMPTY_PX, 0, 0)
                if got != tuple(want):
                    raise RuntimeError(f"SecurityID {secid} side {side} row {i}: tickwire {got}, struct {want}")


def _sbedecoder(payloads, schema_path):
    from sbedecoder import MDPMessageFactory, MDPSchema, SBEParser
    s = MDPSchema()
    s.parse(schema_path)
    parser = SBEParser(MDPMessageFactory(s))
    seq_num = struct.Struct("<I")
    BOOK46 = "MDIncrementalRefreshBook46"

    def run():
        # Exactly the fields the tickwire handler reads to build the book (module
        # docstring, READS): sbedecoder reads MsgSize, templateId, version and the group
        # dimension itself while framing; it has no packet-header decoder, so MsgSeqNum
        # is one struct read.
        acc = 0
        for p in payloads:
            acc += seq_num.unpack_from(p, 0)[0]
            for m in parser.parse(p, offset=12):
                acc += m.block_length.raw_value + m.schema_id.raw_value + m.match_event_indicator.raw_value
                if m.name == BOOK46:          # the class sbedecoder picked from templateId
                    for e in m.no_md_entries.repeating_groups:
                        acc += e.md_entry_px.mantissa.raw_value + e.md_entry_size.raw_value + e.security_id.raw_value
                        acc += e.rpt_seq.raw_value + e.number_of_orders.raw_value + e.md_price_level.raw_value
                        acc += e.md_update_action.raw_value + ord(e.md_entry_type.raw_value)
                else:                       # 48: RptSeq only advances, the book is untouched
                    for e in m.no_md_entries.repeating_groups:
                        acc += e.security_id.raw_value + e.rpt_seq.raw_value
        return acc
    return run


def _time(fn, repeat):
    out = []
    for _ in range(repeat):
        t = time.thread_time()
        fn()
        out.append(time.thread_time() - t)
    return statistics.median(out), out


def run(args) -> int:
    schema_path = args.schema or builtin_path()
    schema = load(schema_path)
    codec = Codec(schema)
    gen = StreamGen(codec, [1001, 1002, 1003, 1004, 1005, 1006, 1007, 1008], depth=10, seed=42, resets=False,
                    profile=args.profile)
    payloads = gen.packets(args.packets)
    n_msgs, n_entries = _count_messages(payloads)
    lens = np.array([len(p) for p in payloads], np.int64)
    offs = np.zeros(len(payloads), np.int64)
    offs[1:] = np.cumsum(lens)[:-1]
    buf = np.frombuffer(b"".join(payloads), np.uint8).copy()

    def make_state():
        return new_feed_state(schema, max_instruments=64, depth=10, window=16, ring_packets=64)

    reps = max(1, 2_000_000 // max(1, n_msgs))   # ~2 M messages per timed run
    ref_books = _struct_decoder(payloads, 10)

    def time_tickwire(per_packet):
        st = make_state()
        run_stream(st.mem, buf, offs, lens, 1, per_packet)   # compile (or load from cache) and warm
        if st.ctr[C_MESSAGES] != n_msgs:
            raise RuntimeError(f"handler saw {st.ctr[C_MESSAGES]} messages, stream has {n_msgs}")
        _check_books(st, ref_books)
        # A second pass over the same stream would be all duplicates, so every pass gets a
        # fresh state, allocated before the clock starts.
        runs = []
        for _ in range(args.repeat):
            states = [make_state().mem for _ in range(reps)]
            t = time.thread_time()
            for s in states:
                run_stream(s, buf, offs, lens, 1, per_packet)
            runs.append(time.thread_time() - t)
        return statistics.median(runs), runs

    t_tw, all_tw = time_tickwire(False)
    tw_rate = n_msgs * reps / t_tw
    t_each, all_each = time_tickwire(True)
    each_rate = n_msgs * reps / t_each

    sub = payloads[:args.sbedecoder_packets]
    sub_msgs, _ = _count_messages(sub)
    t_sbe, all_sbe = _time(_sbedecoder(sub, schema_path), args.repeat)
    sbe_rate = sub_msgs / t_sbe
    t_st, all_st = _time(lambda: _struct_decoder(payloads, 10), args.repeat)
    st_rate = n_msgs / t_st

    target_rate, target_ratio = 20e6, 500.0
    result = {
        "stream": {"packets": len(payloads), "messages": n_msgs, "entries": n_entries,
                   "bytes": int(buf.size), "profile": args.profile},
        "tickwire_msgs_per_s": tw_rate, "tickwire_entries_per_s": n_entries * reps / t_tw,
        "tickwire_per_packet_msgs_per_s": each_rate,
        "sbedecoder_msgs_per_s": sbe_rate, "struct_msgs_per_s": st_rate,
        "ratio_vs_sbedecoder": tw_rate / sbe_rate, "ratio_vs_struct": tw_rate / st_rate,
        "per_packet_ratio_vs_sbedecoder": each_rate / sbe_rate,
        "target": {"msgs_per_s": target_rate, "ratio_vs_sbedecoder": target_ratio,
                   "msgs_per_s_met": tw_rate >= target_rate,
                   "ratio_met": tw_rate / sbe_rate >= target_ratio,
                   "msgs_per_s_for_500x_sbedecoder": target_ratio * sbe_rate},
        "repeat": args.repeat,
        "runs_s": {"tickwire": all_tw, "tickwire_per_packet": all_each, "sbedecoder": all_sbe, "struct": all_st},
        "what": {"tickwire": "feed_run over the batch: per packet bounds/seq/A-B check, decode, RptSeq, book update",
                 "tickwire_per_packet": "feed_input called per packet from a Numba loop (the engine's path)",
                 "sbedecoder": "decode only, the fields tickwire reads (READS in the module docstring), no book",
                 "struct": "struct.unpack_from decode of the same fields + positional book in Python lists"},
        "note": "shared 2-vCPU VM with concurrent compiles/tests: noisy; single core, no pinning; "
                "times are this thread's CPU time (time.thread_time), so waiting for a CPU is not counted",
        "loadavg": list(os.getloadavg()),
        "cpu_count": os.cpu_count(),
    }
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"stream: {len(payloads)} packets, {n_msgs} messages, {n_entries} entries "
          f"(synthetic MDP 3.0, 46/48, profile {args.profile})")
    print(f"{'decoder':<22}{'msgs/s':>14}{'x struct':>10}{'x sbedecoder':>14}   what")
    rows = (("tickwire feed_run", tw_rate, "tickwire"), ("tickwire feed_input", each_rate, "tickwire_per_packet"),
            ("struct", st_rate, "struct"), ("sbedecoder", sbe_rate, "sbedecoder"))
    for name, rate, key in rows:
        print(f"{name:<22}{rate:>14,.0f}{rate / st_rate:>10.1f}{rate / sbe_rate:>14.1f}   {result['what'][key]}")
    tg = result["target"]
    print(f"target >= 20 M msgs/s/core: {'met' if tg['msgs_per_s_met'] else 'NOT met'} ({tw_rate / 1e6:.1f} M); "
          f">= 500x sbedecoder: {'met' if tg['ratio_met'] else 'NOT met'} ({tw_rate / sbe_rate:.0f}x; 500x of the "
          f"sbedecoder measured here is {tg['msgs_per_s_for_500x_sbedecoder'] / 1e6:.1f} M msgs/s)")
    la = result["loadavg"]
    print(f"medians of {args.repeat} runs; load average {la[0]:.2f} {la[1]:.2f} {la[2]:.2f}; {result['note']}")
    return 0

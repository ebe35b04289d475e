"""The feed benchmark's sbedecoder contender reads the fields the tickwire handler reads
(bench/feed.py READS): its checksum over a stream equals one computed here with plain
struct reads of exactly those fields. The struct contender builds the same books as the
sbedecoder-independent handler does (the bench also checks this before timing)."""

from __future__ import annotations

import struct

import numpy as np
import sbedecoder  # noqa: F401  (a required peer: fail, never skip, when it is missing)

from tickwire.bench import feed as bench
from tickwire.feed import handler
from tickwire.feed.state import SRC_A, new_feed_state
from tickwire.feed.synth import StreamGen
from tickwire.sbe import builtin_path, load
from tickwire.sbe.codec import Codec

SCHEMA = load(builtin_path())


def _payloads(n=300):
    return StreamGen(Codec(SCHEMA), [5, 6, 7], depth=10, seed=3, resets=False, profile="uniform").packets(n)


def _reads_checksum(payloads):
    acc = 0
    for p in payloads:
        acc += struct.unpack_from("<I", p, 0)[0]                       # MsgSeqNum
        off = 12
        while off < len(p):
            size, bl, tid, schema_id, _version = struct.unpack_from("<HHHHH", p, off)
            body = off + 10
            acc += bl + schema_id + p[body + 8]                         # MatchEventIndicator at 8 (46, 48)
            entry_len, count = struct.unpack_from("<HB", p, body + bl)
            e = body + bl + 3
            for _ in range(count):
                if tid == 46:
                    acc += sum(struct.unpack_from("<qiiIiBBB", p, e))   # px size secid rpt norders level action type
                else:
                    acc += sum(struct.unpack_from("<iI", p, e + 12))    # secid rpt
                e += entry_len
            off += size
    return acc


def test_sbedecoder_contender_reads_the_handlers_fields():
    payloads = _payloads()
    assert bench._sbedecoder(payloads, builtin_path())() == _reads_checksum(payloads)


def test_struct_contender_books_equal_the_handlers():
    payloads = _payloads()
    st = new_feed_state(SCHEMA, max_instruments=8, depth=10, window=4, ring_packets=16)
    for p in payloads:
        handler.feed_input(st.mem, np.frombuffer(p, np.uint8), 0, len(p), SRC_A)
    bench._check_books(st, bench._struct_decoder(payloads, 10))

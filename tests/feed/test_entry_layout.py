"""The handler has two copies of the 46 entry loop (feed.handler.on_book): offsets as
constants when the schema puts the entry fields where CME's 46 has them (tickwire's
subset does), offsets from the schema otherwise. The same stream encoded with a schema
whose 46 entries are laid out differently must give the same books and counters."""

from __future__ import annotations

import numpy as np

from tickwire.feed import handler
from tickwire.feed.state import SRC_A, counters, new_feed_state
from tickwire.feed.synth import StreamGen
from tickwire.sbe import builtin_path, load, parse
from tickwire.sbe.codec import Codec

STD_XML = open(builtin_path()).read()
# 46's NoMDEntries with a 4-byte field first: every entry field moves by 4, blockLength 36.
_GROUP = STD_XML[STD_XML.index('<sbe:message name="MDIncrementalRefreshBook46"'):]
_GROUP = _GROUP[_GROUP.index('<group name="NoMDEntries"'):_GROUP.index("</group>")]


def _shifted(group: str) -> str:
    out = group.replace('blockLength="32"', 'blockLength="36"', 1)
    lines = []
    for line in out.splitlines():
        if 'offset="' in line and "<field" in line:
            a = line.index('offset="') + len('offset="')
            b = line.index('"', a)
            line = line[:a] + str(int(line[a:b]) + 4) + line[b:]
        lines.append(line)
    first = lines[0] + '\n      <field name="Pad4" id="9999" type="uInt32NULL" offset="0"/>'
    return "\n".join([first] + lines[1:])


SHIFTED_XML = STD_XML.replace(_GROUP, _shifted(_GROUP), 1)


def _run(schema, seed):
    gen = StreamGen(Codec(schema), [11, 12, 13, 14], depth=5, seed=seed, profile="uniform")
    st = new_feed_state(schema, max_instruments=8, depth=5, window=4, ring_packets=16)
    for payload in gen.packets(400):
        handler.feed_input(st.mem, np.frombuffer(payload, np.uint8), 0, len(payload), SRC_A)
    return st


def test_other_entry_layout_builds_the_same_books():
    assert SHIFTED_XML != STD_XML and 'name="Pad4"' in SHIFTED_XML
    std, shifted = load(builtin_path()), parse(SHIFTED_XML)
    for seed in (1, 2):
        a, b = _run(std, seed), _run(shifted, seed)
        ca, cb = counters(a), counters(b)
        assert ca["entries"] > 500 and ca["bad_level"] + ca["bad_action"] + ca["short_entry"] == 0, ca
        assert cb.pop("bytes") > ca.pop("bytes")      # the shifted entries are 4 bytes longer
        assert ca == cb
        assert np.array_equal(a.levels, b.levels)
        assert np.array_equal(a.inst, b.inst)

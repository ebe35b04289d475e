"""Generated Numba codecs: byte-identical to the Python face's encoder, and their
readers agree with it on every field, called from inside a Numba function."""

from __future__ import annotations

import numpy as np
from numba import njit

from tickwire.feed.mdp3 import decode_packet
from tickwire.feed.synth import StreamGen
from tickwire.sbe import builtin_path, load
from tickwire.sbe.codec import Codec
from tickwire.sbe.codegen import compile_schema, source

SCHEMA = load(builtin_path())
CODEC = Codec(SCHEMA)
G = compile_schema(SCHEMA)


def test_generated_source_is_stable_and_cached(tmp_path, monkeypatch):
    assert source(SCHEMA) == source(load(builtin_path()))
    monkeypatch.setenv("TICKWIRE_CACHE_DIR", str(tmp_path))
    mod = compile_schema(SCHEMA)
    assert mod.MDIncrementalRefreshBook46_TEMPLATE_ID == 46 and mod.SCHEMA_VERSION == 13


@njit
def encode_book(buf, off, rows):
    # A simulator-style publisher: header + root, group header, entries, empty order group.
    off = G.MDIncrementalRefreshBook46_encode(buf, off, 123456789, 0x80)
    off = G.MDIncrementalRefreshBook46_NoMDEntries_encode_header(buf, off, rows.shape[0])
    for i in range(rows.shape[0]):
        off = G.MDIncrementalRefreshBook46_NoMDEntries_encode(
            buf, off, rows[i, 0], rows[i, 1], rows[i, 2], rows[i, 3], rows[i, 4], rows[i, 5], rows[i, 6],
            rows[i, 7], 2147483647)
    off = G.MDIncrementalRefreshBook46_NoOrderIDEntries_encode_header(buf, off, 1)
    off = G.MDIncrementalRefreshBook46_NoOrderIDEntries_encode(buf, off, -1, -1, 7, 1, 0)
    return off


def test_numba_encoder_matches_python_encoder_byte_for_byte():
    rows = np.array([[4_512_250_000_000, 10, 7, 1, 3, 1, 0, ord("0")],
                     [-5, 2147483647, -2, 4294967295, 1, 10, 5, ord("F")]], np.int64)
    buf = np.zeros(256, np.uint8)
    end = encode_book(buf, 0, rows)
    py = CODEC.encode(46, {"TransactTime": 123456789, "MatchEventIndicator": ["EndOfEvent"], "NoMDEntries": [
        {"MDEntryPx": {"mantissa": 4_512_250_000_000}, "MDEntrySize": 10, "SecurityID": 7, "RptSeq": 1,
         "NumberOfOrders": 3, "MDPriceLevel": 1, "MDUpdateAction": "New", "MDEntryType": "Bid",
         "TradeableSize": None},
        {"MDEntryPx": {"mantissa": -5}, "MDEntrySize": None, "SecurityID": -2, "RptSeq": 4294967295,
         "NumberOfOrders": 1, "MDPriceLevel": 10, "MDUpdateAction": "Overlay", "MDEntryType": "ImpliedOffer",
         "TradeableSize": None}],
        "NoOrderIDEntries": [{"OrderID": 2**64 - 1, "MDOrderPriority": None, "MDDisplayQty": 7, "ReferenceID": 1,
                              "OrderUpdateAction": "New"}]})
    assert bytes(buf[:end]) == py


@njit
def read_book(buf, off, out):
    bl, tid, sid, ver = G.header(buf, off)
    body = off + G.HEADER_SIZE
    pos = body + bl
    entry_len, count, e = G.MDIncrementalRefreshBook46_NoMDEntries_dimension(buf, pos)
    for i in range(count):
        out[i, 0] = G.MDIncrementalRefreshBook46_NoMDEntries_MDEntryPx(buf, e)
        out[i, 1] = G.MDIncrementalRefreshBook46_NoMDEntries_MDEntrySize(buf, e)
        out[i, 2] = G.MDIncrementalRefreshBook46_NoMDEntries_SecurityID(buf, e)
        out[i, 3] = G.MDIncrementalRefreshBook46_NoMDEntries_RptSeq(buf, e)
        out[i, 4] = G.MDIncrementalRefreshBook46_NoMDEntries_MDPriceLevel(buf, e)
        out[i, 5] = G.MDIncrementalRefreshBook46_NoMDEntries_MDUpdateAction(buf, e)
        out[i, 6] = G.MDIncrementalRefreshBook46_NoMDEntries_MDEntryType(buf, e)
        e += entry_len
    return tid, count, G.MDIncrementalRefreshBook46_TransactTime(buf, body)


def test_numba_readers_agree_with_python_face():
    gen = StreamGen(CODEC, [5, 6, 7], depth=10, seed=9, trades=False)
    actions = ["New", "Change", "Delete", "DeleteThru", "DeleteFrom", "Overlay"]
    n = 0
    for payload in gen.packets(200):
        arr = np.frombuffer(payload, np.uint8)
        _, _, msgs = decode_packet(CODEC, payload)
        off = 12
        for m, _ in msgs:
            out = np.zeros((255, 7), np.int64)
            tid, count, ttime = read_book(arr, off + 2, out)
            assert tid == 46 and count == len(m["NoMDEntries"]) and ttime == m["TransactTime"]
            for row, e in zip(out, m["NoMDEntries"]):
                px = e["MDEntryPx"]["mantissa"]
                assert row[0] == (px if px is not None else 2**63 - 1)
                assert row[1] == (e["MDEntrySize"] if e["MDEntrySize"] is not None else 2**31 - 1)
                assert (row[2], row[3], row[4]) == (e["SecurityID"], e["RptSeq"], e["MDPriceLevel"])
                assert actions[row[5]] == e["MDUpdateAction"]
                assert chr(row[6]) == {"Bid": "0", "Offer": "1", "ImpliedBid": "E", "ImpliedOffer": "F",
                                       "BookReset": "J"}[e["MDEntryType"]]
                n += 1
            off += int.from_bytes(payload[off:off + 2], "little")
    assert n > 300


def test_a_schema_cannot_put_code_into_its_generated_module(tmp_path, monkeypatch):
    """Names from the schema's author end up in the generated module's docstrings, and the
    module is imported: text that would close a string literal stays text."""
    from tickwire.sbe.schema import parse
    marker = tmp_path / "ran"
    payload = f'""";open({str(marker)!r},"w");"""'
    attr = payload.replace('"', "&quot;").replace("'", "&apos;")
    xml = f'''<messageSchema package="x{attr}" id="1" version="0">
      <types><composite name="messageHeader"><type name="blockLength" primitiveType="uint16"/>
        <type name="templateId" primitiveType="uint16"/><type name="schemaId" primitiveType="uint16"/>
        <type name="version" primitiveType="uint16"/></composite>
        <composite name="groupSizeEncoding"><type name="blockLength" primitiveType="uint16"/>
        <type name="numInGroup" primitiveType="uint16"/></composite></types>
      <message name="M{attr}" id="7"><field name="a" id="1" type="uint32"/>
        <group name="G{attr}" id="2"><field name="b" id="3" type="uint32"/></group></message>
    </messageSchema>'''
    monkeypatch.setenv("TICKWIRE_CACHE_DIR", str(tmp_path))
    mod = compile_schema(parse(xml))
    assert not marker.exists()
    assert mod.SCHEMA_ID == 1 and payload in mod.__doc__

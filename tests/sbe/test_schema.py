"""Schema parsing: SBE 1.0 features and malformed XML (clear errors naming the element)."""

from __future__ import annotations

import struct

import pytest

from tickwire.sbe import SchemaError, builtin_path, load, parse
from tickwire.sbe.codec import Codec, DecodeError

HEAD = """<?xml version="1.0"?>
<sbe:messageSchema xmlns:sbe="http://fixprotocol.io/2016/sbe" package="t" id="7" version="3" byteOrder="{order}">
<types>
  <composite name="messageHeader">
    <type name="blockLength" primitiveType="uint16"/><type name="templateId" primitiveType="uint16"/>
    <type name="schemaId" primitiveType="uint16"/><type name="version" primitiveType="uint16"/>
  </composite>
  <composite name="groupSizeEncoding">
    <type name="blockLength" primitiveType="uint16"/><type name="numInGroup" primitiveType="uint16"/>
  </composite>
  <composite name="varString">
    <type name="length" primitiveType="uint8"/><type name="varData" primitiveType="uint8" length="0"/>
  </composite>
  <type name="Qty" primitiveType="int32" presence="optional"/>
  <enum name="Side" encodingType="uint8"><validValue name="Buy">1</validValue><validValue name="Sell">2</validValue></enum>
  <type name="Px" primitiveType="int64"/>
  <composite name="Price"><ref name="mantissa" type="Px"/><type name="exponent" primitiveType="int8" presence="constant">-2</type></composite>
  {extra}
</types>
{messages}
</sbe:messageSchema>"""

MSG = """
<sbe:message name="Order" id="1">
  <field name="Id" id="1" type="uint64"/>
  <field name="Side" id="2" type="Side"/>
  <field name="Px" id="3" type="Price"/>
  <field name="Kind" id="4" type="Side" presence="constant" valueRef="Side.Sell"/>
  <field name="Extra" id="5" type="Qty" sinceVersion="3"/>
  <group name="Legs" id="10">
    <field name="Ratio" id="11" type="int16"/>
    <group name="Fills" id="12"><field name="Q" id="13" type="Qty"/></group>
    <data name="Note" id="14" type="varString"/>
  </group>
  <data name="Text" id="20" type="varString"/>
</sbe:message>"""


def schema(extra="", messages=MSG, order="littleEndian"):
    return parse(HEAD.format(extra=extra, messages=messages, order=order))


VALUE = {"Id": 2**64 - 1, "Side": "Sell", "Px": {"mantissa": -12345}, "Extra": None,
         "Legs": [{"Ratio": -3, "Fills": [{"Q": 5}, {"Q": None}], "Note": b"ab"},
                  {"Ratio": 2, "Fills": [], "Note": b""}],
         "Text": b"hello"}


@pytest.mark.parametrize("order", ["littleEndian", "bigEndian"])
def test_nested_groups_var_data_constants_roundtrip(order):
    s = schema(order=order)
    m = s.message("Order")
    assert m.block_length == 8 + 1 + 8 + 4       # constant field takes no space
    c = Codec(s)
    raw = c.encode("Order", VALUE)
    out, used = c.decode(raw)
    assert used == len(raw)
    assert out["Kind"] == 2                      # valueRef constant
    for k, v in VALUE.items():
        assert out[k] == (dict(v, exponent=-2) if k == "Px" else v), k
    # Every byte was accounted for: header, root, 2 legs with nested groups and data, text.
    assert len(raw) == 8 + 21 + 4 + 2 * (2 + 4 + 1) + 4 * 2 + 2 + 1 + 5


def test_longer_block_from_newer_version_is_skipped_by_block_length():
    c = Codec(schema())
    raw = bytearray(c.encode("Order", VALUE, block_length=21 + 6))   # 6 unknown appended bytes
    out, used = c.decode(bytes(raw))
    assert used == len(raw) and out["Text"] == b"hello" and out["Legs"][0]["Fills"][0]["Q"] == 5


def test_since_version_field_absent_in_older_message():
    c = Codec(schema())
    raw = c.encode("Order", dict(VALUE, Extra=9), version=2)
    assert c.decode(raw)[0]["Extra"] is None
    assert c.decode(c.encode("Order", dict(VALUE, Extra=9)))[0]["Extra"] == 9


def test_group_count_overrun_and_unknown_template_raise_decode_error():
    c = Codec(schema())
    raw = bytearray(c.encode("Order", VALUE))
    struct.pack_into("<H", raw, 8 + 21 + 2, 999)        # Legs numInGroup
    with pytest.raises(DecodeError, match="Legs"):
        c.decode(bytes(raw))
    raw = bytearray(c.encode("Order", VALUE))
    struct.pack_into("<H", raw, 2, 55)
    with pytest.raises(DecodeError, match="unknown templateId 55"):
        c.decode(bytes(raw))
    with pytest.raises(DecodeError, match="schemaId"):
        raw = bytearray(c.encode("Order", VALUE))
        struct.pack_into("<H", raw, 4, 8)
        c.decode(bytes(raw))
    with pytest.raises(DecodeError):
        c.decode(c.encode("Order", VALUE)[:30])


@pytest.mark.parametrize("extra,messages,needle", [
    ('<type name="Bad" primitiveType="int128"/>', MSG, "<type name='Bad'>: unknown primitiveType"),
    ("", MSG.replace('type="Price"', 'type="Nope"'), "<field name='Px'> in <message name='Order'>: unknown type"),
    ("", MSG.replace('<group name="Legs" id="10">', '<group name="Legs" id="10" dimensionType="Qty">'),
     "<group name='Legs'>: dimensionType"),
    ('<enum name="E" encodingType="uint8"><validValue name="A">x</validValue></enum>', MSG, "<validValue name='A'>"),
    ("", MSG.replace('valueRef="Side.Sell"', 'valueRef="Side.Hold"'), "<field name='Kind'>"),
    ("", MSG.replace('<field name="Px" id="3" type="Price"/>', '<field name="Px" id="3" type="Price" offset="2"/>'),
     "<field name='Px'> in <message name='Order'>: offset 2 overlaps"),
    ('<composite name="Loop"><ref name="x" type="Loop"/></composite>', MSG, "refers to itself"),
    ("", MSG.replace('<sbe:message name="Order" id="1">', '<sbe:message name="Order" id="1" blockLength="3">'),
     "blockLength 3 < end of its fields"),
    ("", MSG + MSG, "template id 1 is used twice"),
])
def test_malformed_schema_names_the_element(extra, messages, needle):
    with pytest.raises(SchemaError) as e:
        schema(extra, messages)
    assert needle in str(e.value)


def test_not_xml_and_missing_file():
    with pytest.raises(SchemaError, match="not well formed"):
        parse("<messageSchema><types>")
    with pytest.raises(SchemaError, match="cannot read schema"):
        load("/nonexistent/schema.xml")
    with pytest.raises(SchemaError, match="expected <messageSchema>"):
        parse("<foo/>")


def test_builtin_mdp3_subset_layout_matches_the_notes():
    s = load(builtin_path())
    m46 = s.message(46)
    assert (m46.block_length, m46.groups[0].block_length, m46.groups[1].block_length) == (11, 32, 24)
    assert m46.groups[1].dimension.size == 8 and m46.groups[1].dimension.member("numInGroup")[1] == 7
    offs = {f.name: f.offset for f in m46.groups[0].fields}
    assert offs["MDEntryPx"] == 0 and offs["RptSeq"] == 16 and offs["MDEntryType"] == 26 and offs["TradeableSize"] == 27
    assert s.message(52).block_length == 59 and s.message(52).groups[0].block_length == 22
    assert s.message(53).groups[0].block_length == 29 and s.message(47).groups[0].block_length == 40


def test_feed_layout_demotes_templates_it_cannot_read():
    """A LongQty-style book template (8-byte MDEntrySize) must not be read as 46, and
    must not stop the schema from loading: its instruments go to recovery instead."""
    from tickwire.feed import layout
    xml = open(builtin_path()).read().replace("</sbe:messageSchema>", """
  <sbe:message name="MDIncrementalRefreshBookLongQty64" description="x" id="64" blockLength="11">
    <field name="TransactTime" id="60" type="uint64" offset="0"/>
    <field name="MatchEventIndicator" id="5799" type="MatchEventIndicator" offset="8"/>
    <group name="NoMDEntries" id="268" blockLength="40" dimensionType="groupSize">
      <field name="MDEntryPx" id="270" type="PRICENULL9" offset="0"/>
      <field name="MDEntrySize" id="271" type="uInt64NULL" offset="8"/>
      <field name="SecurityID" id="48" type="int32" offset="16"/>
      <field name="RptSeq" id="83" type="uint32" offset="20"/>
    </group>
  </sbe:message>
</sbe:messageSchema>""")
    tpl = layout.build(parse(xml))
    kinds = layout.describe(tpl)
    assert kinds[46] == "book" and kinds[64] == "rpt_break" and kinds[52] == "snapshot" and kinds[47] == "mbo"
    assert tpl[64, layout.E_SECID] == 16

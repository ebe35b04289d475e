"""`tickwire feed decode` and `tickwire book` on a pcap built with scapy (an independent
frame builder), run as the real command in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from scapy.all import IP, UDP, Ether, wrpcap

from tickwire.feed.mdp3 import encode_packet
from tickwire.feed.synth import book_entry, definition_message, snapshot_message
from tickwire.sbe import builtin_path, load
from tickwire.sbe.codec import Codec

CODEC = Codec(load(builtin_path()))
A, B, SNAP = 14310, 15310, 22310


def frame(port, payload):
    return Ether(dst="01:00:5e:01:01:01") / IP(src="10.0.0.1", dst="239.1.1.1") / UDP(sport=9000, dport=port) / payload


def book_msg(*entries):
    return CODEC.encode(46, {"TransactTime": 5, "MatchEventIndicator": ["EndOfEvent"], "NoMDEntries": list(entries)})


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    p1 = encode_packet(1, 100, [definition_message(CODEC, 7, "ESZ6", depth=3),
                                book_msg(book_entry(4_512_250_000_000, 10, 7, 1, 1, "New", "Bid", 3),
                                         book_entry(4_512_500_000_000, 4, 7, 2, 1, "New", "Offer", 1))])
    p2 = encode_packet(2, 200, [book_msg(book_entry(4_512_000_000_000, 8, 7, 3, 2, "New", "Bid", 2),
                                         book_entry(4_512_250_000_000, 11, 7, 4, 1, "Change", "Bid", 4),
                                         book_entry(99, 1, 9, 1, 1, "New", "Offer", 1))])
    p3 = encode_packet(3, 300, [book_msg(book_entry(4_512_500_000_000, 0, 7, 5, 1, "Delete", "Offer", 0),
                                         book_entry(98, 2, 9, 3, 1, "New", "Bid", 1))])   # RptSeq 2 of 9 missing
    p4 = encode_packet(4, 350, [CODEC.encode(47, {"TransactTime": 6, "MatchEventIndicator": ["EndOfEvent"],
                                                  "NoMDEntries": [
        {"OrderID": 1, "MDOrderPriority": 5, "MDEntryPx": {"mantissa": 4_512_250_000_000}, "MDDisplayQty": 3,
         "SecurityID": 7, "MDUpdateAction": "New", "MDEntryType": "Bid"},
        {"OrderID": 2, "MDOrderPriority": 6, "MDEntryPx": {"mantissa": 4_512_250_000_000}, "MDDisplayQty": 8,
         "SecurityID": 7, "MDUpdateAction": "New", "MDEntryType": "Bid"}]})])
    snap = encode_packet(1, 400, [snapshot_message(CODEC, 9, 3, 3, {"Bid": [(98, 2, 1)], "Offer": [(99, 1, 1)]})])
    frames = [frame(A, p1), frame(B, p1), frame(B, p2), frame(A, p2), frame(A, p3), frame(SNAP, snap), frame(B, p4),
              frame(A, b"\x01\x02")]
    path = tmp_path_factory.mktemp("cap") / "feed.pcap"
    wrpcap(str(path), frames)
    return str(path)


def run(*args):
    r = subprocess.run([sys.executable, "-m", "tickwire.cli", *args], capture_output=True, text=True, timeout=1200)  # first run compiles the handler
    return r


def test_feed_decode_prints_every_message_as_json(capture):
    r = run("feed", "decode", "--schema", builtin_path(), capture)
    assert r.returncode == 0, r.stderr
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert len(lines) == 2 * 2 + 2 + 1 + 1 + 1 + 1  # p1 (2 msgs) on A and B, p2 on A and B, p3, snapshot, p4, junk
    first_book = next(x for x in lines if x.get("_templateId") == 46)
    e = first_book["NoMDEntries"][0]
    assert e["MDEntryPx"] == "4512.25" and e["MDEntrySize"] == 10 and e["MDEntryType"] == "Bid"
    assert first_book["MsgSeqNum"] == 1 and first_book["MatchEventIndicator"] == ["EndOfEvent"]
    assert lines[-1]["error"] == "truncated packet header"
    d = next(x for x in lines if x.get("_templateId") == 54)
    assert d["Symbol"] == "ESZ6" and d["MinPriceIncrement"] == "0.25"


def test_book_prints_final_books_and_counters(capture):
    r = run("book", "--schema", builtin_path(), "--depth", "5", "--json", capture)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    books = {b["SecurityID"]: b for b in out["instruments"]}
    es = books[7]
    assert es["state"] == "synced" and es["RptSeq"] == 5
    assert es["bid"] == [{"level": 1, "px": "4512.25", "qty": 11, "orders": 4},
                         {"level": 2, "px": "4512", "qty": 8, "orders": 2}]
    assert es["offer"] == []
    assert es["mbo_state"] == "synced" and es["mbo_bid"] == [{"px": "4512.25", "qty": 11, "orders": 2}]
    assert books[9]["state"] == "synced" and books[9]["bid"][0]["px"] == "0.000000098"
    c = out["counters"]
    assert c["duplicates"] == 2 and c["rpt_gaps"] == 1 and c["recoveries"] == 1 and c["truncated_packet"] == 1
    text = run("book", "--schema", builtin_path(), capture)
    assert text.returncode == 0 and "SecurityID 7  state=synced" in text.stdout


def test_bad_schema_is_one_clear_error(tmp_path, capture):
    bad = tmp_path / "bad.xml"
    bad.write_text("<messageSchema><types><type name='x' primitiveType='int99'/></types></messageSchema>")
    r = run("book", "--schema", str(bad), capture)
    assert r.returncode == 2 and "<type name='x'>: unknown primitiveType" in r.stderr

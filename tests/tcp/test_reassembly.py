from hypothesis import given, settings, strategies as st

from tickwire.stack.tcp.reassembly import Reassembly


def test_overlaps_first_copy_wins_and_pop():
    r = Reassembly(max_bytes=1000)
    assert r.insert(10, b"abcdef")        # 10..16
    assert r.insert(8, b"XXyyyyyyZZ")     # 8..18: only 8..10 and 16..18 are new
    assert r.held == 10
    assert r.pop_ready(0) == b""
    assert r.pop_ready(8) == b"XXabcdefZZ"
    assert r.held == 0 and len(r) == 0


def test_limits_refuse_and_count():
    r = Reassembly(max_bytes=10, max_pieces=2)
    assert r.insert(0, b"12345")
    assert not r.insert(100, b"123456")   # bytes
    assert r.insert(50, b"1")
    assert not r.insert(60, b"1")         # pieces
    assert r.dropped == 2


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 200), st.integers(1, 40)), max_size=30))
def test_matches_byte_model(segs):
    stream = bytes((i * 7 + 3) & 255 for i in range(300))
    r = Reassembly(max_bytes=10_000, max_pieces=1000)
    have = set()
    for s, n in segs:
        r.insert(s, stream[s:s + n])
        have.update(range(s, s + n))
    # blocks report exactly what is held
    held = set()
    for s, e in r.blocks(limit=1000):
        held.update(range(s, e))
    assert held == have
    n = 0
    while n in have:
        n += 1
    assert r.pop_ready(0) == stream[:n]

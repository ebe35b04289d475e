from hypothesis import given, settings, strategies as st

from tickwire.stack.tcp import seq as sq
from tickwire.stack.tcp.isn import isn
from tickwire.stack.tcp.rto import RtoEstimator
from tickwire.stack.tcp.seq import seq_lt, seq_sub

u32 = st.integers(0, 2**32 - 1)


@settings(deadline=None)
@given(u32, st.integers(1, 2**31 - 1))
def test_seq_order_across_wrap(a, n):
    b = sq.add(a, n)
    assert sq.lt(a, b) and sq.gt(b, a) and not sq.lt(b, a)
    assert sq.sub(b, a) == n
    assert seq_lt(a, b) and seq_sub(b, a) == n          # the Numba twins agree


def test_seq_wrap_examples():
    assert sq.lt(0xFFFFFFF0, 0x10)
    assert sq.between(0xFFFFFFF0, 0x5, 0x20)
    assert not sq.between(0xFFFFFFF0, 0x20, 0x20)


def test_isn_depends_on_tuple_and_key_and_clock():
    a = isn(1, 2, 3, 4, now_ns=0)
    assert a != isn(1, 2, 3, 5, now_ns=0)
    assert a != isn(1, 2, 3, 4, now_ns=0, secret=b"x" * 16)
    # RFC 6528: the 4 us clock keeps incarnations of one 4-tuple increasing
    assert sq.sub(isn(1, 2, 3, 4, now_ns=4_000_000), a) == 1000


def test_rto_rfc6298_rules():
    r = RtoEstimator(min_rto=1000, max_rto=60_000_000)
    assert r.rto == 1_000_000                      # §2.1 before any sample
    r.sample(100_000)
    assert (r.srtt, r.rttvar, r.rto) == (100_000, 50_000, 300_000)   # §2.2
    r.sample(200_000)                              # §2.3
    assert r.rttvar == (3 * 50_000 + 100_000) // 4 and r.srtt == (7 * 100_000 + 200_000) // 8
    rto = r.rto
    r.back_off()
    assert r.rto == 2 * rto                        # §5.5
    for _ in range(20):
        r.back_off()
    assert r.rto == 60_000_000
    r2 = RtoEstimator(min_rto=200_000)
    r2.sample(10)
    assert r2.rto == 200_000                       # §2.4 lower bound

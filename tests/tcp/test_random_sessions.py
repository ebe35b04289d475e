"""Random sessions between two tickwire stacks: random impairment, random sizes, random
ending (close from either side, both, or abort). Whatever happens: no exception, what
arrives is always a prefix of what was sent (exactly all of it after a graceful close),
and in the end every slot is free and every buffer is back in the pool."""

import os

from hypothesis import given, settings, strategies as st

from .pair import Pair
from tickwire.stack.tcp.config import TcpConfig

FAST = dict(min_rto_us=20_000, msl_us=50_000, max_retries=6)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), loss=st.sampled_from([0.0, 0.02, 0.08]),
       dup=st.sampled_from([0.0, 0.03]), reorder=st.sampled_from([0.0, 0.2]),
       n_ab=st.integers(0, 120_000), n_ba=st.integers(0, 60_000),
       ending=st.sampled_from(["a_close", "b_close", "both_close", "a_abort"]))
def test_random_session(seed, loss, dup, reorder, n_ab, n_ba, ending):
    p = Pair(cfg_a=TcpConfig(**FAST), cfg_b=TcpConfig(**FAST), seed=seed)
    c, s = p.connect()
    for net in (p.net_ab, p.net_ba):
        net.update(loss=loss, dup=dup, reorder=reorder)
    d_ab, d_ba = os.urandom(n_ab), os.urandom(n_ba)
    got_b, got_a = bytearray(), bytearray()
    off = {"ab": 0, "ba": 0}

    def pump():
        if off["ab"] < n_ab and c.state_name in ("ESTABLISHED", "CLOSE-WAIT"):
            off["ab"] += c.send(d_ab[off["ab"]:off["ab"] + 32768])
        if off["ba"] < n_ba and s.state_name in ("ESTABLISHED", "CLOSE-WAIT"):
            off["ba"] += s.send(d_ba[off["ba"]:off["ba"] + 32768])
        got_b.extend(s.recv(1 << 20))
        got_a.extend(c.recv(1 << 20))
        assert d_ab.startswith(bytes(got_b)) and d_ba.startswith(bytes(got_a))

    def sent_all():
        pump()
        return off["ab"] == n_ab and off["ba"] == n_ba

    assert p.run(sent_all, 30)
    if ending == "a_abort":
        # a lost RST leaves the peer half-open until it sends (RFC 9293 §3.5.2): deliver it
        p.net_ab.update(loss=0.0)
        c.abort()
    if ending in ("a_close", "both_close"):
        c.close()
    if ending in ("b_close", "both_close"):
        s.close()

    def settled():
        pump()
        if s.eof and s.state_name == "CLOSE-WAIT":
            s.close()
        if c.eof and c.state_name == "CLOSE-WAIT":
            c.close()
        return c.state_name == "CLOSED" and s.state_name == "CLOSED"

    assert p.run(settled, 60), (c.state_name, s.state_name, c.reason, s.reason)
    got_b.extend(s.recv(1 << 30))
    got_a.extend(c.recv(1 << 30))
    if ending != "a_abort":
        assert bytes(got_b) == d_ab and bytes(got_a) == d_ba
        assert c.reason == "" and s.reason == ""
    else:
        assert s.reason == "connection reset by peer"
    assert all(x is None for x in p.a.conns) and all(x is None for x in p.b.conns)
    p.net_ab.update(loss=0, dup=0, reorder=0)
    p.net_ba.update(loss=0, dup=0, reorder=0)
    p.idle(0.05)                                   # drain what is still on the wire
    assert p.pool.check() == 0

"""The memif server's one-copy reflect (drivers/memif/reflect.py), used by `tickwire echo`:
frames come back MAC-swapped with their lengths, both rings' indexes and the counters
move, the pool is not touched; what it does not take (chained, short) is left for the
bursts; and every descriptor/index check of the bursts holds here too (a rogue client is
disconnected with the reason, the server lives on)."""

from __future__ import annotations

import numpy as np
import pytest

from tickwire.drivers.memif import proto
from tickwire.drivers.memif.reflect import memif_reflect
from tickwire.tools.echo import echo_slice

from .test_rogue import connected_rogue, server, sock_path  # noqa: F401  (fixtures)


def _frame(i, n):
    return bytes((i * 7 + k) & 0xFF for k in range(n))


def _put(c, frames, flags=()):
    """Place frames in the rogue client's C2S ring (its own buffers) and publish them."""
    r = c.rings[0]
    for i, f in enumerate(frames):
        off = int(r.desc[i]["offset"])
        c.mem[off:off + len(f)] = np.frombuffer(f, np.uint8)
        r.desc[i] = (flags[i] if i < len(flags) else 0, 0, len(f), off, 0)
    r.head = len(frames)


def _got(c, i):
    d = c.rings[1].desc[i]
    return bytes(c.mem[int(d["offset"]):int(d["offset"]) + int(d["length"])]), int(d["flags"])


def macswap(f):
    return f[6:12] + f[0:6] + f[12:]


def _post_s2c(c):
    c.rings[1].head = 1 << c.log2  # every S2C buffer (256 bytes each) given to the server


def test_reflect_swaps_macs_in_one_copy_and_moves_both_rings(server, sock_path):
    port, pool = server
    c = connected_rogue(port, sock_path)
    _post_s2c(c)
    frames = [_frame(i, n) for i, n in enumerate((14, 60, 64, 256))]
    _put(c, frames)
    assert memif_reflect.compiled(port.state, 32) == 4
    assert [_got(c, i) for i in range(4)] == [(macswap(f), 0) for f in frames]
    assert c.rings[0].tail == 4 and c.rings[1].tail == 4
    ctr = port.counters.as_dict()
    assert (ctr["rx_packets"], ctr["tx_packets"], ctr["rx_bytes"]) == (4, 4, 14 + 60 + 64 + 256)
    assert pool.in_flight == 0
    assert memif_reflect.compiled(port.state, 32) == 0  # nothing more: no index moves
    assert c.rings[0].tail == 4 and c.rings[1].tail == 4
    c.close()


def test_reflect_leaves_chained_and_short_frames_to_the_bursts(server, sock_path):
    port, pool = server
    c = connected_rogue(port, sock_path)
    _post_s2c(c)
    # one plain frame, then a chain of two (a frame longer than one C2S buffer), then a short one
    frames = [_frame(0, 60), _frame(1, 200), _frame(2, 100), _frame(3, 10)]
    _put(c, frames, flags=(0, proto.DESC_FLAG_NEXT, 0, 0))
    assert memif_reflect.compiled(port.state, 32) == -1 - 1  # reflected one, the chain is left
    assert c.rings[0].tail == 1
    stats = np.zeros(3, np.int64)
    bufs = np.empty(32, np.int32)
    echo_slice(port.state, pool.arrays, bufs, 32, 4, stats)
    assert list(stats) == [1, 0, 1]  # the chain echoed by the bursts, the short frame dropped
    assert _got(c, 0)[0] == macswap(frames[0])
    (a, fa), (b, fb) = _got(c, 1), _got(c, 2)  # 300 bytes: the S2C buffers hold 256, so a chain
    assert (a + b, fa, fb) == (macswap(frames[1] + frames[2]), proto.DESC_FLAG_NEXT, 0)
    assert c.rings[0].tail == 4
    assert port.link_up and pool.in_flight == 0
    c.close()


@pytest.mark.parametrize("bend, reason, counter", [
    (lambda c: c.rings[0].desc.__setitem__(0, (0, 0, 64, c.size - 10, 0)), "descriptor outside its region", "bad_desc"),
    (lambda c: c.rings[0].desc.__setitem__(0, (0, 7, 60, 0, 0)), "descriptor outside its region", "bad_desc"),
    (lambda c: c.rings[1].desc.__setitem__(0, (0, 0, 256, c.size - 100, 0)), "descriptor outside its region", "bad_desc"),
    (lambda c: c.rings[1].desc.__setitem__(0, (0, 3, 256, 0, 0)), "descriptor outside its region", "bad_desc"),
    (lambda c: c.rings[1].desc["length"].__setitem__(0, 0), "posted buffer with zero capacity", "bad_desc"),
    (lambda c: setattr(c.rings[0], "head", 1000), "ring index beyond ring size", "bad_ring_index"),
    (lambda c: setattr(c.rings[1], "head", 1000), "ring index beyond ring size", "bad_ring_index"),
])
def test_rogue_descriptors_and_indexes_disconnect_and_server_lives_on(server, sock_path, bend, reason, counter):
    port, pool = server
    c = connected_rogue(port, sock_path)
    _post_s2c(c)
    _put(c, [_frame(0, 60)])
    bend(c)
    assert memif_reflect.compiled(port.state, 32) == 0
    assert c.rings[1].tail == 0  # nothing was sent
    port.poll()
    assert not port.link_up and reason in port.last_error
    assert port.counters.as_dict()[counter] == 1
    c.close()
    c = connected_rogue(port, sock_path)  # the next client is served
    _post_s2c(c)
    _put(c, [_frame(1, 60)])
    assert memif_reflect.compiled(port.state, 32) == 1
    assert _got(c, 0)[0] == macswap(_frame(1, 60))
    c.close()
    assert pool.in_flight == 0


def test_tx_burst_checks_the_callers_buffers(server, sock_path):
    """Not a pool buffer in use: skipped (tx_bad_buf), nothing sent; data outside its
    buffer (a negative length here): dropped and freed (tx_too_long); never read past
    the caller's array; a good frame still goes out."""
    port, pool = server
    c = connected_rogue(port, sock_path)
    _post_s2c(c)
    good, bad = pool.alloc_frames([_frame(0, 60), _frame(1, 60)])
    pool.arrays.data_len[bad] = -1
    free_idx = next(i for i in range(pool.size) if i not in (good, bad))
    bufs = np.array([bad, free_idx, -3, good, 7], np.int32)
    assert port.tx_burst(bufs[:4], 9) == 4
    ctr = port.counters.as_dict()
    assert (ctr["tx_bad_buf"], ctr["tx_too_long"], ctr["tx_packets"]) == (2, 1, 1)
    assert c.rings[1].tail == 1 and _got(c, 0) == (_frame(0, 60), 0)
    assert pool.in_flight == 0
    c.close()

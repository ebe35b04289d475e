"""Descriptor chains a peer publishes in steps, or never ends (review s9 item 7)."""

from __future__ import annotations

import numpy as np

from tickwire.drivers.memif import proto
from tickwire.drivers.port import open_port
from tickwire.mem.mempool import Mempool

from .test_rogue import connected_rogue, rogue_server, server, sock_path  # noqa: F401 (fixtures)


def test_chain_published_in_two_steps_is_one_frame(server, sock_path):
    port, pool = server
    c = connected_rogue(port, sock_path)
    r = c.rings[0]
    r.desc[0]["length"], r.desc[0]["flags"] = 100, proto.DESC_FLAG_NEXT
    r.head = 1                                  # first half only
    bufs = np.empty(8, np.int32)
    assert port.rx_burst(bufs) == 0
    r.desc[1]["length"], r.desc[1]["flags"] = 50, 0
    r.head = 2                                  # now the end of the chain
    assert port.rx_burst(bufs) == 1             # used to give two frames, 100 and 50 bytes
    o0, o1 = int(r.desc[0]["offset"]), int(r.desc[1]["offset"])
    assert pool.read(int(bufs[0])) == bytes(c.mem[o0:o0 + 100]) + bytes(c.mem[o1:o1 + 50])
    pool.free_burst(bufs[:1])
    assert int(r.desc[0]["flags"]) == 0         # stale-NEXT mitigation still clears consumed chains
    assert port.counters.as_dict()["rx_chained"] == 1
    assert port.link_up
    c.close()


def test_client_ring_full_of_next_is_a_protocol_violation(rogue_server, sock_path):
    """A server that fills a 16-slot S2C ring with NEXT descriptors: the chain can never end."""
    pool = Mempool(64, 2048, 128)
    with open_port(f"memif:socket={sock_path},role=client,rsize=4,bsize=256", pool) as port:
        mem, _, view = rogue_server.handshake(port)
        view.desc["length"] = 64
        view.desc["flags"] = proto.DESC_FLAG_NEXT
        view.tail = 16                          # the whole ring, no end
        bufs = np.empty(8, np.int32)
        assert port.rx_burst(bufs) == 0
        port.poll()                             # used to stall silently: no error, no counter
        assert not port.link_up
        assert "descriptor chain longer than the ring" in port.last_error
        assert port.counters.as_dict()["bad_desc"] == 1
        del view, mem
        rogue_server.conn.close()
    assert pool.check() == 0

"""House rule (notes/numba-hot-path.md §5): a uint64/int64 mix silently becomes float64.
Compile the per-packet functions fresh (a private cache dir, so types are inspectable)
and check that no float64 appears in their typed IR."""

from conftest import float_uses_after_fresh_compile

SETUP = '''
import numpy as np
from tickwire.mem.mempool import Mempool
from tickwire.stack import Stack
from tickwire.stack.input import stack_input
from tickwire.stack.poll import stack_poll
from tickwire.stack.udp import udp_prepare, udp_reply_in_place
from tickwire.stack.arp import arp_input
from tickwire.stack.igmp import igmp_input, igmp_build_due
from tickwire.wire.decode import decode, decode_frame
from tickwire.wire.checksum import csum_add
from tickwire.wire.tcp import tcp_parse_options
from scapy.all import Ether, IP, UDP, raw
pool = Mempool(16, 2048, 128)
s = Stack("02:00:00:00:00:01", "10.9.0.1/24"); s.bind_udp(7, echo=True); s.join("239.1.1.1")
(b,) = pool.alloc_frames([raw(Ether(dst="02:00:00:00:00:01")/IP(src="10.9.0.2", dst="10.9.0.1")/UDP(dport=7)/b"x")])
s.input(pool, int(b)); udp_reply_in_place(s.state, pool.arrays, np.int32(b), s.info, 1)
s.poll(pool); s.udp_frame(pool, "239.1.1.1", 1, 2, b"y")
decode(raw(Ether()/IP(src="10.9.0.2", dst="10.9.0.1")/UDP(dport=7)/b"x"))   # the standalone decoder
csum_add(np.zeros(64, np.uint8), 0, 20, 0)   # inlined into its callers: compile it on its own too
from tickwire.wire import TcpRepr
TcpRepr(1, 2, 3, 4, 2, 5, mss=1460).emit("1.1.1.1", "2.2.2.2")
TcpRepr.parse(TcpRepr(1, 2, 3, 4, 2, 5, mss=1460).emit("1.1.1.1", "2.2.2.2"), "1.1.1.1", "2.2.2.2")
'''

FUNCTIONS = """stack_input, stack_poll, udp_prepare, udp_reply_in_place, arp_input, igmp_input, igmp_build_due,
               decode_frame, csum_add, tcp_parse_options"""


def test_no_float64_in_per_packet_functions(tmp_path):
    found = float_uses_after_fresh_compile(tmp_path, SETUP, FUNCTIONS)
    assert len(found) == 10
    assert {k: v for k, v in found.items() if v} == {}

"""Two tickwire TcpStacks joined by a PipePort pair, with optional per-direction netem."""

from __future__ import annotations

import time

import numpy as np

from tickwire.stack.tcp.loopback_pair import mangle, pipe_pair
from tickwire.mem.mempool import Mempool
from tickwire.stack.tcp.config import TcpConfig
from tickwire.stack.tcp.stack import TcpStack

A_IP, B_IP = "10.9.0.1", "10.9.0.2"
A_IP_INT, B_IP_INT = 0x0A090001, 0x0A090002


class Pair:
    def __init__(self, cfg_a: TcpConfig | None = None, cfg_b: TcpConfig | None = None, seed: int = 1,
                 max_conns: int = 16):
        self.pool = Mempool(n_bufs=8192)
        self.pa, self.pb = pipe_pair(self.pool)
        fast = dict(min_rto_us=50_000, msl_us=100_000)
        self.a = TcpStack(self.pa, A_IP, cfg=cfg_a or TcpConfig(**fast), max_conns=max_conns)
        self.b = TcpStack(self.pb, B_IP, cfg=cfg_b or TcpConfig(**fast), max_conns=max_conns)
        self.rng = np.random.default_rng(seed)
        self.net_ab = dict(loss=0.0, dup=0.0, reorder=0.0)   # frames A -> B
        self.net_ba = dict(loss=0.0, dup=0.0, reorder=0.0)
        self.block_ab = self.block_ba = False
        self.seen = {"ab": 0, "ba": 0}

    def _net(self, ring, net, block, key):
        if block:
            self.seen[key] = mangle(ring, self.pool, self.rng, loss=1.0, start=self.seen[key])
        elif any(net.values()):
            self.seen[key] = mangle(ring, self.pool, self.rng, start=self.seen[key], **net)

    def step(self):
        # each direction's frames are mangled once, just before the receiver polls
        self._net(self.pb.state.tx, self.net_ba, self.block_ba, "ba")
        self.a.poll()
        self._net(self.pa.state.tx, self.net_ab, self.block_ab, "ab")
        self.b.poll()

    def run(self, cond, timeout=5.0) -> bool:
        deadline = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > deadline:
                return False
            self.step()
        return True

    def idle(self, seconds):
        self.run(lambda: False, seconds)

    def connect(self, port=7000):
        lst = self.b.listen(port) if port not in self.b.listeners else self.b.listeners[port]
        c = self.a.open(B_IP_INT, port, self.pb.mac)
        assert self.run(lambda: lst.ready, 3), c.state_name
        s = lst.ready.pop(0)
        s.listener = None
        assert self.run(lambda: c.state_name == "ESTABLISHED", 2)
        return c, s

    def transfer(self, src, dst, data, timeout=30.0) -> bytes:
        got = bytearray()
        off = 0

        def done():
            nonlocal off
            if off < len(data):
                off += src.send(data[off:off + 65536])
            got.extend(dst.recv(1 << 20))
            return len(got) >= len(data)

        assert self.run(done, timeout), f"stalled at {len(got)}/{len(data)}"
        return bytes(got)

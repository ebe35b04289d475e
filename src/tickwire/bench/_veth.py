"""Network namespaces and veth pairs for benchmarks and tests, with unique names and guaranteed cleanup.

The one home of this set-up: ``bench xdp``, ``bench udp-echo`` and the xdp:, udp:/tcp:,
packet: and TCP-stack tests all build on ``VethPair``.

``VethPair`` makes two namespaces ``twa<hex>``/``twb<hex>`` joined by a veth pair
(``twx<hex>`` in A for tickwire, ``twy<hex>`` in B for the kernel peer), turns IPv6
off in both (no stray router/neighbour solicitations on the wire), brings the links
and B's loopback up, gives B the address ``B_IP``, and turns B's TX checksum offload
off so the frames it sends carry real checksums (notes/af_xdp.md §7; with
``peer_csum_offload=True`` it stays on and A receives partial checksums, which a frame
port must complete). By default B also gets a static neighbour entry for ``A_IP`` (no
ARP needed); ``static_neigh=False`` leaves ARP to whoever answers on A (tickwire's stack).
``inside(ns)`` runs a block of this thread in the namespace (setns(2)); sockets
and bpf links created there stay bound to it after we switch back.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import subprocess

_libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET = 0x40000000


def sh(*cmd: str, check: bool = True) -> str:
    r = subprocess.run(cmd, capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {r.stderr.strip()}")
    return r.stdout


@contextlib.contextmanager
def inside(ns: str | None):
    if ns is None:
        yield
        return
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{ns}", os.O_RDONLY)
    try:
        if _libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns({ns})")
        yield
    finally:
        _libc.setns(own, CLONE_NEWNET)
        os.close(own)
        os.close(target)


class VethPair:
    A_IP, B_IP = "10.77.0.1", "10.77.0.2"

    def __init__(self, queues: int = 1, static_neigh: bool = True, ips: tuple[str, str] | None = None,
                 peer_csum_offload: bool = False):
        if ips is not None:
            self.A_IP, self.B_IP = ips
        h = secrets.token_hex(3)
        self.ns_a, self.ns_b = f"twa{h}", f"twb{h}"
        self.dev_a, self.dev_b = f"twx{h}", f"twy{h}"
        try:
            sh("ip", "netns", "add", self.ns_a)
            sh("ip", "netns", "add", self.ns_b)
            sh("ip", "link", "add", self.dev_a, "numrxqueues", str(queues), "numtxqueues", str(queues),
               "netns", self.ns_a, "type", "veth", "peer", "name", self.dev_b, "numrxqueues", str(queues), "numtxqueues", str(queues),
               "netns", self.ns_b)
            for ns in (self.ns_a, self.ns_b):
                sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
                sh("ip", "-n", ns, "link", "set", "lo", "up")
            self.a("ip", "link", "set", self.dev_a, "up")
            self.b("ip", "link", "set", self.dev_b, "up")
            self.b("ip", "addr", "add", f"{self.B_IP}/24", "dev", self.dev_b)
            self.b("ethtool", "-K", self.dev_b, "tx", "on" if peer_csum_offload else "off",
                   "gro", "off", "tso", "off", "gso", "off")
            self.a("ethtool", "-K", self.dev_a, "gro", "off", "tso", "off", "gso", "off")
            self.mac_a = self.a("cat", f"/sys/class/net/{self.dev_a}/address").strip()
            self.mac_b = self.b("cat", f"/sys/class/net/{self.dev_b}/address").strip()
            if static_neigh:     # B reaches tickwire's address without ARP
                self.b("ip", "neigh", "add", self.A_IP, "lladdr", self.mac_a, "dev", self.dev_b, "nud", "permanent")
        except BaseException:
            self.close()
            raise

    def a(self, *cmd, check=True):
        return sh("ip", "netns", "exec", self.ns_a, *cmd, check=check)

    def b(self, *cmd, check=True):
        return sh("ip", "netns", "exec", self.ns_b, *cmd, check=check)

    @staticmethod
    def cmd(ns: str, argv: list[str]) -> list[str]:
        """``argv`` run inside namespace ``ns``."""
        return ["ip", "netns", "exec", ns, *argv]

    def run(self, ns: str, argv: list[str], **kw) -> subprocess.CompletedProcess:
        kw.setdefault("capture_output", True)
        kw.setdefault("text", True)
        return subprocess.run(self.cmd(ns, argv), **kw)

    def popen(self, ns: str, argv: list[str], **kw) -> subprocess.Popen:
        return subprocess.Popen(self.cmd(ns, argv), **kw)

    def xdp_attached(self) -> bool:
        """Whether any XDP program (native or generic) is on tickwire's end."""
        out = self.a("ip", "-d", "link", "show", "dev", self.dev_a)
        return " xdp" in out or "xdpgeneric" in out or "prog/xdp" in out

    def close(self) -> None:
        for ns in (self.ns_a, self.ns_b):
            sh("ip", "netns", "del", ns, check=False)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

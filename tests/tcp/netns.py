"""Two network namespaces joined by a veth pair, unique names, always deleted.

Namespace A holds tickwire's end (``twx<hex>``, no kernel address, so the kernel
there stays silent); namespace B holds the kernel peer's end (``twy<hex>``,
10.78.0.2/24). TX checksum offload is off in B so its frames carry real
checksums. ``inside(ns)`` runs a block of this thread in a namespace (setns(2));
a socket created there stays bound to it.
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
def inside(ns: str):
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


class Veth:
    A_IP, B_IP = "10.78.0.1", "10.78.0.2"

    def __init__(self):
        h = secrets.token_hex(3)
        self.ns_a, self.ns_b = f"twa{h}", f"twb{h}"
        self.dev_a, self.dev_b = f"twx{h}", f"twy{h}"
        try:
            sh("ip", "netns", "add", self.ns_a)
            sh("ip", "netns", "add", self.ns_b)
            sh("ip", "link", "add", self.dev_a, "netns", self.ns_a, "type", "veth", "peer", "name", self.dev_b,
               "netns", self.ns_b)
            for ns in (self.ns_a, self.ns_b):
                sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
            self.a("ip", "link", "set", self.dev_a, "up")
            self.b("ip", "link", "set", "lo", "up")
            self.b("ip", "link", "set", self.dev_b, "up")
            self.b("ip", "addr", "add", f"{self.B_IP}/24", "dev", self.dev_b)
            self.b("ethtool", "-K", self.dev_b, "tx", "off", "gro", "off", "tso", "off", "gso", "off")
            self.a("ethtool", "-K", self.dev_a, "gro", "off", "tso", "off", "gso", "off")
        except BaseException:
            self.close()
            raise

    def a(self, *cmd, check=True):
        return sh("ip", "netns", "exec", self.ns_a, *cmd, check=check)

    def b(self, *cmd, check=True):
        return sh("ip", "netns", "exec", self.ns_b, *cmd, check=check)

    def impair(self, loss_pct: float = 2.0, dup_pct: float = 1.0, reorder_pct: float = 5.0) -> str:
        """Loss, duplication and reordering on both directions of the veth, done by the kernel.

        With sch_netem: ``tc qdisc add dev X root netem delay 1ms loss L% duplicate D% reorder R%``
        on each end. Kernels built without it (CONFIG_NET_SCH_NETEM unset, as on the
        development VMs) get the same three effects from what they do have: an nftables
        netdev *egress* chain drops L% and duplicates D% (``dup to`` the same device), and
        marks R% of frames into a slow HTB class (2 Mbit/s: ~6 ms per full frame) so they
        arrive after later ones. The tickwire port must use qdisc_bypass=no so its frames
        pass the egress hook and the qdisc. Returns which method was used."""
        pairs = ((self.a, self.dev_a), (self.b, self.dev_b))
        probe = self.b("tc", "qdisc", "add", "dev", self.dev_b, "root", "netem", "delay", "1ms", check=False)
        if "unknown" not in probe and self.b("tc", "qdisc", "show", "dev", self.dev_b).find("netem") >= 0:
            for run, dev in pairs:
                run("tc", "qdisc", "replace", "dev", dev, "root", "netem", "delay", "1ms", "loss", f"{loss_pct}%",
                    "duplicate", f"{dup_pct}%", "reorder", f"{reorder_pct}%")
            return "netem"
        for run, dev in pairs:
            run("tc", "qdisc", "add", "dev", dev, "root", "handle", "1:", "htb", "default", "10")
            run("tc", "class", "add", "dev", dev, "parent", "1:", "classid", "1:10", "htb", "rate", "10gbit")
            run("tc", "class", "add", "dev", dev, "parent", "1:", "classid", "1:20", "htb", "rate", "2mbit",
                "ceil", "2mbit")
            rules = f"""table netdev twimpair {{
  chain egress {{
    type filter hook egress device {dev} priority 0;
    ip protocol tcp numgen random mod 1000 < {int(loss_pct * 10)} counter drop
    ip protocol tcp numgen random mod 1000 < {int(dup_pct * 10)} counter dup to {dev}
    ip protocol tcp numgen random mod 1000 < {int(reorder_pct * 10)} counter meta priority set 1:20
  }}
}}
"""
            r = subprocess.run(["ip", "netns", "exec", self.ns_a if dev == self.dev_a else self.ns_b,
                                "nft", "-f", "-"], input=rules, capture_output=True, text=True)
            if r.returncode != 0:
                raise RuntimeError(f"nft: {r.stderr.strip()}")
        return "nft+htb"

    def impaired_packets(self) -> dict[str, int]:
        """Frames dropped / duplicated / delayed by the nft rules (both ends summed); {} with netem."""
        import re
        out = {"drop": 0, "dup": 0, "priority": 0}
        for run in (self.a, self.b):
            text = run("nft", "list", "ruleset", check=False)
            for n, action in re.findall(r"counter packets (\d+) bytes \d+ (drop|dup|meta priority)", text):
                out[action.split()[-1]] += int(n)
        return out

    def close(self) -> None:
        for ns in (self.ns_a, self.ns_b):
            sh("ip", "netns", "del", ns, check=False)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

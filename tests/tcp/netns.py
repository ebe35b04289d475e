"""The TCP tests' veth pair: the shared one (tickwire.bench._veth) with its own
addresses and no static neighbour (tickwire's stack on A answers ARP), plus
kernel-made impairment (loss, duplication, reordering).

Namespace A holds tickwire's end (``twx<hex>``, no kernel address, so the kernel
there stays silent); namespace B holds the kernel peer's end (``twy<hex>``,
10.78.0.2/24).
"""

from __future__ import annotations

from tickwire.bench._veth import VethPair, inside, sh  # noqa: F401 (re-exported for the tests)


class Veth(VethPair):
    A_IP, B_IP = "10.78.0.1", "10.78.0.2"

    def __init__(self):
        super().__init__(static_neigh=False)

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
            r = self.run(self.ns_a if dev == self.dev_a else self.ns_b, ["nft", "-f", "-"], input=rules)
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

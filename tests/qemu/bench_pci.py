"""Host side of ``tickwire bench pci``: boot the guest, flood its NICs, print the guest's results.

    python -m tests.qemu.bench_pci [--viommu] [--seconds 3] [--repeat 3] [--json]

The host floods each NIC with 64-byte UDP datagrams (to 10.77.0.2:7) from one
thread per NIC, as fast as the unix datagram socket accepts them, for the whole
guest run; in the guest ``tickwire bench pci`` measures the kernel driver + UDP
socket echo, then tickwire's driver + ``tickwire echo``, on the same NIC under the
same offered load. TCG emulation: the numbers are the guest CPU cost of each
driver, not what a NIC could do, and the host is a shared 2-core VM.
"""

from __future__ import annotations

import argparse
import json
import threading
import time

from .frames import GUEST_IP, HOST_IP, HOST_MAC
from .guest_image import build, cache_dir
from .prewarm import prewarm
from .vm import Nic, Vm, numba_cache_dir

E_MAC, V_MAC = "52:54:00:12:34:57", "52:54:00:12:34:56"


def flood(wire, dst_mac: str, stop, counts: dict) -> None:
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether
    frame = bytes(Ether(dst=dst_mac, src=HOST_MAC) / IP(src=HOST_IP, dst=GUEST_IP) / UDP(sport=4000, dport=7)
                  / (b"x" * 18))
    sent = back = 0
    sock = wire.sock
    while not stop.is_set():
        for _ in range(64):
            try:
                sock.sendto(frame, wire.qemu_path)
                sent += 1
            except (BlockingIOError, FileNotFoundError, ConnectionRefusedError):
                break
        try:
            while True:
                sock.recv(4096)
                back += 1
        except BlockingIOError:
            pass
        time.sleep(0.0005)
    counts.update(sent=sent, back=back)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--viommu", action="store_true", help="VFIO (vIOMMU boot) instead of iommu=none")
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    image = build()
    prewarm(numba_cache_dir(cache_dir()))
    io = "vfio" if a.viommu else "none"
    specs = {"e1000e": f"pci:0000:00:04.0,iommu={io}",
             "virtio": f"pci:0000:00:03.0,iommu={io}" + ("" if a.viommu else ",virtio=legacy")}
    script = "\n".join(f"step bench_{n} python3 -m tickwire.cli bench pci --port {s} --seconds {a.seconds} "
                       f"--repeat {a.repeat} --json" for n, s in specs.items())
    nics = [Nic("virtio", 3, V_MAC), Nic("e1000e", 4, E_MAC)]
    stop = threading.Event()
    counts = {"virtio": {}, "e1000e": {}}
    with Vm(nics, script, viommu=a.viommu, image=image, timeout=900) as vm:
        ts = [threading.Thread(target=flood, args=(n.wire, n.mac, stop, counts[n.model])) for n in nics]
        for t in ts:
            t.start()
        rc = vm.wait(900)
        stop.set()
        for t in ts:
            t.join()
        results = {}
        for n in specs:
            out = vm.output(f"bench_{n}").strip().splitlines()
            results[n] = json.loads(out[-1]) if out else {"error": vm.errors(f"bench_{n}")[-2000:]}
            results[n]["host_sent"] = counts[n].get("sent")
            results[n]["host_received"] = counts[n].get("back")
    if a.json:
        print(json.dumps({"guest_rc": rc, "iommu": io, "results": results}))
    else:
        for n, r in results.items():
            if "error" in r:
                print(f"{n}: error: {r['error']}")
                continue
            print(f"{n:7s} iommu={io}: tickwire {r['tickwire_mpps']:.4f} Mpps vs kernel UDP echo "
                  f"{r['kernel_mpps']:.4f} Mpps -> {r['ratio']:.2f}x (median of {r['repeat']} x {r['seconds']:g} s)")
        print("caveat: TCG-emulated NICs on a shared 2-core VM: driver CPU cost under a Python flood, not NIC speed")
    return rc


if __name__ == "__main__":
    raise SystemExit(main())

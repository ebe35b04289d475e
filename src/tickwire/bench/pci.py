"""Echo rate of tickwire's PCI driver vs the kernel's own driver (UDP socket echo), same machine, same run.

Meant for the QEMU test guest (tests/qemu/bench_pci.py boots it and floods the NIC
from the host): an emulated NIC measures the CPU cost of each driver, not what the
hardware could do. Order: the kernel phase first (the NIC is bound to its kernel
driver at boot), then tickwire takes the device.

* kernel: the device's kernel driver + an IPv4 address + a UDP socket echo loop
  (Python ``recvfrom``/``sendto`` on port 7); counts datagrams echoed.
* tickwire: ``pci:`` port + the ``tickwire echo`` loop (MAC swap); counts frames echoed.

Both run for ``--seconds`` under the same offered load; each phase is repeated
``--repeat`` times and the median reported.
"""

from __future__ import annotations

from ..cli._common import at_least, positive_float
import json
import os
import socket
import statistics
import subprocess
import time


def add_arguments(p) -> None:
    p.add_argument("--port", required=True, metavar="SPEC", help="pci:DDDD:BB:DD.F[,iommu=...] spec of the NIC")
    p.add_argument("--seconds", type=positive_float, default=3.0, help="measurement window per phase (default 3)")
    p.add_argument("--repeat", type=at_least(1), default=3, help="windows per phase; the median is reported")
    p.add_argument("--ip", default="10.77.0.2/24", help="address the kernel phase gives the NIC")
    p.add_argument("--peer", default="10.77.0.1,02:00:00:00:00:01", help="IP,MAC of the traffic source")
    p.add_argument("--udp-port", type=at_least(1), default=7)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


def _kernel_phase(args, dev) -> list[float]:
    """Bind the kernel driver (if tickwire or nobody holds it), configure, echo, undo."""
    from ..drivers.pci import sysfs
    kernel_driver = {"e1000e": "e1000e", "virtio": "virtio-pci"}[dev.tickwire_driver]
    if dev.driver != kernel_driver:
        sysfs.bind(dev, kernel_driver)
    ifname = None
    deadline = time.monotonic() + 10
    while ifname is None and time.monotonic() < deadline:
        d = sysfs.device(dev.bdf)
        ifname = d.netifs[0].name if d.netifs else None
        time.sleep(0.05)
    if ifname is None:
        raise OSError(f"bench pci: no kernel interface appeared for {dev.bdf}")
    peer_ip, peer_mac = args.peer.split(",")
    _ip("addr", "add", args.ip, "dev", ifname)
    _ip("link", "set", ifname, "up")
    _ip("neigh", "replace", peer_ip, "lladdr", peer_mac, "dev", ifname, "nud", "permanent")
    rates = []
    try:
        deadline = time.monotonic() + 30
        while open(f"/sys/class/net/{ifname}/carrier").read().strip() != "1":
            if time.monotonic() > deadline:
                raise OSError(f"bench pci: {ifname} has no carrier")
            time.sleep(0.05)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        s.bind((args.ip.split("/")[0], args.udp_port))
        s.settimeout(0.2)
        buf = bytearray(2048)
        for _ in range(args.repeat):
            n, t_end = 0, time.monotonic() + args.seconds
            while time.monotonic() < t_end:
                try:
                    k, addr = s.recvfrom_into(buf)
                except socket.timeout:
                    continue
                s.sendto(memoryview(buf)[:k], addr)
                n += 1
            rates.append(n / args.seconds)
        s.close()
    finally:
        _ip("addr", "flush", "dev", ifname)
        _ip("link", "set", ifname, "down")
    return rates


def _tickwire_phase(args) -> tuple[list[float], dict]:
    from ..drivers.port import open_port
    from ..mem.mempool import Mempool
    from ..tools.echo import run_echo
    rates, last = [], {}
    with open_port(args.port, Mempool(8192, 2048 + 128, 128)) as port:
        for _ in range(args.repeat):
            before = int(port.counters.array[2])          # tx_packets
            last = run_echo(port, duration=args.seconds, link_timeout=10)
            rates.append((int(port.counters.array[2]) - before) / args.seconds)
    return rates, last


def run(args) -> int:
    from ..drivers.pci import sysfs
    from ..drivers.spec import parse_spec
    scheme, kv = parse_spec(args.port)
    if scheme != "pci":
        raise ValueError("bench pci: --port must be a pci: spec")
    dev = sysfs.device(kv.get("", ""))
    if dev.tickwire_driver is None:
        raise ValueError(f"bench pci: {dev.bdf} is not a NIC tickwire drives")
    kernel = _kernel_phase(args, dev)
    tw, stats = _tickwire_phase(args)
    k_med, t_med = statistics.median(kernel), statistics.median(tw)
    result = {
        "device": dev.bdf, "driver": dev.tickwire_driver, "spec": args.port, "seconds": args.seconds,
        "repeat": args.repeat, "kernel_mpps": k_med / 1e6, "tickwire_mpps": t_med / 1e6,
        "ratio": (t_med / k_med) if k_med else None, "kernel_runs_pps": kernel, "tickwire_runs_pps": tw,
        "tickwire_drops": {k: v for k, v in stats.items() if ("drop" in k or "nobuf" in k or "full" in k) and v},
        "caveat": "emulated NIC: measures driver CPU cost under the host's offered load, not hardware speed",
        "cpus": os.cpu_count(),
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{dev.bdf} ({dev.tickwire_driver}): tickwire {t_med / 1e6:.4f} Mpps, kernel UDP echo "
              f"{k_med / 1e6:.4f} Mpps, ratio {result['ratio'] and round(result['ratio'], 2)}x "
              f"(median of {args.repeat} x {args.seconds:g} s; {result['caveat']})")
    return 0

"""PCI devices as Linux shows them in sysfs: discovery, driver binding, safety checks.

Everything here is control plane (plain Python). Paths follow
Documentation/ABI/testing/sysfs-bus-pci; the bind dance is the one vfio-pci's
documentation gives (Documentation/driver-api/vfio.rst, "VFIO Usage Example").
"""

from __future__ import annotations

import fcntl
import ipaddress
import os
import re
import socket
import struct
from dataclasses import dataclass, field

from ..spec import SpecError

SYSFS_PCI = "/sys/bus/pci/devices"
_BDF = re.compile(r"^(?:([0-9a-fA-F]{4}):)?([0-9a-fA-F]{2}):([0-9a-fA-F]{2})\.([0-7])$")

# (vendor, device) -> driver name. 82574L is what QEMU emulates as "e1000e";
# 0x1000 is transitional virtio-net, 0x1041 modern-only (virtio 1.2 §4.1.2.1).
KNOWN = {
    (0x8086, 0x10D3): "e1000e",
    (0x1AF4, 0x1000): "virtio",
    (0x1AF4, 0x1041): "virtio",
}


def normalize_bdf(text: str) -> str:
    """'00:04.0' or '0000:00:04.0' -> '0000:00:04.0'; anything else is a SpecError."""
    m = _BDF.match(text.strip())
    if not m:
        raise SpecError(f"pci: {text!r} is not a PCI address (expected DDDD:BB:DD.F, e.g. 0000:00:04.0)")
    dom, bus, dev, fn = m.groups()
    return f"{(dom or '0000').lower()}:{bus.lower()}:{dev.lower()}.{fn}"


def _read(path: str, default: str = "") -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return default


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


@dataclass
class NetIf:
    name: str
    up: bool
    addresses: list[str] = field(default_factory=list)
    default_route: bool = False

    @property
    def busy(self) -> str:
        """Why the kernel is using this interface ('' when it is idle)."""
        why = []
        if self.default_route:
            why.append("carries the default route")
        if self.addresses:
            why.append("has address(es) " + ", ".join(self.addresses))
        if self.up:
            why.append("is up")
        return "; ".join(why)


@dataclass
class PciDevice:
    bdf: str
    vendor: int
    device: int
    class_code: int
    driver: str              # kernel driver bound now ('' if none)
    iommu_group: int | None  # None: no IOMMU group (no IOMMU, or iommu off)
    netifs: list[NetIf]

    @property
    def path(self) -> str:
        return f"{SYSFS_PCI}/{self.bdf}"

    @property
    def tickwire_driver(self) -> str | None:
        return KNOWN.get((self.vendor, self.device))

    @property
    def is_network(self) -> bool:
        return (self.class_code >> 16) == 0x02


def _ipv4_address(ifname: str) -> str | None:
    """Primary IPv4 address via SIOCGIFADDR (0x8915); None when it has none."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        req = struct.pack("16s16x", ifname.encode()[:15])
        res = fcntl.ioctl(s.fileno(), 0x8915, req)
        return socket.inet_ntoa(res[20:24])
    except OSError:
        return None
    finally:
        s.close()


def _ipv6_addresses(ifname: str) -> list[str]:
    out = []
    for line in _read("/proc/net/if_inet6").splitlines():
        parts = line.split()
        if len(parts) >= 6 and parts[5] == ifname:
            out.append(str(ipaddress.IPv6Address(bytes.fromhex(parts[0]))))
    return out


def _default_route_ifs() -> set[str]:
    ifs = set()
    for line in _read("/proc/net/route").splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 8 and parts[1] == "00000000" and parts[7] == "00000000":
            ifs.add(parts[0])
    for line in _read("/proc/net/ipv6_route").splitlines():
        parts = line.split()
        if len(parts) >= 10 and parts[0] == "0" * 32 and parts[1] == "00":
            ifs.add(parts[9])
    return ifs


def netif(name: str) -> NetIf:
    flags = int(_read(f"/sys/class/net/{name}/flags", "0"), 16)
    addrs = [a for a in [_ipv4_address(name)] if a] + _ipv6_addresses(name)
    return NetIf(name, bool(flags & 0x1), addrs, name in _default_route_ifs())


def _netifs_under(devpath: str) -> list[str]:
    """Kernel interfaces anywhere below the PCI device: virtio-net's sit one level down
    (<bdf>/virtio0/net/eth0), so <bdf>/net alone would miss them."""
    out = []
    try:
        names = os.listdir("/sys/class/net")
    except OSError:
        return out
    for name in names:
        if os.path.realpath(f"/sys/class/net/{name}").startswith(devpath + "/"):
            out.append(name)
    return sorted(out)


def device(bdf: str) -> PciDevice:
    bdf = normalize_bdf(bdf)
    path = f"{SYSFS_PCI}/{bdf}"
    if not os.path.isdir(path):
        raise SpecError(f"pci: no PCI device {bdf} (see /sys/bus/pci/devices, or `tickwire doctor`)")
    drv = os.path.realpath(f"{path}/driver") if os.path.exists(f"{path}/driver") else ""
    grp = os.path.realpath(f"{path}/iommu_group") if os.path.exists(f"{path}/iommu_group") else ""
    names = _netifs_under(os.path.realpath(path))
    return PciDevice(bdf, int(_read(f"{path}/vendor", "0"), 16), int(_read(f"{path}/device", "0"), 16),
                     int(_read(f"{path}/class", "0"), 16), os.path.basename(drv),
                     int(os.path.basename(grp)) if grp else None, [netif(n) for n in names])


def devices() -> list[PciDevice]:
    try:
        names = sorted(os.listdir(SYSFS_PCI))
    except OSError:
        return []
    return [device(n) for n in names]


def check_idle(dev: PciDevice, force: bool) -> None:
    """Refuse to take a NIC the kernel is using (issue 8 'Safety'), unless forced."""
    for nif in dev.netifs:
        why = nif.busy
        if why and not force:
            raise PermissionError(
                f"pci: {dev.bdf} is kernel interface {nif.name}, which {why}; taking it would cut "
                f"that traffic. Bring it down and remove its addresses, or pass force=yes")


def unbind(dev: PciDevice) -> None:
    if dev.driver:
        _write(f"{dev.path}/driver/unbind", dev.bdf)
        dev.driver = ""


def bind(dev: PciDevice, driver: str) -> None:
    """Bind to ``driver`` through driver_override (so no other device id gets claimed)."""
    if dev.driver == driver:
        return
    unbind(dev)
    _write(f"{dev.path}/driver_override", driver)
    try:
        _write("/sys/bus/pci/drivers_probe", dev.bdf)
    finally:
        _write(f"{dev.path}/driver_override", "\n")
    dev.driver = os.path.basename(os.path.realpath(f"{dev.path}/driver")) if os.path.exists(
        f"{dev.path}/driver") else ""
    if dev.driver != driver:
        raise OSError(f"pci: binding {dev.bdf} to {driver} failed (is the {driver} module loaded?)")

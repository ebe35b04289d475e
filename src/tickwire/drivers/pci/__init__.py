"""User-space PCI NIC drivers (ixy style, from Python with a Numba hot path).

Port spec::

    pci:DDDD:BB:DD.F[,driver=e1000e|virtio][,iommu=vfio|none][,force=yes][,promisc=yes]

* ``driver``: picked from the PCI vendor/device id when omitted.
* ``iommu=vfio`` (default when the device has an IOMMU group): bind to vfio-pci, map
  DMA memory through the IOMMU. ``iommu=none``: the ixy/sysfs way (resource mmap,
  physical addresses from pagemap); UNSAFE, never the default.
* ``virtio=modern|legacy``: which virtio interface (default: modern when the device has one).
* ``force=yes``: take a NIC even though the kernel uses it (up, addressed, default route).

``list_nics()`` is what ``tickwire doctor`` shows. See docs/pci.md.
"""

from __future__ import annotations

from ..spec import SpecArgs, SpecError
from . import sysfs

DRIVERS = ("e1000e", "virtio")


def list_nics() -> list[dict]:
    """Every PCI network device with what tickwire could do with it (for ``tickwire doctor``).

    Keys: bdf, vendor, device, driver (tickwire's, or None), kernel_driver, iommu_group,
    interfaces (name, up, addresses, default_route), usable (bool), reason (str).
    """
    out = []
    for dev in sysfs.devices():
        if not dev.is_network:
            continue
        ours = dev.tickwire_driver
        busy = "; ".join(f"{n.name} {n.busy}" for n in dev.netifs if n.busy)
        if ours is None:
            usable, reason = False, f"no tickwire driver for {dev.vendor:04x}:{dev.device:04x}"
        elif busy:
            usable, reason = False, f"in use by the kernel ({busy}); force=yes overrides"
        else:
            usable = True
            reason = ("iommu=vfio" if dev.iommu_group is not None
                      else "no IOMMU group: only iommu=none (unsafe sysfs path)")
        out.append({"bdf": dev.bdf, "vendor": f"{dev.vendor:04x}", "device": f"{dev.device:04x}",
                    "driver": ours, "kernel_driver": dev.driver or None, "iommu_group": dev.iommu_group,
                    "interfaces": [{"name": n.name, "up": n.up, "addresses": n.addresses,
                                    "default_route": n.default_route} for n in dev.netifs],
                    "usable": usable, "reason": reason})
    return out


def open(args: SpecArgs, pool, spec: str):
    bdf = args.str("")
    driver = args.choice("driver", DRIVERS + ("auto",), "auto")
    iommu = args.choice("iommu", ("vfio", "none", "auto"), "auto")
    force = args.bool("force")
    promisc = args.bool("promisc")
    allmulti = args.bool("allmulti")
    link_timeout = args.int("link_timeout", 5, lo=0, hi=60)
    mode = args.choice("virtio", ("auto", "modern", "legacy"), "auto")
    args.finish()
    dev = sysfs.device(bdf)
    if driver == "auto":
        driver = dev.tickwire_driver
        if driver is None:
            raise SpecError(f"pci: {dev.bdf} is {dev.vendor:04x}:{dev.device:04x}, which no tickwire driver "
                            f"knows; supported: e1000e (8086:10d3), virtio (1af4:1000/1041)")
    if iommu == "auto":
        if dev.iommu_group is None:
            raise OSError(f"pci: {dev.bdf} has no IOMMU group, so VFIO cannot isolate it; "
                          "pass iommu=none to use the unsafe sysfs/pagemap path")
        iommu = "vfio"
    sysfs.check_idle(dev, force)
    if driver == "e1000e":
        from .e1000e_port import E1000ePort
        return E1000ePort(dev, iommu, pool, spec, promisc=promisc, allmulti=allmulti, link_timeout=link_timeout)
    from .virtio_port import VirtioPort
    return VirtioPort(dev, iommu, pool, spec, mode=mode, promisc=promisc, allmulti=allmulti,
                      link_timeout=link_timeout)

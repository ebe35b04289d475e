"""Builds (and caches) the QEMU guest the PCI driver tests boot.

Guest = Debian's own kernel (.deb fetched with ``apt-get download``) + a busybox
initramfs whose /init mounts the host's root read-only over 9p and chroots into
an overlay of it, so the guest runs the host's Python, numpy and tickwire.
Recipe and timings: shared/notes/qemu-guest.md §2.

Cache layout (``cache_dir()``):
    debs/                   the downloaded linux-image .deb (pinned by file name)
    <kver>/vmlinux          uncompressed ELF kernel (boots ~3-5 s faster under TCG than the bzImage)
    <kver>/initramfs.cpio.gz
"""

from __future__ import annotations

import glob
import gzip
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

# The guest loads exactly these (and their dependencies, resolved by modprobe).
MODULES = ("virtio_pci", "virtio_net", "e1000e", "9p", "9pnet_virtio", "overlay",
           "vfio-pci", "vfio_iommu_type1")

_XZ_MAGIC = b"\xfd7zXZ\x00"


def cache_dir() -> Path:
    env = os.environ.get("TICKWIRE_QEMU_CACHE")
    if env:
        return Path(env)
    if os.geteuid() == 0:
        return Path("/var/cache/tickwire-qemu")
    return Path.home() / ".cache" / "tickwire-qemu"


@dataclass
class GuestImage:
    kver: str
    vmlinux: Path
    initrd: Path


def _run(cmd, **kw) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw).stdout


def _kernel_package() -> str:
    """``linux-image-amd64`` is a metapackage: resolve the concrete ABI package."""
    out = _run(["apt-cache", "depends", "linux-image-amd64"])
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("Depends:") and "linux-image-" in line:
            return line.split()[-1]
    raise RuntimeError(f"cannot resolve linux-image-amd64: {out!r}")


def _download_kernel(debs: Path) -> Path:
    debs.mkdir(parents=True, exist_ok=True)
    have = sorted(debs.glob("linux-image-*.deb"))
    if have:
        return have[-1]   # pinned: the ABI package is superseded upstream (notes §2.2)
    pkg = _kernel_package()
    subprocess.run(["apt-get", "download", pkg], cwd=debs, check=True, capture_output=True)
    have = sorted(debs.glob("linux-image-*.deb"))
    if not have:
        raise RuntimeError(f"apt-get download {pkg} produced no .deb in {debs}")
    return have[-1]


def _extract_vmlinux(bzimage: Path, out: Path) -> None:
    """The bzImage payload is an XZ stream: cut from its magic and decompress (notes §2.3)."""
    data = bzimage.read_bytes()
    at = data.find(_XZ_MAGIC)
    if at < 0:
        raise RuntimeError(f"{bzimage}: no XZ payload")
    proc = subprocess.run(["xz", "-dc", "--single-stream"], input=data[at:], capture_output=True)
    # xz exits non-zero because of the trailing data after the stream; the ELF is complete.
    if not proc.stdout.startswith(b"\x7fELF"):
        raise RuntimeError(f"xz did not yield an ELF vmlinux: {proc.stderr[:200]!r}")
    out.write_bytes(proc.stdout)


def _module_order(root: Path, kver: str) -> list[str]:
    subprocess.run(["depmod", "-b", str(root), kver], check=True)
    order: list[str] = []
    for mod in MODULES:
        out = _run(["modprobe", "-d", str(root), "-S", kver, "--show-depends", mod])
        for line in out.splitlines():
            parts = line.split()
            if parts and parts[0] == "insmod" and parts[1] not in order:
                order.append(parts[1])
    return order


_INIT = r"""#!/bin/busybox sh
# Guest /init (notes §2): host root over 9p, overlay on tmpfs, run /twshare/<run>/cmd.sh.
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs dev /dev
for m in $(cat /modules.order); do insmod /mods/$(basename $m) 2>/dev/null; done
mkdir -p /host /ov /newroot
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=loose,ro hostroot /host
mount -t tmpfs -o size=256m tmpfs /ov; mkdir -p /ov/upper /ov/work
mount -t overlay -o lowerdir=/host,upperdir=/ov/upper,workdir=/ov/work overlay /newroot
R=/newroot
mount -t proc proc $R/proc; mount -t sysfs sysfs $R/sys; mount -t devtmpfs dev $R/dev
mkdir -p $R/dev/pts $R/dev/shm $R/dev/hugepages $R/run $R/lib/modules/KVER
mount -t devpts devpts $R/dev/pts; mount -t tmpfs tmpfs $R/dev/shm
mount -t hugetlbfs -o pagesize=2M none $R/dev/hugepages; mount -t tmpfs tmpfs $R/run
mount -t tmpfs tmpfs $R/tmp
mount --bind /lib/modules/KVER $R/lib/modules/KVER
SHARE=$(sed -n 's/.*twshare=\([^ ]*\).*/\1/p' /proc/cmdline)
RUN=$(sed -n 's/.*twrun=\([^ ]*\).*/\1/p' /proc/cmdline)
mkdir -p $R$SHARE
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=none twshare $R$SHARE
echo "TW-GUEST-READY" > /dev/ttyS0
chroot $R /bin/sh $RUN/cmd.sh > /dev/ttyS1 2> /dev/ttyS2
echo "TW-GUEST-EXIT $?" > /dev/ttyS0
sync
poweroff -f
"""


def build(cache: Path | None = None) -> GuestImage:
    cache = cache or cache_dir()
    deb = _download_kernel(cache / "debs")
    # linux-image-6.1.0-56-amd64_6.1.192-2_amd64.deb -> kver 6.1.0-56-amd64
    kver = deb.name.split("_")[0].removeprefix("linux-image-")
    out = cache / kver
    vmlinux, initrd = out / "vmlinux", out / "initramfs.cpio.gz"
    if vmlinux.exists() and initrd.exists():
        return GuestImage(kver, vmlinux, initrd)
    out.mkdir(parents=True, exist_ok=True)
    busybox = "/bin/busybox"   # from busybox-static; the busybox package is dynamically linked
    if subprocess.run(["dpkg", "-s", "busybox-static"], capture_output=True).returncode != 0:
        raise RuntimeError("busybox-static is not installed (scripts/apt-packages.txt)")
    with tempfile.TemporaryDirectory(prefix="tw-guest-") as tmp:
        tmp = Path(tmp)
        root = tmp / "root"
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
        _extract_vmlinux(root / "boot" / f"vmlinuz-{kver}", tmp / "vmlinux")
        order = _module_order(root, kver)
        ird = tmp / "initrd"
        for d in ("bin", "proc", "sys", "dev", "mods", f"lib/modules/{kver}"):
            (ird / d).mkdir(parents=True, exist_ok=True)
        shutil.copy2(busybox, ird / "bin" / "busybox")
        for mod in order:
            shutil.copy2(mod, ird / "mods" / os.path.basename(mod))
        # The chrooted system's kmod needs the modules tree of this kernel (notes §2).
        for f in glob.glob(str(root / "lib" / "modules" / kver / "modules.*")):
            shutil.copy2(f, ird / "lib" / "modules" / kver)
        (ird / "modules.order").write_text("\n".join(order) + "\n")
        (ird / "init").write_text(_INIT.replace("KVER", kver))
        (ird / "init").chmod(0o755)
        files = _run(["sh", "-c", "find . | sort"], cwd=ird)
        cpio = subprocess.run(["cpio", "-o", "-H", "newc", "--quiet"], cwd=ird, input=files.encode(),
                              capture_output=True, check=True).stdout
        (tmp / "initrd.gz").write_bytes(gzip.compress(cpio, compresslevel=1))
        shutil.move(tmp / "vmlinux", vmlinux)
        shutil.move(tmp / "initrd.gz", initrd)
    return GuestImage(kver, vmlinux, initrd)


if __name__ == "__main__":
    print(build())

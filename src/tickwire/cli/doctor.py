"""``tickwire doctor [--port SPEC] [--json]``: what a low-latency host needs, in plain words.

Each check returns (status, what, detail, fix). Status: ok, warn (works, but slower
or less safe than it could be), fail (this port/feature cannot work), info.
With ``--port xdp:dev=IF...`` / ``packet:dev=IF`` the NIC-specific checks run. XDP
native / zero-copy support is judged from the driver name, or with ``--probe``
actually *tried* (a trivial XDP_PASS program attached through a bpf_link that is
closed at once; an AF_XDP bind with XDP_ZEROCOPY). The probe is opt-in because on
some NICs (i40e, mlx5, ...) attaching XDP reconfigures the rings: a short outage.
Exit code 1 when any check fails.
"""

from __future__ import annotations

import errno
import json
import os
import platform
import resource
import shutil
import socket
import subprocess

OK, WARN, FAIL, INFO = "ok", "warn", "fail", "info"
CAPS = {"CAP_NET_ADMIN": 12, "CAP_NET_RAW": 13, "CAP_IPC_LOCK": 14, "CAP_SYS_ADMIN": 21, "CAP_BPF": 39}
ZC_DRIVERS = ("ice", "i40e", "ixgbe", "igc", "igb", "mlx5_core", "stmmac", "bnxt_en", "virtio_net", "idpf")


def _read(path: str, default: str | None = None) -> str | None:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return default


def _cap_eff() -> int:
    for line in (_read("/proc/self/status", "") or "").splitlines():
        if line.startswith("CapEff:"):
            return int(line.split()[1], 16)
    return 0


def check_privileges():
    eff = _cap_eff()
    missing = [n for n, bit in CAPS.items() if not eff >> bit & 1]
    need = [m for m in missing if m != "CAP_SYS_ADMIN"]
    if not need:
        return OK, "privileges", "running with the capabilities XDP/AF_PACKET/hugepages need" + \
            (" (root)" if os.geteuid() == 0 else ""), ""
    return FAIL, "privileges", f"missing {', '.join(need)}: bypass ports (xdp:, packet:, pci:) will be refused", \
        "run as root, or: setcap cap_net_admin,cap_net_raw,cap_bpf,cap_ipc_lock+ep $(readlink -f $(which python3))"


def check_hugepages():
    mi = {}
    for line in (_read("/proc/meminfo", "") or "").splitlines():
        k, _, v = line.partition(":")
        mi[k] = v.strip()
    total, free = int(mi.get("HugePages_Total", "0")), int(mi.get("HugePages_Free", "0"))
    size = mi.get("Hugepagesize", "?")
    gig = _read("/sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages", "0")
    if total == 0:
        return WARN, "hugepages", f"none reserved (page size {size}); packet memory uses 4 KiB pages (more TLB misses)", \
            "echo 64 > /proc/sys/vm/nr_hugepages   (or hugepages=64 on the kernel command line)"
    return OK, "hugepages", f"{free} of {total} x {size} free" + (f", {gig} x 1 GiB" if gig not in ("0", None) else ""), ""


def _cpulist(s: str | None) -> set[int]:
    out: set[int] = set()
    for part in filter(None, (s or "").split(",")):
        lo, _, hi = part.partition("-")
        out.update(range(int(lo), int(hi or lo) + 1))
    return out


def check_isolation():
    iso = _cpulist(_read("/sys/devices/system/cpu/isolated", ""))
    cmd = _read("/proc/cmdline", "") or ""
    nohz = _cpulist(_read("/sys/devices/system/cpu/nohz_full", ""))
    n = os.cpu_count() or 1
    if not iso:
        return WARN, "isolated cores", f"no isolated cores ({n} CPUs); the poll loop shares its core with everything else", \
            "boot with isolcpus=N nohz_full=N rcu_nocbs=N and pin the loop there (taskset -c N)"
    extra = "" if nohz >= iso else " (nohz_full does not cover them: the tick still interrupts)"
    return (OK if not extra else WARN), "isolated cores", f"isolated: {sorted(iso)}{extra}", \
        "" if not extra else f"add nohz_full={','.join(map(str, sorted(iso)))} to the kernel command line ({cmd[:40]}...)"


def check_governor():
    govs = {}
    for cpu in range(os.cpu_count() or 1):
        g = _read(f"/sys/devices/system/cpu/cpu{cpu}/cpufreq/scaling_governor")
        if g:
            govs[cpu] = g
    if not govs:
        return INFO, "cpu frequency", "no cpufreq interface (typical in a VM: the host decides)", ""
    slow = sorted(c for c, g in govs.items() if g != "performance")
    if slow:
        return WARN, "cpu frequency", f"governor not 'performance' on CPUs {slow} ({govs[slow[0]]})", \
            "cpupower frequency-set -g performance   (or echo performance > .../cpufreq/scaling_governor)"
    return OK, "cpu frequency", "governor 'performance' on all CPUs", ""


def check_memlock():
    soft, hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    lock_cap = _cap_eff() >> CAPS["CAP_IPC_LOCK"] & 1
    fmt = lambda v: "unlimited" if v == resource.RLIM_INFINITY else f"{v >> 20} MiB" if v >= 1 << 20 else f"{v >> 10} KiB"
    if lock_cap:
        return OK, "memlock", f"limit {fmt(soft)}, but CAP_IPC_LOCK lifts it for UMEM and pinned pools", ""
    if soft != resource.RLIM_INFINITY and soft < 64 << 20:
        return WARN, "memlock", f"limit {fmt(soft)}: an AF_XDP UMEM or locked pool larger than that is refused", \
            "ulimit -l unlimited (or LimitMEMLOCK=infinity in the systemd unit)"
    return OK, "memlock", f"limit {fmt(soft)}", ""


def check_kernel():
    s = None
    try:
        s = socket.socket(44, socket.SOCK_RAW, 0)
        xsk = "AF_XDP available"
        status = OK
    except OSError as e:
        if e.errno in (errno.EAFNOSUPPORT, errno.EINVAL):
            return FAIL, "kernel", f"kernel {platform.release()}: no AF_XDP sockets (CONFIG_XDP_SOCKETS off)", \
                "use udp:/packet: ports, or a kernel built with CONFIG_XDP_SOCKETS=y"
        xsk, status = f"AF_XDP present (socket: {e.strerror})", OK
    finally:
        if s is not None:
            s.close()
    bp = _read("/proc/sys/net/core/busy_poll", "0")
    return status, "kernel", f"{platform.release()}: {xsk}; net.core.busy_poll={bp} us" + \
        ("" if bp != "0" else " (kernel-socket ports can still busy-poll in user space)"), ""


def check_iommu():
    groups = os.listdir("/sys/kernel/iommu_groups") if os.path.isdir("/sys/kernel/iommu_groups") else []
    vfio = os.path.exists("/dev/vfio/vfio")
    noiommu = _read("/sys/module/vfio/parameters/enable_unsafe_noiommu_mode", "N")
    cmd = _read("/proc/cmdline", "") or ""
    if groups and vfio:
        return OK, "iommu/vfio", f"{len(groups)} IOMMU groups, /dev/vfio/vfio present: pci: ports can use VFIO", ""
    detail = (f"{len(groups)} IOMMU groups" if groups else "no IOMMU groups (IOMMU off or absent)") + \
        (", /dev/vfio/vfio present" if vfio else ", no /dev/vfio/vfio") + \
        (", noiommu mode on" if noiommu == "Y" else "")
    fix = "boot with intel_iommu=on iommu=pt (or amd_iommu=on) and modprobe vfio-pci"
    if "nomodule" in cmd:
        fix += "; this kernel boots with 'nomodule', so vfio must be built in"
    return WARN, "iommu/vfio", detail + ": pci: ports need VFIO (or QEMU's emulated devices for tests)", fix


def _ethtool(*args) -> str | None:
    exe = shutil.which("ethtool")
    if exe is None:
        return None
    r = subprocess.run([exe, *args], capture_output=True, text=True)
    return r.stdout if r.returncode == 0 else None


NATIVE_DRIVERS = ZC_DRIVERS + ("veth", "tun", "bnxt_en", "nfp", "qede", "ena", "mlx4_en", "sfc", "thunder", "hv_netvsc")


def _guess_xdp(dev: str, drv: str | None):
    if drv in NATIVE_DRIVERS:
        nat = (OK, f"xdp {dev} native", f"driver {drv} implements native XDP (not probed; --probe tries it)", "")
    else:
        nat = (WARN, f"xdp {dev} native", f"driver {drv or 'unknown'} is not known to do native XDP: xdp: will "
               "probably run in generic mode (not probed; --probe tries it)", "")
    if drv in ZC_DRIVERS:
        zc = (OK, f"xdp {dev} zero-copy", f"driver {drv} supports AF_XDP zero-copy (not probed)", "")
    else:
        zc = (WARN, f"xdp {dev} zero-copy", f"driver {drv or 'unknown'}: no AF_XDP zero-copy, xdp: copies each frame"
              " (veth never does zero-copy)", "a NIC whose driver implements XSK zero-copy (ice, i40e, mlx5, igc, ...)")
    return [nat, zc]


def check_nic(dev: str, probe: bool = False):
    out = []
    if not os.path.exists(f"/sys/class/net/{dev}"):
        try:
            socket.if_nametoindex(dev)
        except OSError:
            return [(FAIL, f"nic {dev}", "interface not found in this network namespace",
                     "check `ip link`; inside a namespace run: ip netns exec NS tickwire doctor --port ...")]
    drv = os.path.basename(os.readlink(f"/sys/class/net/{dev}/device/driver")) \
        if os.path.islink(f"/sys/class/net/{dev}/device/driver") else None
    info = _ethtool("-i", dev) or ""
    for line in info.splitlines():
        if line.startswith("driver:"):
            drv = line.split(":", 1)[1].strip()
    out.append((INFO, f"nic {dev}", f"driver {drv or 'unknown'}", ""))
    ch = _ethtool("-l", dev)
    if ch and "Current hardware settings" in ch:
        cur = ch.split("Current hardware settings:")[1]
        vals = {k.strip(): v.strip() for k, _, v in (ln.partition(":") for ln in cur.splitlines()) if v.strip()}
        out.append((INFO, f"nic {dev} queues", ", ".join(f"{k} {v}" for k, v in vals.items()
                                                            if k in ("RX", "TX", "Combined")), ""))
    k = _ethtool("-k", dev) or ""
    feats = {a.strip(): b.strip().split()[0] for a, _, b in (ln.partition(":") for ln in k.splitlines()) if b.strip()}
    on = [f for f in ("generic-receive-offload", "large-receive-offload", "tcp-segmentation-offload",
                      "generic-segmentation-offload") if feats.get(f) == "on"]
    if on:
        out.append((WARN, f"nic {dev} offloads", f"{', '.join(on)} on: frames are merged/split, adding latency and "
                    "(GRO/LRO) hiding packet boundaries", f"ethtool -K {dev} gro off lro off tso off gso off"))
    else:
        out.append((OK, f"nic {dev} offloads", "GRO/LRO/TSO/GSO off", ""))
    # IRQ affinity: the NIC's interrupts should not land on the isolated poll cores.
    iso = _cpulist(_read("/sys/devices/system/cpu/isolated", ""))
    irqs = []
    for line in (_read("/proc/interrupts", "") or "").splitlines():
        if dev in line or (drv and drv in line):
            irqs.append(line.split(":")[0].strip())
    if irqs:
        bad = [i for i in irqs if _cpulist(_read(f"/proc/irq/{i}/smp_affinity_list", "")) & iso]
        if bad:
            out.append((WARN, f"nic {dev} irqs", f"IRQs {bad} may run on isolated cores {sorted(iso)}",
                        f"echo <housekeeping cpus> > /proc/irq/N/smp_affinity_list for N in {bad}; stop irqbalance"))
        else:
            out.append((OK, f"nic {dev} irqs", f"{len(irqs)} IRQs, none on isolated cores", ""))
    else:
        out.append((INFO, f"nic {dev} irqs", "no IRQ lines (virtual device such as veth: the sender's CPU does the work)", ""))
    out.extend(_probe_xdp(dev, drv) if probe else _guess_xdp(dev, drv))
    return out


def _probe_xdp(dev: str, drv: str | None):
    """Attach a 2-instruction XDP_PASS program natively through a bpf_link and detach it
    at once; then try an AF_XDP bind with XDP_ZEROCOPY on queue 0."""
    from ..drivers.xdp import bpf
    from ..drivers.xdp.asm import Asm
    res = []
    try:
        ifindex = socket.if_nametoindex(dev)
    except OSError:
        return res
    a = Asm()
    a.alu64_imm("mov", 0, bpf.XDP_PASS)
    a.exit()
    try:
        prog = bpf.prog_load_xdp(a.assemble(), "tw_probe")
    except OSError as e:
        return [(FAIL, f"xdp {dev}", f"cannot load an XDP program: {e.strerror}", "run as root / grant CAP_BPF")]
    try:
        try:
            link = bpf.link_create_xdp(prog, ifindex, bpf.XDP_FLAGS_DRV_MODE)
            os.close(link)
            res.append((OK, f"xdp {dev} native", "native (driver) XDP attaches", ""))
        except OSError as e:
            if e.errno in (errno.EBUSY, errno.EEXIST):
                res.append((WARN, f"xdp {dev} native", "an XDP program is already attached; cannot probe",
                            f"ip link set dev {dev} xdp off (if it is stale)"))
            else:
                res.append((WARN, f"xdp {dev} native", f"native XDP refused ({e.strerror}); xdp: will run in "
                            "generic mode (slower, copies every frame)", "use mode=generic, or a driver with XDP support"))
    finally:
        os.close(prog)
    res.append(_probe_zerocopy(dev, ifindex, drv))
    return res


def _probe_zerocopy(dev, ifindex, drv):
    import mmap

    from ..drivers.xdp.xsk import XDP_ZEROCOPY, XskSocket
    m = mmap.mmap(-1, 64 * 2048)
    import numpy as np
    buf = np.frombuffer(m, np.uint8)
    try:
        x = XskSocket(buf.ctypes.data, 64 * 2048, 2048, 8, 8, 8, 8)
    except OSError as e:
        return (WARN, f"xdp {dev} zero-copy", f"cannot create an AF_XDP socket to probe ({e.strerror})", "")
    try:
        x.bind(ifindex, 0, XDP_ZEROCOPY)
        return (OK, f"xdp {dev} zero-copy", "AF_XDP zero-copy supported on queue 0", "")
    except OSError as e:
        if e.errno == errno.EOPNOTSUPP:
            hint = "" if drv not in ZC_DRIVERS else f" (driver {drv} can do it with a recent kernel/firmware)"
            return (WARN, f"xdp {dev} zero-copy", f"not supported: xdp: will copy each frame{hint}",
                    "a NIC whose driver implements XSK zero-copy (ice, i40e, mlx5, igc, ...); veth never does")
        if e.errno == errno.EBUSY:
            return (INFO, f"xdp {dev} zero-copy", "queue 0 already has an AF_XDP socket: cannot probe", "")
        return (WARN, f"xdp {dev} zero-copy", f"probe failed: {e.strerror}", "")
    finally:
        x.close()
        del buf
        try:
            m.close()
        except BufferError:
            pass


def check_pci_nics(bdf: str | None = None):
    """PCI network devices and whether tickwire's user-space drivers (pci:) could take them
    (``tickwire.drivers.pci.list_nics``: driver match, kernel use, IOMMU group)."""
    try:
        from ..drivers.pci import list_nics
        nics = list_nics()
    except Exception as e:          # sysfs absent or unreadable: say so, never crash the doctor
        return [(INFO, "pci nics", f"cannot list PCI devices: {e}", "")]
    if bdf is not None:
        match = [n for n in nics if n["bdf"] == bdf]
        if not match:
            return [(FAIL, f"pci {bdf}", "no PCI network device at this address",
                     "list them with: tickwire doctor (pci nics) or lspci -D | grep -i ether")]
        n = match[0]
        if not n["usable"]:
            return [(FAIL, f"pci {bdf}", f"{n['vendor']}:{n['device']} (kernel driver {n['kernel_driver']}): "
                     f"{n['reason']}", "take the NIC away from the kernel (ip link set DEV down; unbind) or use "
                     "force=yes; reserve it for tickwire with vfio-pci")]
        return [(OK, f"pci {bdf}", f"{n['vendor']}:{n['device']} usable with tickwire's {n['driver']} driver "
                 f"({n['reason']})", "")]
    if not nics:
        return [(INFO, "pci nics", "no PCI network devices", "")]
    return [(INFO, "pci nics", "; ".join(f"{n['bdf']} {n['vendor']}:{n['device']} "
                                         f"{'usable' if n['usable'] else 'not usable'} ({n['reason']})"
                                         for n in nics), "")]


def _dev_of(spec: str) -> str | None:
    from ..drivers.spec import parse_spec
    scheme, args = parse_spec(spec)
    if scheme in ("xdp", "packet"):
        return args.get("dev")
    return None


def collect(port: str | None = None, probe: bool = False) -> list[dict]:
    checks = [check_privileges(), check_kernel(), check_hugepages(), check_isolation(), check_governor(),
              check_memlock(), check_iommu()]
    bdf = None
    if port:
        from ..drivers.spec import parse_spec
        scheme, sargs = parse_spec(port)
        if scheme == "pci":
            bdf = sargs.get("")
        dev = _dev_of(port)
        if dev:
            checks += check_nic(dev, probe)
    checks += check_pci_nics(bdf)
    return [dict(zip(("status", "check", "detail", "fix"), c)) for c in checks]


def run(args) -> int:
    results = collect(args.port, args.probe)
    if args.json:
        print(json.dumps({"checks": results, "ok": not any(r["status"] == FAIL for r in results)}, indent=2))
    else:
        mark = {OK: "  ok ", WARN: " WARN", FAIL: " FAIL", INFO: " info"}
        for r in results:
            print(f"{mark[r['status']]}  {r['check']}: {r['detail']}")
            if r["fix"] and r["status"] in (WARN, FAIL):
                print(f"        fix: {r['fix']}")
    return 1 if any(r["status"] == FAIL for r in results) else 0


def register(sub):
    p = sub.add_parser("doctor", help="check this host for low-latency packet I/O and say what to fix")
    p.add_argument("--port", help="also check the NIC of this port spec (e.g. xdp:dev=eth1)")
    p.add_argument("--probe", action="store_true",
                   help="actually try native XDP and zero-copy on the port's NIC (may briefly reset some NICs)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=run)

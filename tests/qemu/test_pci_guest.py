"""tickwire's PCI drivers against QEMU's emulated e1000e and virtio-net NICs.

Two guest boots, each driving both NICs at once (one per vCPU):

* ``sysfs`` boot, no IOMMU: iommu=none (resource mmap + pagemap), e1000e and
  legacy virtio over its I/O BAR. The kernel driver brings e1000e up and down first;
  then ``tickwire echo`` on e1000e, SIGKILL mid-run
  and a new run on the same device; ``tickwire capture``, ``echo`` and ``stack`` on virtio.
* ``vfio`` boot, emulated Intel IOMMU (intel_iommu=on iommu=pt): iommu=vfio,
  e1000e and modern virtio (VERSION_1 + ACCESS_PLATFORM). ``echo``, ``capture`` and
  ``stack`` on e1000e; ``echo`` and ``stack`` on virtio, then the sysfs path on the same
  device, whose DMA the IOMMU now blocks: ``tickwire send`` must fail with the clear
  "descriptor not completed" error instead of hanging.

The host harness (wire.py/frames.py) owns the NICs' netdev sockets: it sends frames
built by scapy, checks every echo byte for byte, and reads captures with dpkt. It
starts an exchange only once the guest tool is provably running (an echo of a probe,
the stack's ready line): guest start-up time under TCG is never part of a check.
Run: ``pytest tests/qemu -v`` (root; ~5-10 min under TCG).
"""

from __future__ import annotations

import json
import os
import re
import threading
import time

import pytest

from conftest import require, require_root, require_tool

from .frames import _checksums_ok  # noqa: F401  (used by the stack test)
from .frames import GUEST_IP, HOST_IP, HOST_MAC, echo_exchange, make_frames, stack_exchange, stream, wait_echo

pytestmark = [pytest.mark.peer, pytest.mark.slow]

E_SLOT, V_SLOT = 4, 3
E_MAC, V_MAC = "52:54:00:12:34:57", "52:54:00:12:34:56"
TW = "python3 -m tickwire.cli"
START_TIMEOUT = 240.0     # guest Python + numpy + numba start under TCG, two at once, on a busy host
STACK_ARP_WINDOW = 30.0   # ARP retries once the stack is ready (link-up is ~2 s)
N_FRAMES = 12
STACK_ARGS = "--ip 10.77.0.2/24 --udp-echo 7 --json"


def _requirements():
    require_root()
    require_tool("qemu-system-x86_64")
    require(os.path.exists("/bin/busybox"), "busybox-static (scripts/apt-packages.txt)")
    require_tool("cpio")
    require_tool("depmod")


def _boot(viommu: bool, script: str, drive) -> dict:
    """Boot, run ``script`` in the guest while ``drive(vm, results)`` works the wires."""
    from .guest_image import build, cache_dir
    from .prewarm import prewarm
    from .vm import Nic, Vm, numba_cache_dir, source_hash
    image = build()
    stack_ok = prewarm(numba_cache_dir(cache_dir()))
    src = source_hash()
    if not stack_ok:
        script = re.sub(r"run_until (stack_\w+)", r"true || run_until \1", script)
    nics = [Nic("virtio", V_SLOT, V_MAC), Nic("e1000e", E_SLOT, E_MAC)]
    results: dict = {"errors": [], "stack_ok": stack_ok}
    vm = Vm(nics, script, viommu=viommu, image=image, timeout=600)
    vm.start()
    failed = True
    try:
        drive(vm, results)
        # A chain that failed leaves its run_until steps waiting: end them all so the
        # guest powers off and the other chains' results are still reported.
        for name in re.findall(r"run_until (\w+)", script):
            vm.stop(name)
        results["guest_rc"] = vm.wait(300)
        results["report"] = vm.report()
        results["out"] = {p.stem: p.read_text(errors="replace") for p in vm.run_dir.glob("*.out")}
        results["err"] = {p.stem: p.read_text(errors="replace") for p in vm.run_dir.glob("*.err")}
        results["files"] = {p.name: p.read_bytes() for p in vm.run_dir.glob("*.pcap")}
        failed = bool(results["errors"])     # keep the run directory only then
        if source_hash() != src:             # shown by any test that fails
            results["errors"].append("tickwire's sources changed during the guest run (a concurrent edit): "
                                     "the guest compiled what the prewarm had cached; slow steps may follow")
    finally:
        vm.close(keep=failed)
    return results


def _threads(vm, results, *chains):
    """Run each chain (a function of vm, results) in its own thread; errors are collected."""
    def wrap(fn):
        def run():
            try:
                fn(vm, results)
            except BaseException as e:     # reported by the tests, with the guest's output
                results["errors"].append(f"{fn.__name__}: {e}")
        return run
    ts = [threading.Thread(target=wrap(c)) for c in chains]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


def _echo_step(vm, results, name, wire, mac, frames):
    vm.step(name, START_TIMEOUT)
    results[f"{name}_wait"] = wait_echo(wire, mac, START_TIMEOUT)
    results[name] = echo_exchange(wire, frames)
    vm.stop(name)
    results[f"{name}_rc"] = vm.step_done(name, START_TIMEOUT)


def _capture_step(vm, results, name, wire, frames):
    """Stream frames until the guest's ``capture --count`` step has what it wants."""
    vm.step(name, START_TIMEOUT)
    poller = threading.Thread(target=lambda: vm.step_done(name, START_TIMEOUT + 60))
    poller.start()
    results[f"{name}_sent"] = stream(wire, frames, lambda: vm.done(name), gap=0.1)
    poller.join()


def _stack_step(vm, results, name, wire, mac):
    """``tickwire stack`` in the guest. The exchange starts only once the stack has printed
    its ready line (port open, loop compiled or loaded, first poll done): guest start-up
    under TCG takes 20-90 s and more on a busy host, and is never counted against the
    exchange. After that, ARP is retried for STACK_ARP_WINDOW s (the e1000e link comes up
    ~2 s after reset, and frames sent before it are lost)."""
    if not results["stack_ok"]:
        return
    vm.step(name, START_TIMEOUT)
    t0 = time.monotonic()
    vm.wait_output(name, r"^tickwire stack: ready ", START_TIMEOUT)
    results[f"{name}_ready_s"] = round(time.monotonic() - t0, 1)
    results[name] = stack_exchange(wire, mac, STACK_ARP_WINDOW, alive=lambda: not vm.done(name))
    vm.stop(name)
    results[f"{name}_rc"] = vm.step_done(name, START_TIMEOUT)


def _json_out(results, name) -> dict:
    text = results["out"].get(name, "").strip().splitlines()
    assert text, f"{name}: no output; stderr:\n{results['err'].get(name, '')}\n{results['report']}"
    return json.loads(text[-1])


def _require(results, *keys):
    """A chain that failed earlier leaves its later keys unset: show why, with the guest's output."""
    missing = [k for k in keys if k not in results]
    assert not missing, (f"missing {missing}: " + "\n".join(results["errors"]) + "\n" + results.get("report", ""))


def _assert_echoes(results, name):
    _require(results, name, f"{name}_rc")
    pairs = results[name]
    bad = [(i, len(w), None if g is None else len(g)) for i, (w, g) in enumerate(pairs) if g != w]
    assert not bad, f"{name}: echoes missing or different (index, want len, got len): {bad}"
    assert results[f"{name}_rc"] == 0, results["err"].get(name, "")
    out = _json_out(results, name)
    # Counters match the wire: every test frame (and probe) received was sent back.
    assert out["echoed"] >= len(pairs)
    assert out["rx_packets"] == out["tx_packets"] == out["echoed"]
    assert out["pool_in_flight"] + out["pool_free"] == out["pool_size"]


# --------------------------------------------------------------------------- sysfs boot
SYSFS_E = f"pci:0000:00:{E_SLOT:02x}.0,iommu=none"
SYSFS_V = f"pci:0000:00:{V_SLOT:02x}.0,iommu=none,virtio=legacy"
CAPTURE_N = 20

SYSFS_SCRIPT = f"""
# The kernel's e1000e driver uses the NIC first (interface up ~3 s, then down): it leaves
# extended RX descriptors and RSS configured, which tickwire must undo (docs/pci.md).
E_IF=$(ls /sys/bus/pci/devices/0000:00:{E_SLOT:02x}.0/net/)
ip link set $E_IF up; sleep 3; ip link set $E_IF down; ip addr flush dev $E_IF
( run_until kill_e KILL {TW} echo --port {SYSFS_E}
  run_until echo_e INT {TW} echo --port {SYSFS_E} --json ) &
( step cap_v {TW} capture --port {SYSFS_V} --count {CAPTURE_N} --out $RUN/cap_v.pcap --json
  run_until echo_v INT {TW} echo --port {SYSFS_V} --json
  run_until stack_v TERM {TW} stack --port {SYSFS_V} {STACK_ARGS} ) &
wait
"""


def _sysfs_e_chain(vm, results):
    wire = vm.nics[1].wire
    frames = make_frames(E_MAC, N_FRAMES)
    # SIGKILL mid-run: nothing of ours cleans up; the next open must reset the NIC and work.
    vm.step("kill_e", START_TIMEOUT)
    wait_echo(wire, E_MAC, START_TIMEOUT)
    results["kill_e"] = echo_exchange(wire, frames[:3])
    vm.stop("kill_e")
    results["kill_e_rc"] = vm.step_done("kill_e", START_TIMEOUT)
    _echo_step(vm, results, "echo_e", wire, E_MAC, frames)


def _sysfs_v_chain(vm, results):
    wire = vm.nics[0].wire
    frames = make_frames(V_MAC, N_FRAMES)
    _capture_step(vm, results, "cap_v", wire, frames)
    _echo_step(vm, results, "echo_v", wire, V_MAC, frames)
    _stack_step(vm, results, "stack_v", wire, V_MAC)


@pytest.fixture(scope="module")
def sysfs_run():
    _requirements()
    return _boot(False, SYSFS_SCRIPT, lambda vm, r: _threads(vm, r, _sysfs_e_chain, _sysfs_v_chain))


def test_e1000e_sysfs_echo(sysfs_run):
    _assert_echoes(sysfs_run, "echo_e")


def test_e1000e_sysfs_works_after_sigkill(sysfs_run):
    r = sysfs_run
    _require(r, "kill_e", "kill_e_rc")
    assert all(w == g for w, g in r["kill_e"]), "echo before the SIGKILL failed"
    assert r["kill_e_rc"] == 137, r["err"].get("kill_e", "")
    _assert_echoes(r, "echo_e")     # the run after the SIGKILL


def test_virtio_legacy_sysfs_echo(sysfs_run):
    _assert_echoes(sysfs_run, "echo_v")


def test_virtio_legacy_sysfs_capture(sysfs_run):
    import dpkt
    r = sysfs_run
    _require(r, "cap_v_sent")
    out = _json_out(r, "cap_v")
    assert out["captured"] == CAPTURE_N
    data = r["files"]["cap_v.pcap"]
    import io
    got = [bytes(buf) for _, buf in dpkt.pcap.UniversalReader(io.BytesIO(data))]
    assert len(got) == CAPTURE_N
    sent = r["cap_v_sent"]
    # The capture is a run of consecutive frames the harness sent, unchanged.
    starts = [i for i in range(len(sent)) if sent[i] == got[0]]
    assert starts, "first captured frame was never sent"
    assert any(sent[s:s + CAPTURE_N] == got for s in starts), "capture is not a consecutive run of sent frames"


def _assert_stack(r, name, mac):
    """``tickwire stack`` on a pci: port: replies checked field by field with scapy,
    and the port's counters match the stack's."""
    from scapy.layers.inet import ICMP, IP, UDP
    require(r["stack_ok"], "tickwire stack's Numba loop compiles on the host (see the prewarm output)")
    _require(r, name, f"{name}_rc")
    x = r[name]
    want, got = x["arp"]
    assert got is not None, f"no ARP reply within {STACK_ARP_WINDOW} s of the ready line:\n{r['err'].get(name, '')}"
    assert got[:42] == want and not any(got[42:]), got.hex()
    icmp = x["icmp"]
    assert icmp is not None, "no ping reply"
    assert (icmp[IP].src, icmp[IP].dst, icmp.src, icmp.dst) == (GUEST_IP, HOST_IP, mac, HOST_MAC)
    assert (icmp[ICMP].type, icmp[ICMP].id, icmp[ICMP].seq) == (0, 0x1234, 7)
    assert bytes(icmp[ICMP].payload)[:56] == x["payload"]
    assert _checksums_ok(icmp)
    udp = x["udp"]
    assert udp is not None, "no UDP echo"
    assert (udp[IP].src, udp[IP].dst, udp[UDP].sport, udp[UDP].dport) == (GUEST_IP, HOST_IP, 7, 41000)
    assert bytes(udp[UDP].payload)[:12] == b"tickwire-pci"
    assert _checksums_ok(udp)
    assert r[f"{name}_rc"] == 0, r["err"].get(name, "")
    out = _json_out(r, name)
    st, port = out["stack"], out["port"]
    # Drops are allowed (frames a previous step left queued in QEMU arrive first, e.g. the
    # capture stream's frames whose payload changed under their UDP checksum: counted as
    # bad_checksum), but every frame is accounted for on both sides.
    assert st.get("tx_dropped", 0) == 0, out
    assert port.get("rx_packets", 0) == st["rx_frames"], out
    built = ("arp_reply_tx", "arp_request_tx", "garp_tx", "icmp_echo_tx", "udp_tx", "igmp_report_tx", "igmp_leave_tx")
    assert port.get("tx_packets", 0) == sum(st.get(k, 0) for k in built), out


def test_stack_answers_arp_ping_and_udp_over_virtio_legacy(sysfs_run):
    _assert_stack(sysfs_run, "stack_v", V_MAC)


# --------------------------------------------------------------------------- vfio boot
VFIO_E = f"pci:0000:00:{E_SLOT:02x}.0,iommu=vfio"
VFIO_V = f"pci:0000:00:{V_SLOT:02x}.0,iommu=vfio"
NOPT_V = f"pci:0000:00:{V_SLOT:02x}.0,iommu=none"

VFIO_SCRIPT = f"""
( run_until echo_e INT {TW} echo --port {VFIO_E} --json
  step cap_e {TW} capture --port {VFIO_E} --count {CAPTURE_N} --out $RUN/cap_e.pcap --json
  run_until stack_e TERM {TW} stack --port {VFIO_E} {STACK_ARGS} ) &
( run_until echo_v INT {TW} echo --port {VFIO_V} --json
  run_until stack_v TERM {TW} stack --port {VFIO_V} {STACK_ARGS}
  step nopt_v {TW} send --port {NOPT_V} --pcap $RUN/one.pcap --loop 100000 --json ) &
wait
"""


def _vfio_e_chain(vm, results):
    wire = vm.nics[1].wire
    frames = make_frames(E_MAC, N_FRAMES)
    _echo_step(vm, results, "echo_e", wire, E_MAC, frames)
    _capture_step(vm, results, "cap_e", wire, frames)
    _stack_step(vm, results, "stack_e", wire, E_MAC)


def _vfio_v_chain(vm, results):
    wire = vm.nics[0].wire
    frames = make_frames(V_MAC, N_FRAMES)
    _echo_step(vm, results, "echo_v", wire, V_MAC, frames)
    _stack_step(vm, results, "stack_v", wire, V_MAC)
    results["nopt_v_rc"] = vm.step_done("nopt_v", START_TIMEOUT)
    # Only the frame `send` was given counts: late echoes of earlier steps may still arrive.
    results["nopt_v_wire"] = sum(f == results["one_frame"] for f in wire.drain())


def _vfio_boot():
    import dpkt

    def drive(vm, results):
        results["one_frame"] = make_frames("ff:ff:ff:ff:ff:ff", 1)[0]
        with open(vm.run_dir / "one.pcap", "wb") as f:
            w = dpkt.pcap.Writer(f)
            w.writepkt(results["one_frame"], 0)
        _threads(vm, results, _vfio_e_chain, _vfio_v_chain)
    return _boot(True, VFIO_SCRIPT, drive)


@pytest.fixture(scope="module")
def vfio_run():
    _requirements()
    return _vfio_boot()


def test_e1000e_vfio_echo(vfio_run):
    _assert_echoes(vfio_run, "echo_e")


def test_e1000e_vfio_capture(vfio_run):
    import io

    import dpkt
    r = vfio_run
    _require(r, "cap_e_sent")
    got = [bytes(b) for _, b in dpkt.pcap.UniversalReader(io.BytesIO(r["files"]["cap_e.pcap"]))]
    assert len(got) == CAPTURE_N
    sent = r["cap_e_sent"]
    assert any(sent[s:s + CAPTURE_N] == got for s in range(len(sent))), "capture is not a run of sent frames"


def test_virtio_modern_vfio_echo(vfio_run):
    _assert_echoes(vfio_run, "echo_v")


def test_stack_answers_arp_ping_and_udp_over_e1000e_vfio(vfio_run):
    _assert_stack(vfio_run, "stack_e", E_MAC)


def test_stack_answers_arp_ping_and_udp_over_virtio_modern_vfio(vfio_run):
    _assert_stack(vfio_run, "stack_v", V_MAC)


def test_dma_blocked_by_iommu_is_a_clear_error(vfio_run):
    """The modern virtio NIC behind the vIOMMU, driven by the sysfs path right after VFIO
    released it: its DMA to physical addresses is not (all) translated, so the device stops
    completing descriptors, and tickwire says so and exits. (Observed with iommu=pt on the
    kernel command line too; the device has negotiated ACCESS_PLATFORM, so every address
    it uses goes through the IOMMU. Why pass-through does not cover it is not established.)"""
    r = vfio_run
    _require(r, "nopt_v_rc")
    assert r["nopt_v_rc"] == 2, r["err"].get("nopt_v", "")
    assert "has not completed a TX descriptor" in r["err"].get("nopt_v", "")
    # Not asserted: in one run 11 copies of the frame still left before the stall (part of
    # the DMA was translated anyway), which is one more reason the sysfs path is unsafe.

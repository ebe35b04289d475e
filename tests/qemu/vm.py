"""Boots the test guest under QEMU (TCG) with emulated NICs wired to host sockets.

Each NIC's netdev is a unix datagram socket pair (notes §8): QEMU binds
``nicN.qemu.sock`` and sends to ``nicN.host.sock``, which the harness
(tests/qemu/wire.py) binds *before* QEMU starts. The guest runs ``cmd.sh`` from
the run directory, a writable 9p share; each step writes its output there and
announces itself on the console (ttyS0) so the host can drive the wire side of
that step while it runs.
"""

from __future__ import annotations

import functools
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .guest_image import GuestImage, build, cache_dir
from .wire import Wire

PYTHON_BIN = os.path.dirname(os.path.realpath(sys.executable))   # never the pyenv shim (notes §4: 11 s)


@dataclass
class Nic:
    model: str            # "e1000e" | "virtio"
    slot: int             # PCI slot on bus 0: the guest BDF is 0000:00:<slot>.0
    mac: str
    wire: Wire | None = None

    @property
    def bdf(self) -> str:
        return f"0000:00:{self.slot:02x}.0"


def accel_args() -> list[str]:
    """KVM only on a real VMX/SVM host; PVM's /dev/kvm aborts QEMU (notes §1)."""
    try:
        cpuinfo = open("/proc/cpuinfo").read()
    except OSError:
        cpuinfo = ""
    if (os.access("/dev/kvm", os.W_OK) and re.search(r"\b(vmx|svm)\b", cpuinfo)
            and not os.path.exists("/sys/module/kvm_pvm")):
        return ["-accel", "kvm", "-cpu", "host"]
    # -cpu max: numpy needs x86-64-v2; qemu64 dies with SIGILL (notes §3).
    return ["-accel", "tcg,thread=multi", "-cpu", "max"]


def guest_env_lines(share: Path) -> str:
    """Environment of every guest command. The Numba cache lives in the writable share
    and is keyed on a fixed generic CPU, so kernels the host pre-compiled load in the
    guest (whose -cpu max differs from the host CPU) instead of compiling ~18x slower."""
    return "\n".join([
        f"export PATH={PYTHON_BIN}:/usr/sbin:/usr/bin:/sbin:/bin",
        "export HOME=/tmp PYTHONDONTWRITEBYTECODE=1 PYTHONFAULTHANDLER=1",
        f"export PYTHONPATH={Path(__file__).parent / 'guest_shims'}",
        f"export NUMBA_CACHE_DIR={numba_cache_dir(share)}",
        "export NUMBA_CPU_NAME=generic",
    ])


def source_hash() -> str:
    """Hash of tickwire's Python sources. The guest reads them live over 9p: a change
    between the host's prewarm and the guest's run makes the guest compile (minutes under
    TCG), which tests report instead of a mysterious timeout."""
    import hashlib
    import tickwire
    root = Path(tickwire.__file__).parent
    h = hashlib.sha256()
    for f in sorted(root.rglob("*.py")):
        h.update(str(f.relative_to(root)).encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:16]


@functools.lru_cache(maxsize=None)
def numba_cache_dir(share: Path | None = None) -> Path:
    """Computed once per test process (a source edit mid-session must not switch dirs
    between prewarm and boot). One Numba cache per version of tickwire's source: Numba only checks the source of
    the function it loads, not of what it inlined (atomics, mempool, the drivers' bursts
    inlined into tool loops), so a cache that outlives a source change could be stale."""
    base = (share or cache_dir())
    d = base / f"numba-{source_hash()}"
    d.mkdir(parents=True, exist_ok=True)
    _hold(d)
    for old in base.glob("numba-*"):
        if old != d and _unused(old):
            shutil.rmtree(old, ignore_errors=True)
    return d


_held: list[int] = []      # fds of the cache dirs this process uses, open until it exits
STALE_UNLOCKED = 3600.0    # a cache dir without a lock file (older harness) is deleted after an hour


def _hold(d: Path) -> None:
    """A shared flock on ``d/.in-use`` for the life of this process: another run on the same
    machine (another engineer's, CI's) whose sources hash differently must not delete the
    cache our guest is loading from (it did once: every kernel then compiled in the guest)."""
    import fcntl
    fd = os.open(d / ".in-use", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    fcntl.flock(fd, fcntl.LOCK_SH)
    _held.append(fd)


def _unused(d: Path) -> bool:
    import fcntl
    lock = d / ".in-use"
    if not lock.exists():
        try:
            return time.time() - d.stat().st_mtime > STALE_UNLOCKED
        except FileNotFoundError:
            return False
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True          # nobody holds it; released when fd closes, just before the delete
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


@dataclass
class Vm:
    nics: list[Nic]
    script: str                       # body of cmd.sh (sh), after the environment lines
    viommu: bool = False
    timeout: float = 240.0
    memory_mb: int = 1024
    image: GuestImage | None = None
    run_dir: Path = field(init=False)
    proc: subprocess.Popen | None = field(init=False, default=None)
    seen: list = field(init=False, default_factory=list)   # console lines consumed so far
    seen_at: list = field(init=False, default_factory=list)  # host monotonic time each line was read

    def __post_init__(self):
        share = cache_dir()
        self.image = self.image or build(share)
        self.share = share
        self.run_dir = share / "runs" / f"run-{os.getpid()}-{secrets.token_hex(3)}"
        self.run_dir.mkdir(parents=True)
        numba_cache_dir(share).mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------ start
    def start(self) -> "Vm":
        rd = self.run_dir
        for i, nic in enumerate(self.nics):
            nic.wire = Wire(str(rd / f"nic{i}.host.sock"), str(rd / f"nic{i}.qemu.sock"))
        (rd / "cmd.sh").write_text(
            "set -u\n" + guest_env_lines(self.share) + f"\nRUN={rd}\ncd $RUN\n" + _STEP_FN + self.script + "\n")
        args = ["qemu-system-x86_64", "-nodefaults", "-nographic", "-monitor", "none", "-no-reboot",
                "-m", str(self.memory_mb), "-smp", "2", *accel_args(),
                "-machine", "q35,kernel-irqchip=split" if self.viommu else "q35",
                "-kernel", str(self.image.vmlinux), "-initrd", str(self.image.initrd),
                "-serial", f"file:{rd}/console.log", "-serial", f"file:{rd}/stdout.log",
                "-serial", f"file:{rd}/stderr.log",
                "-virtfs", "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap",
                "-virtfs", f"local,path={self.share},mount_tag=twshare,security_model=none,multidevs=remap"]
        if self.viommu:
            # The vIOMMU must come before the NICs it translates for (notes §3).
            args += ["-device", "intel-iommu,intremap=on"]
        for i, nic in enumerate(self.nics):
            args += ["-netdev", f"dgram,id=n{i},local.type=unix,local.path={rd}/nic{i}.qemu.sock,"
                                f"remote.type=unix,remote.path={rd}/nic{i}.host.sock"]
            dev = "e1000e" if nic.model == "e1000e" else "virtio-net-pci"
            extra = ",disable-legacy=on,iommu_platform=on" if (nic.model == "virtio" and self.viommu) else ""
            args += ["-device", f"{dev},netdev=n{i},addr={nic.slot:#x},mac={nic.mac},romfile={extra}"]
        cmdline = "console=ttyS0 quiet loglevel=3 panic=-1 hugepagesz=2M hugepages=64"
        if self.viommu:
            # iommu=pt keeps the sysfs/pagemap path usable in the same boot (notes §3).
            cmdline += " intel_iommu=on iommu=pt"
        cmdline += f" twshare={self.share} twrun={rd}"
        args += ["-append", cmdline]
        self.started = time.monotonic()
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=open(rd / "qemu.out", "wb"),
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self._console_pos = 0
        self._console_buf = ""
        self._lock = threading.Lock()
        return self

    # ------------------------------------------------------------------ console
    def console_lines(self):
        """New complete lines on the guest console (non-blocking)."""
        try:
            with open(self.run_dir / "console.log", "rb") as f:
                f.seek(self._console_pos)
                data = f.read()
        except FileNotFoundError:
            return []
        self._console_pos += len(data)
        self._console_buf += data.decode(errors="replace")
        *lines, self._console_buf = self._console_buf.split("\n")
        return [ln.strip() for ln in lines]

    def refresh(self) -> list[str]:
        """Read new console lines (thread-safe); returns every line seen since boot."""
        with self._lock:
            new = self.console_lines()
            self.seen.extend(new)
            self.seen_at.extend([time.monotonic()] * len(new))
            return list(self.seen)

    def _poll(self, probe, what: str, timeout: float, hopeless=lambda: ""):
        """Call ``probe()`` until it returns something. Fails on timeout, when QEMU exits,
        or as soon as ``hopeless()`` returns a reason (the awaited thing can no longer come)."""
        deadline = time.monotonic() + timeout
        while True:
            got = probe()
            if got:
                return got
            why = hopeless()
            if why:
                raise AssertionError(f"{why} waiting for {what}")
            if self.proc.poll() is not None:
                raise AssertionError(f"QEMU exited ({self.proc.returncode}) waiting for {what}:\n{self.report()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timeout waiting {timeout} s for {what}:\n{self.report()}")
            time.sleep(0.05)

    def wait_console(self, pattern: str, timeout: float) -> re.Match:
        """Block until a console line (any since boot) matches ``pattern``. Thread-safe, so
        the harness can follow two NICs' steps at once. Fails on guest exit or timeout."""
        rx = re.compile(pattern)

        def probe():
            return next((m for m in map(rx.search, self.refresh()) if m), None)

        def exited():
            if any(ln.startswith("TW-GUEST-EXIT") for ln in self.seen):
                return f"guest exited:\n{self.report()}\n"
            return ""
        return self._poll(probe, repr(pattern), timeout, exited)

    def done(self, name: str) -> bool:
        """Has step ``name`` finished (its process exited)?"""
        return any(ln.startswith(f"TW-DONE {name} ") for ln in self.refresh())

    def wait_output(self, name: str, pattern: str, timeout: float) -> re.Match:
        """Block until a line of step ``name``'s stdout matches ``pattern`` (e.g. a tool's
        "ready" line: its port is open and its loop compiled and polling). Fails at once,
        with the step's stderr, if the step's process exits first."""
        rx = re.compile(pattern, re.M)

        def exited():
            return f"{name} exited:\n{self.errors(name)[-3000:]}\n" if self.done(name) else ""
        return self._poll(lambda: rx.search(self.output(name)), f"{pattern!r} from {name}", timeout, exited)

    def step(self, name: str, timeout: float = 120.0) -> None:
        self.wait_console(rf"^TW-STEP {re.escape(name)}$", timeout)

    def step_done(self, name: str, timeout: float = 120.0) -> int:
        return int(self.wait_console(rf"^TW-DONE {re.escape(name)} (\d+)$", timeout).group(1))

    def stop(self, name: str) -> None:
        """End a ``run_until`` step (the guest polls for this file over the 9p share)."""
        (self.run_dir / f"{name}.stop").touch()

    def output(self, name: str) -> str:
        try:
            return (self.run_dir / f"{name}.out").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def errors(self, name: str) -> str:
        try:
            return (self.run_dir / f"{name}.err").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def report(self, tail: int = 3000) -> str:
        parts = []
        for f in sorted(self.run_dir.glob("*")):
            if f.suffix in (".out", ".err", ".log") and f.stat().st_size:
                parts.append(f"--- {f.name}\n" + f.read_text(errors="replace")[-tail:])
        return "\n".join(parts)

    # ------------------------------------------------------------------ stop
    def wait(self, timeout: float | None = None) -> int:
        """Guest exit code of cmd.sh (from the console), after QEMU exits."""
        m = self.wait_console(r"^TW-GUEST-EXIT (\d+)$", timeout or self.timeout)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            pass
        return int(m.group(1))

    def close(self, keep: bool = False) -> None:
        if self.proc is not None and self.proc.poll() is None:
            # A guest error can pause QEMU instead of exiting it (notes §1): kill by PID.
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        for nic in self.nics:
            if nic.wire:
                nic.wire.close()
        if not keep and not os.environ.get("TICKWIRE_QEMU_KEEP"):
            shutil.rmtree(self.run_dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, exc_type, *exc):
        self.close(keep=exc_type is not None)


_STEP_FN = r"""
# step NAME CMD...: run one test step, output to $RUN/NAME.out/.err, markers on the console.
step() {
  name=$1; shift
  echo "TW-STEP $name" > /dev/ttyS0
  "$@" > $RUN/$name.out 2> $RUN/$name.err
  rc=$?
  echo "TW-DONE $name $rc" > /dev/ttyS0
  return 0
}
# run_until NAME SIGNAL CMD...: like step, but the host ends it: when it creates
# $RUN/NAME.stop the command gets SIGNAL (INT: clean stop; KILL: crash test).
run_until() {
  name=$1; sig=$2; shift 2
  echo "TW-STEP $name" > /dev/ttyS0
  "$@" > $RUN/$name.out 2> $RUN/$name.err &
  pid=$!
  while [ ! -e $RUN/$name.stop ] && kill -0 $pid 2>/dev/null; do sleep 0.2; done
  kill -$sig $pid 2>/dev/null
  # A command that does not stop within 30 s dumps its Python stacks (PYTHONFAULTHANDLER
  # handles SIGABRT) so a hang is diagnosable, then dies.
  n=0; while kill -0 $pid 2>/dev/null && [ $n -lt 150 ]; do sleep 0.2; n=$((n+1)); done
  kill -0 $pid 2>/dev/null && { echo "TW-HUNG $name" > /dev/ttyS0; kill -ABRT $pid; sleep 2; kill -KILL $pid; }
  wait $pid
  rc=$?
  echo "TW-DONE $name $rc" > /dev/ttyS0
  return 0
}
"""

"""DPDK testpmd as a memif peer (Debian 12: packages dpdk-dev + librte-net-memif23).

Facts from shared/notes/memif.md §7: no hugepages (--no-huge -m 512), a distinct
--file-prefix per process, --total-num-mbufs=16384, --stats-period so it does not
exit on stdin EOF, --main-lcore so two processes' idle main threads sit on the
other's forwarding core. --no-flush-rx: testpmd's start_packet_forwarding drains
every RX queue first, which would silently eat frames sent as forwarding starts.
A side that receives DISCONNECT while polling may segfault on exit (pitfall 7):
its exit code is not a result.
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid

_PPS = re.compile(r"Rx-pps:\s+(\d+)")


def testpmd_path() -> str | None:
    return shutil.which("dpdk-testpmd")



def per_second_rate(samples, skip: int = 1) -> float:
    """testpmd's receive rate: the median of its per-second samples while traffic flowed
    (zero samples before it started left out, then the first ``skip`` dropped). The memif
    benchmark counts tickwire's receivers by the same rule."""
    started = [s for s in samples if s > 0][skip:]
    return float(statistics.median(started)) if started else 0.0

class TestpmdPeer:
    __test__ = False  # not a pytest test class

    def __init__(self, *, role: str, socket: str, forward: str = "macswap", if_id: int = 0,
                 bsize: int | None = None, rsize: int | None = None, queues: int = 1,
                 main_lcore: int = 1, extra: tuple[str, ...] = (), mac: str | None = None):
        exe = testpmd_path()
        if exe is None:
            raise FileNotFoundError("dpdk-testpmd not found: apt-get install dpdk-dev librte-net-memif23")
        self.prefix = f"tw{uuid.uuid4().hex[:8]}"
        vdev = f"net_memif{0 if role == 'server' else 1},role={role},id={if_id},socket={socket},socket-abstract=no"
        for key, value in (("bsize", bsize), ("rsize", rsize), ("mac", mac)):
            if value:
                vdev += f",{key}={value}"
        self.log = tempfile.NamedTemporaryFile("w+", prefix="testpmd-", suffix=".log", delete=False)
        self.cmd = [exe, "-l", "0,1", f"--main-lcore={main_lcore}", "--no-huge", "-m", "512", "--no-pci",
                    f"--file-prefix={self.prefix}", f"--vdev={vdev}", "--",
                    f"--forward-mode={forward}", "--auto-start", "--stats-period=1",
                    "--total-num-mbufs=16384", "--no-flush-rx", f"--rxq={queues}", f"--txq={queues}", *extra]
        # testpmd's stdout is a file here, so glibc would buffer it in 4 KiB blocks and the
        # per-second stats that rx_pps() reads would arrive late or not at all: line-buffer it.
        if shutil.which("stdbuf"):
            self.cmd = ["stdbuf", "-oL", *self.cmd]
        self.proc = subprocess.Popen(self.cmd, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def output(self) -> str:
        with open(self.log.name, errors="replace") as f:
            return f.read()

    def wait_started(self, timeout: float = 30.0) -> None:
        """Until forwarding has started (the last config line precedes the lcore launch)."""
        deadline = time.monotonic() + timeout
        while "TX RS bit threshold" not in self.output():
            if self.proc.poll() is not None:
                raise RuntimeError(f"testpmd exited early ({self.proc.returncode}):\n{self.output()[-3000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"testpmd did not start:\n{self.output()[-3000:]}")
            time.sleep(0.05)

    def rx_pps(self, skip: int = 1) -> float:
        """Median of the per-second Rx-pps samples while traffic flowed (first `skip` dropped)."""
        return per_second_rate([int(x) for x in _PPS.findall(self.output())], skip)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(f"/var/run/dpdk/{self.prefix}", ignore_errors=True)
        try:
            os.unlink(self.log.name)
        except FileNotFoundError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

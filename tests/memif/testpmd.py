"""DPDK testpmd as a real memif peer, started and stopped by the tests.

Facts from shared/notes/memif.md §7: no hugepages (--no-huge -m 512), a distinct
--file-prefix per process, --total-num-mbufs=16384, --stats-period so it does not
exit on stdin EOF, --no-flush-rx so frames that arrive while forwarding starts
are forwarded instead of silently flushed (testpmd's start_packet_forwarding
drains every RX queue first), --main-lcore so two processes' idle main threads sit on the
other's forwarding core. The server socket accepts INIT only after the port has
started ("Checking link statuses" in the output). A side that receives DISCONNECT
while polling may segfault on exit (pitfall 7): its exit code is not a test result.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import uuid

from conftest import require_tool


class TestpmdPeer:
    def __init__(self, *, role: str, socket: str, forward: str = "macswap", if_id: int = 0,
                 bsize: int | None = None, rsize: int | None = None, queues: int = 1,
                 main_lcore: int = 1, extra: tuple[str, ...] = (), mac: str | None = None):
        exe = require_tool("dpdk-testpmd")
        self.prefix = f"tw{uuid.uuid4().hex[:8]}"
        vdev = f"net_memif{0 if role == 'server' else 1},role={role},id={if_id},socket={socket},socket-abstract=no"
        if bsize:
            vdev += f",bsize={bsize}"
        if rsize:
            vdev += f",rsize={rsize}"
        if mac:
            vdev += f",mac={mac}"
        self.log = tempfile.NamedTemporaryFile("w+", prefix="testpmd-", suffix=".log", delete=False)
        cmd = [exe, "-l", "0,1", f"--main-lcore={main_lcore}", "--no-huge", "-m", "512", "--no-pci",
               f"--file-prefix={self.prefix}", f"--vdev={vdev}", "--",
               f"--forward-mode={forward}", "--auto-start", "--stats-period=1",
               "--total-num-mbufs=16384", "--no-flush-rx", f"--rxq={queues}", f"--txq={queues}", *extra]
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def output(self) -> str:
        with open(self.log.name) as f:
            return f.read()

    def wait_started(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while "TX RS bit threshold" not in self.output():  # last line before the lcores start
            if self.proc.poll() is not None:
                raise RuntimeError(f"testpmd exited early ({self.proc.returncode}):\n{self.output()[-3000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"testpmd did not start:\n{self.output()[-3000:]}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(f"/var/run/dpdk/{self.prefix}", ignore_errors=True)
        os.unlink(self.log.name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

"""Pre-compile, on the host, every Numba kernel the guest tests run, into the
guest's Numba cache (vm.numba_cache_dir, CPU name "generic"), because compiling
in the TCG guest is ~18x slower (notes qemu-guest §4).

Run as ``python -m tests.qemu.prewarm``; tests call ``prewarm()`` which runs
that in a subprocess with the guest's NUMBA_* environment.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np


def _warm_in_this_process() -> None:
    from tickwire.drivers.pci.warm import fake_states, warm
    from tickwire.mem.mempool import Mempool
    from tickwire.tools.capture import capture_slice
    from tickwire.tools.echo import echo_slice
    from tickwire.tools.send import send_slice
    from tickwire.tsc import read_tsc

    # The CLI's pool geometry (cli/_common.py): the same dtypes and layouts as in the guest.
    pool = Mempool(64, 2048 + 128, 128)
    warm(pool)
    read_tsc()          # capture's and send's TscClock (a compile in the guest costs ~18x)
    bufs = np.empty(32, np.int32)
    for st in fake_states():
        echo_slice(st, pool.arrays, bufs, 32, 1, np.zeros(3, np.int64))
        held = np.empty(256, np.int32)
        capture_slice(st, pool.arrays, held, np.empty(256, np.int64), 1, 32, 1)
        blob, offs = np.zeros(64, np.uint8), np.array([0, 60], np.int64)
        send_slice(st, pool.arrays, blob, offs, 0, 0, np.zeros(2, np.int64), bufs, 32, 1)
    try:
        _warm_stack(pool)
    except Exception as e:   # the stack's own tests report its compile errors; ours go on
        print(f"prewarm: tickwire stack loop not warmed: {type(e).__name__}: {str(e)[:300]}")


def _warm_stack(pool) -> None:
    """``tickwire stack``'s loop with each PCI state type (cli/stack.py's exact call)."""
    import time

    from tickwire.drivers.pci.warm import fake_states
    from tickwire.stack import Stack
    from tickwire.stack.loop import run_stack
    from tickwire.mem.mempool import Mempool
    stack_pool = Mempool(64, 2048, 128)
    stack = Stack("02:74:77:00:00:01", "10.77.0.2/24")
    stack.bind_udp(7, echo=True)
    rx, tx = np.empty(32, np.int32), np.empty(64, np.int32)
    for st in fake_states():
        run_stack(st, stack_pool.arrays, stack.state, rx, tx, stack.info, 0, 1 << 32, time.monotonic_ns())


def prewarm(cache: Path) -> bool:
    """Returns False when ``tickwire stack``'s loop could not be compiled (then the guest
    would spend many minutes failing to compile it: its test is skipped instead)."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache), NUMBA_CPU_NAME="generic")
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-m", "tests.qemu.prewarm"], cwd=root, env=env, check=True,
                         stdout=subprocess.PIPE, text=True).stdout
    sys.stdout.write(out)
    return "stack loop not warmed" not in out


if __name__ == "__main__":
    _warm_in_this_process()

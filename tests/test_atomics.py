"""The Numba memory-ordering intrinsics: values, and the property they exist for —
a poll loop on memory written by another process terminates (a plain numpy load
may be hoisted out of the loop by LLVM and spin forever; notes/numba-hot-path.md §1).

The spinning happens in a child process bounded by a timeout, so a regression
shows up as a failed test, never as a hung test run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
from numba import njit

from tickwire.mem import atomics as A


@njit
def _roundtrip(buf):
    A.store_release_u16(buf, 2, np.uint16(0xFFFE))
    A.store_u32(buf, 4, np.uint32(0xDEADBEEF))
    A.store_release_u64(buf, 8, np.uint64(2**63 + 5))
    A.memcpy(buf, 32, buf, 0, 16)
    A.fence_seq_cst()
    A.compiler_barrier()
    A.cpu_pause()
    t0 = A.rdtscp()
    t1 = A.rdtscp()
    return (A.load_acquire_u16(buf, 2), A.load_u32(buf, 4), A.load_relaxed_u64(buf, 8),
            A.load_u64(buf, 40), t1 >= t0)


def test_loads_stores_copy_at_byte_offsets():
    buf = np.zeros(64, np.uint8)
    a, b, c, d, monotonic = _roundtrip(buf)
    assert (a, b, c, d) == (0xFFFE, 0xDEADBEEF, 2**63 + 5, 2**63 + 5) and monotonic
    assert buf[2:4].view("<u2")[0] == 0xFFFE            # little-endian, exactly where asked
    assert bytes(buf[32:48]) == bytes(buf[0:16])


SPINNER = textwrap.dedent('''
    import mmap, sys, numpy as np
    from numba import njit
    from tickwire.mem.atomics import load_acquire_u64, cpu_pause
    fd, kind = int(sys.argv[1]), sys.argv[2]
    shared = np.frombuffer(mmap.mmap(fd, 4096), np.uint8)

    @njit
    def spin_acquire(buf):
        while load_acquire_u64(buf, 0) == 0:
            cpu_pause()

    @njit
    def spin_plain(buf):
        words = buf.view(np.uint64)
        while words[0] == 0:
            pass

    spin = spin_acquire if kind == "acquire" else spin_plain
    done = np.ones(4096, np.uint8)
    spin(done)                       # compile (returns at once: flag already set)
    shared.view(np.uint64)[1] = 1    # tell the parent we are about to spin
    spin(shared)
''')


def _spin_in_child(kind: str, timeout: float) -> bool:
    """True if the child saw the flag written by this process and exited in time."""
    import mmap
    import time
    fd = os.memfd_create("tw-flag")
    os.ftruncate(fd, 4096)
    m = mmap.mmap(fd, 4096)
    view = np.frombuffer(m, np.uint64)
    child = subprocess.Popen([sys.executable, "-c", SPINNER, str(fd), kind], pass_fds=(fd,))
    try:
        deadline = time.monotonic() + 120
        while view[1] == 0 and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert view[1] == 1, "child never became ready"
        time.sleep(0.2)          # it is in the loop now
        view[0] = 1              # the write the loop waits for
        child.wait(timeout)
        return child.returncode == 0
    except subprocess.TimeoutExpired:
        return False
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        del view
        m.close()
        os.close(fd)


def test_acquire_poll_loop_sees_another_process_write():
    assert _spin_in_child("acquire", timeout=20), "poll loop on load_acquire_u64 never saw the flag"


def test_control_plain_numpy_poll_loop_hangs():
    """The control experiment that makes the test above mean something: the same loop on a
    plain numpy load is hoisted by LLVM into a self-loop and never sees the write. If a
    future Numba stops doing that, this fails, and the acquire test no longer proves much."""
    assert not _spin_in_child("plain", timeout=5), "the plain load was not hoisted: the hazard is gone"

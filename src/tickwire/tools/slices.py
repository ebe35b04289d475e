"""Running a compiled loop in bounded slices around a port's control plane."""

from __future__ import annotations

import signal
import time

SLICE_POLLS = 1 << 14  # rx polls per compiled slice: ~1 ms when idle, bounded work when busy


class StopFlag:
    """Set by SIGINT/SIGTERM so runners leave their slice loop and close ports cleanly."""

    def __init__(self):
        self.stopped = False
        self._old = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[sig] = signal.signal(sig, self._stop)
            except ValueError:  # not the main thread
                pass

    def _stop(self, *_):
        self.stopped = True

    def restore(self):
        for sig, handler in self._old.items():
            signal.signal(sig, handler)


def wait_for_link(port, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not port.link_up:
        port.poll()
        if time.monotonic() > deadline:
            raise TimeoutError(f"{port.spec}: link did not come up within {timeout:g} s"
                               + (f" ({port.last_error})" if getattr(port, "last_error", "") else ""))
        time.sleep(0.001)

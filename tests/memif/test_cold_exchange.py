"""Two tickwire processes over memif, compiled from an empty Numba cache (as on CI).

The memif burst functions inline into runtime-free callers, so every receive or send
loop compiles the data path into itself: from a cold cache that takes seconds (8-25 s
seen on the 2-vCPU VM). A loop compiled after the link came up missed the peer's
traffic: the sender's timed window was over while the receiver still compiled, and the
receiver got 0 or one ring (1,024 frames) of a stream that should have run for the whole
window. That is what "inlined, a cold receive loop never saw the peer's frames" was
(docs/memif.md). The benchmark worker now compiles its loop before link-up, and link-up
needs both sides polling the control channel, so the stream starts when both are ready.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

RING = 1024  # default rsize=10: frames the sender can place with nobody draining


def _worker(mode, spec, seconds, cpu, env):
    return subprocess.Popen([sys.executable, "-m", "tickwire.bench._memif_worker", mode, spec,
                             str(seconds), str(cpu)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _result(proc, timeout):
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


def test_cold_compiled_receiver_drains_the_whole_stream(tmp_path):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba-cache"))  # empty: cold
    sock = str(tmp_path / f"c{uuid.uuid4().hex[:6]}.sock")
    cpus = sorted(os.sched_getaffinity(0))
    rx = _worker("rx", f"memif:socket={sock},role=server", 0.5, cpus[-1], env)
    tx = _worker("tx", f"memif:socket={sock},role=client", 0.5, cpus[0], env)
    try:
        sent = _result(tx, 900)  # bounded: a cold compile under load, never a hang
        got = _result(rx, 900)
    finally:
        for p in (tx, rx):
            if p.poll() is None:
                p.kill()
    # Every frame the sender placed reached the receiver, and the receiver drained the ring
    # during the sender's window: with nobody draining, the sender places one ring and stops.
    assert got["received"] == sent["sent"]
    assert sent["sent"] > 8 * RING, sent
    for side in (sent, got):
        errors = {k: side["port"][k] for k in ("bad_desc", "bad_ring_index", "protocol_errors", "rx_nobuf")}
        assert not any(errors.values()), errors

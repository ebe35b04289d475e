"""How `tickwire bench memif` counts a receive rate: every receiver alike, in one-second
samples (testpmd's stats-period lines; a tickwire receiver's bins from its first frame),
the first sample dropped, the median of the rest. A tickwire receiver fed by a sender that
never stops (testpmd's txonly) stops after its window instead of at the 30 s guard."""

import json
import subprocess
import sys
import time
import uuid

from tickwire.bench import memif
from tickwire.peers.testpmd import per_second_rate


def test_per_second_drops_unstarted_samples_and_the_first():
    assert per_second_rate([0.0, 0.0, 9.0, 1.0, 3.0, 2.0]) == 2.0
    assert per_second_rate([5.0]) == 0.0  # nothing left after the first
    assert per_second_rate([]) == 0.0


def _worker(mode, spec, seconds, cpu):
    return subprocess.Popen([sys.executable, "-m", "tickwire.bench._memif_worker", mode, spec, str(seconds),
                             str(cpu)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_receiver_counts_one_second_bins_and_stops_an_endless_sender(tmp_path):
    sock = str(tmp_path / f"r{uuid.uuid4().hex[:6]}.sock")
    rx = _worker("rx", f"memif:socket={sock},role=server", 2, memif.SERVER_CPU)
    tx = _worker("tx", f"memif:socket={sock},role=client", 600, memif.CLIENT_CPU)  # longer than any window
    try:
        out, err = rx.communicate(timeout=600)  # bounded: a cold compile under load
        assert rx.returncode == 0, err[-3000:]
        got = json.loads(out.strip().splitlines()[-1])
    finally:
        tx.kill()
        tx.wait()
    # the 2 s window plus its 1 s of grace, not the 32 s the loop's guard would allow
    assert 1.0 <= got["seconds"] < 5.0, got
    bins = got["mpps_per_s"]
    assert 1 <= len(bins) <= 2
    assert all(b > 0 for b in bins)
    assert sum(bins) * 1e6 <= got["received"]

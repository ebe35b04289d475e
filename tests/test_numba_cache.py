"""Hot loops must be cacheable (notes/numba-hot-path.md §6): no ctypes function
pointers or dynamic globals inside them. A second process with the same cache
directory must load the compiled memif echo loop from disk instead of compiling it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent('''
    import json, numpy as np
    from tickwire.drivers.port import open_port
    from tickwire.mem.mempool import Mempool
    from tickwire.tools.echo import echo_slice
    from tickwire.bench._memif_worker import tx_loop, rx_loop
    import sys
    port = open_port("memif:socket=" + sys.argv[1] + ",role=server", Mempool(64))
    bufs, stats = np.empty(32, np.int32), np.zeros(3, np.int64)
    echo_slice(port.state, port.pool.arrays, bufs, 32, 1, stats)
    tx_loop(port.state, port.pool.arrays, bufs, 32, 1)
    port.close()
    hits = sum(sum(f.stats.cache_hits.values()) for f in (echo_slice, tx_loop))
    misses = sum(sum(f.stats.cache_misses.values()) for f in (echo_slice, tx_loop))
    print(json.dumps({"hits": hits, "misses": misses}))
''')


def test_memif_hot_loops_load_from_the_cache_in_a_second_process(tmp_path):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    runs = []
    for i in range(2):
        out = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / f"s{i}.sock")], env=env,
                             capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    assert runs[0]["misses"] == 2 and runs[0]["hits"] == 0
    assert runs[1]["hits"] == 2 and runs[1]["misses"] == 0

"""Editing a strategy takes effect on the next run although the loop that calls it is
served from Numba's on-disk cache: the view's type name carries the strategy source's
digest (engine/dispatch.py). Two fresh processes share one cache directory; between them
only the strategy file changes, not the caller's."""

import os
import subprocess
import sys
import textwrap

STRATEGY = """
import sys
import numpy as np
from numba import njit
from tickwire.engine.dispatch import register_strategy, view_type
from tickwire.engine.strategy import ignore_execution, ignore_trade

View = view_type(__name__)
globals()[View.__name__] = View


@njit(cache=True, _nrt=False)
def on_book_update(v, i, out):
    return {answer}


on_trade = ignore_trade
on_execution = ignore_execution
register_strategy(sys.modules[__name__])
"""

CALLER = """
from numba import njit
from tickwire.engine.dispatch import strat_book


@njit(cache=True, _nrt=False)
def call(v, out):
    return strat_book(v, 0, out)
"""

MAIN = """
import numpy as np
import caller, mystrat
a = np.zeros(4, np.int64)
v = mystrat.View(a, a.copy(), np.zeros((1, 4), np.int64), np.zeros((1, 4), np.int64), a.copy(), a.copy())
print(caller.call(v, np.zeros((4, 8), np.int64)))
"""


def _run(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(tmp_path) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    out = subprocess.run([sys.executable, "-c", MAIN], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return int(out.stdout.split()[-1])


def test_an_edited_strategy_is_not_served_from_the_cached_loop(tmp_path):
    (tmp_path / "caller.py").write_text(textwrap.dedent(CALLER))
    strat = tmp_path / "mystrat.py"
    strat.write_text(STRATEGY.format(answer=1))
    assert _run(tmp_path) == 1
    cached = [n for _, _, names in os.walk(tmp_path / "cache") for n in names]
    assert any(n.startswith("caller.call") and n.endswith(".nbi") for n in cached), cached
    strat.write_text(STRATEGY.format(answer=2))
    assert _run(tmp_path) == 2

"""Shared test helpers.

Peers (testpmd, network namespaces, tshark, qemu) are real programs. Locally a
missing peer skips its tests; on CI (CI=true) a missing peer is a failure.
"""

from __future__ import annotations

import os
import shutil

import pytest

ON_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(condition: bool, what: str) -> None:
    """Skip locally, fail on CI, when a peer or privilege is missing."""
    if condition:
        return
    if ON_CI:
        pytest.fail(f"required test peer missing on CI: {what}")
    pytest.skip(f"missing peer: {what}")


def require_tool(name: str) -> str:
    path = shutil.which(name)
    require(path is not None, f"program {name!r} (see scripts/test.sh for the package)")
    return path


def require_root() -> None:
    require(os.geteuid() == 0, "root privileges")


_FLOAT_REPORT = '''
import io as _io, json as _json
def _float_uses(f, llvm):
    if llvm:   # conversions and compares in the LLVM IR
        text = "\\n".join(str(v) for v in f.inspect_llvm().values())
        return text, [ln.strip() for ln in text.splitlines()
                      if any(op in ln for op in ("itofp ", "fptosi ", "fptoui ", " fcmp "))][:5]
    buf = _io.StringIO()   # float64 anywhere in the typed IR
    f.inspect_types(file=buf)
    text = buf.getvalue()
    return text, [ln.strip() for ln in text.splitlines() if "float64" in ln][:5]
_out = {}
for _f in FUNCTIONS:
    _text, _bad = _float_uses(_f, LLVM)
    assert _text.strip(), _f.__name__
    _out[_f.__name__] = _bad
print(_json.dumps(_out))
'''


def float_uses_after_fresh_compile(tmp_path, setup: str, functions: str, *, llvm: bool = False,
                                   timeout: float = 600) -> dict:
    """House rule (notes/numba-hot-path.md §4-5): a uint64/int64 mix silently becomes float64.
    Runs ``setup`` (which must call the functions so they compile) in a subprocess with a
    private, empty Numba cache (a kernel loaded from the cache carries no IR to inspect),
    then returns {function name: its first float lines} for the ``functions`` expression."""
    import json
    import subprocess
    import sys
    import textwrap
    code = textwrap.dedent(setup) + f"\nFUNCTIONS = ({functions})\nLLVM = {llvm!r}\n" + _FLOAT_REPORT
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba-cache"))
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])

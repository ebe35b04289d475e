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

import os
import shutil

import pytest

from conftest import require  # tests/conftest.py

from .netns import VethPair


def need_netns():
    require(os.geteuid() == 0, "root privileges (network namespaces, bpf)")
    for tool in ("ip", "ethtool"):
        require(shutil.which(tool) is not None, f"program {tool!r} (iproute2 / ethtool)")


@pytest.fixture
def veth():
    need_netns()
    with VethPair() as v:
        yield v


@pytest.fixture
def veth2q():
    need_netns()
    with VethPair(queues=2) as v:
        yield v

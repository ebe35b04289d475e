"""The packaged testpmd launcher, with the test-suite rule for a missing peer."""

from __future__ import annotations

from tickwire.peers.testpmd import TestpmdPeer as _Peer

from conftest import require_tool


def TestpmdPeer(**kwargs) -> _Peer:  # noqa: N802 - reads like the class it returns
    require_tool("dpdk-testpmd")
    return _Peer(**kwargs)


TestpmdPeer.__test__ = False

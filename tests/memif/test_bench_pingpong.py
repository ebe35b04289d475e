"""The benchmark's reference exchanges between two pinned processes: every frame read back
holds the value sent (the workers count mismatches and pingpong_rtt raises on any)."""

import pytest

from tickwire.bench import memif


@pytest.mark.parametrize("kind", ["pingpong3p", "pingpong3r"])
def test_memif_shaped_pingpong_round_trips(kind):
    rtts = memif.pingpong_rtt(500, kind)
    assert len(rtts) == 500
    assert min(rtts) > 0

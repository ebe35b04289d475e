"""The veth/netns helper lives with the benchmark that also needs it; tests reuse it."""

from tickwire.bench._veth import VethPair, inside, sh  # noqa: F401

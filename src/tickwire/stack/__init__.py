"""A small IPv4 host stack on top of ``tickwire.wire``, running inside Numba loops.

Python face: ``Stack`` (iface.py). Hot path, callable from any njit loop:
``stack_input(st, pool, b, info) -> ACT_*`` (input.py; ``stack_input_inline`` for loops
compiled with ``_nrt=False``), ``stack_poll`` (poll.py),
``udp_prepare`` / ``udp_reply_in_place`` (udp.py), ``run_stack`` (loop.py).
``st`` is ``Stack.state`` (a namedtuple of int64 arrays, state.py). TCP lives in
``stack.tcp`` and builds on the same pieces.
"""

from .iface import Stack, parse_cidr  # noqa: F401
from .state import ACT_FREE, ACT_TCP, ACT_TX, ACT_UDP, I_EP  # noqa: F401

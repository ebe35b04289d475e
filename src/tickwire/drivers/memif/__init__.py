"""memif: shared-memory packet interface, interoperable with DPDK's net_memif and
VPP's libmemif (protocol 2.0, copy mode, both roles).

Spec::

    memif:socket=PATH,role=client|server,id=N,rsize=LOG2,bsize=BYTES,secret=S,queues=N
          [,abstract=no|yes][,rx=poll|interrupt][,hugepages=off|auto|on][,name=IFNAME]

Defaults: socket=/run/memif.sock, role=client, id=0, rsize=10 (1024 slots),
bsize=2048, queues=1, filesystem socket (DPDK's own default is abstract=yes),
polling. Only the client's rsize/bsize/queues matter: the client creates memory.

Files: proto.py (messages), channel.py (the socket), client.py / server.py
(handshakes), port.py (what both share), datapath.py (the Numba rings),
reflect.py (the server's one-copy echo, drivers.port.reflect).
"""

from __future__ import annotations

from .client import MemifClient
from .port import MemifConfig
from . import reflect as _reflect  # noqa: F401 - registers the server's one-copy reflect
from .server import MemifServer


def open(args, pool, spec: str):  # noqa: A001 - the driver entry point name is the contract
    cfg = MemifConfig(args)
    return (MemifServer if cfg.role == "server" else MemifClient)(cfg, pool, spec)

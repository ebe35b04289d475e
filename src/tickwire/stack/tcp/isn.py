"""Initial sequence numbers per RFC 6528 §3: ISN = M + F(localip, localport, remoteip, remoteport, secretkey).

M is a clock ticking every 4 microseconds (so ISNs of successive incarnations of
the same 4-tuple keep increasing, RFC 9293 §3.4.1), and F is a keyed hash
(BLAKE2b with a per-process random 128-bit key, drawn from os.urandom) of the
connection identifiers, so an off-path attacker who does not know the key cannot
predict the ISN of a connection it did not observe.
"""

from __future__ import annotations

import hashlib
import os
import time

_SECRET = os.urandom(16)


def isn(local_ip: int, local_port: int, remote_ip: int, remote_port: int,
        now_ns: int | None = None, secret: bytes = _SECRET) -> int:
    if now_ns is None:
        now_ns = time.monotonic_ns()
    m = now_ns // 4000                                   # RFC 6528: 4 µs timer
    ident = (local_ip.to_bytes(4, "big") + local_port.to_bytes(2, "big")
             + remote_ip.to_bytes(4, "big") + remote_port.to_bytes(2, "big"))
    f = int.from_bytes(hashlib.blake2b(ident, key=secret, digest_size=4).digest(), "big")
    return (m + f) & 0xFFFFFFFF

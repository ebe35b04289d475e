"""User-space TCP (RFC 9293) for order entry: a Python slow path for the whole state
machine and a Numba fast path for established connections. See docs/tcp.md.

    stack = TcpStack(port, "10.0.0.1")
    conn = stack.connect("10.0.0.2", 9000)      # or: stack.listen(9000).accept()
    conn.send(b"order"); stack.poll(); conn.recv(4096); conn.close()
"""

from .config import TcpConfig
from .conn import Connection, TcpError
from .stack import Listener, TcpStack

__all__ = ["TcpConfig", "TcpStack", "Connection", "Listener", "TcpError"]

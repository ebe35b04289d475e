"""The memif control socket: exactly-128-byte messages with at most one fd each.

A thin, non-blocking wrapper around an AF_UNIX SOCK_SEQPACKET socket that turns
what the peer sends into ``(type, payload, fd)`` or a ``ProtocolError``, and
makes sure no received fd is ever leaked (fds on rejected messages are closed).
"""

from __future__ import annotations

import array
import os
import socket

from . import proto


# room for several fds (so extras are seen and closed, not silently truncated) plus the
# SCM_CREDENTIALS a SO_PASSCRED listener receives with every message
_ANC_SPACE = socket.CMSG_SPACE(4 * 8) + socket.CMSG_SPACE(12)


class PeerGone(Exception):
    """The peer closed the socket (EOF or reset)."""


def unix_address(path: str, abstract: bool) -> str | bytes:
    """Filesystem path, or the abstract-namespace name DPDK uses by default ("\\0" + path)."""
    if len(path.encode()) >= 108:
        raise ValueError(f"memif socket path longer than 107 bytes: {path!r}")
    return b"\0" + path.encode() if abstract else path


class Channel:
    def __init__(self, sock: socket.socket):
        sock.setblocking(False)
        self.sock = sock

    def send(self, msg: bytes, fd: int | None = None) -> None:
        assert len(msg) == proto.MSG_SIZE
        anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))] if fd is not None else []
        try:
            self.sock.sendmsg([msg], anc)
        except (BrokenPipeError, ConnectionResetError) as e:
            raise PeerGone(str(e)) from None
        except BlockingIOError:
            # our send buffer is full: the peer sends without reading our replies (the
            # protocol is lock-step, one reply per message, notes §2). Waiting would block
            # the data path's thread; the peer is broken.
            raise proto.ProtocolError("peer does not read the control socket") from None

    def say_goodbye(self, reason: str) -> None:
        """DISCONNECT with ``reason``, if the peer can still take it: one that is gone or
        does not read gets nothing (the caller keeps the reason)."""
        try:
            self.send(proto.disconnect(reason))
        except (PeerGone, proto.ProtocolError, OSError):
            pass

    def recv(self):
        """Next message as (type, payload, fd or None); None when nothing is pending."""
        try:
            data, anc, flags, _ = self.sock.recvmsg(proto.MSG_SIZE + 1, _ANC_SPACE)
        except BlockingIOError:
            return None
        except ConnectionResetError:
            raise PeerGone("connection reset") from None
        fds = []
        for level, kind, raw in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.extend(array.array("i", raw[: len(raw) - len(raw) % 4]))
        if not data and not fds:
            raise PeerGone("peer closed the control socket")
        try:
            if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
                raise proto.ProtocolError("Invalid message size (truncated)")
            if len(fds) > 1:
                raise proto.ProtocolError(f"{len(fds)} file descriptors in one message")
            msg_type, payload = proto.decode(data)
        except proto.ProtocolError:
            for fd in fds:
                os.close(fd)
            raise
        return msg_type, payload, (fds[0] if fds else None)

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

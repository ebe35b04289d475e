"""Host side of one emulated NIC: the unix datagram socket QEMU's netdev talks to.

One datagram = one Ethernet frame without FCS (notes §8). The socket is bound
before QEMU starts (QEMU drops frames sent before it exists) and replies go to
QEMU's own bound path.
"""

from __future__ import annotations

import os
import select
import socket
import time

MIN_FRAME = 60   # no FCS on this backend; e1000e counts shorter frames as errors (notes §7)


class Wire:
    def __init__(self, host_path: str, qemu_path: str):
        self.host_path, self.qemu_path = host_path, qemu_path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind(host_path)
        self.sock.setblocking(False)

    def send(self, frame: bytes) -> bytes:
        """Send one frame (padded to 60 bytes); returns the bytes actually sent."""
        if len(frame) < MIN_FRAME:
            frame = frame + bytes(MIN_FRAME - len(frame))
        deadline = time.monotonic() + 1.0
        while True:
            try:
                self.sock.sendto(frame, self.qemu_path)
                return frame
            except (FileNotFoundError, ConnectionRefusedError):
                return b""      # QEMU not up yet: the frame is lost, as on a wire without link
            except BlockingIOError:
                # QEMU stops reading while the NIC cannot receive (no RX buffers, RX off).
                if time.monotonic() > deadline:
                    return b""
                time.sleep(0.005)

    def recv(self, timeout: float) -> bytes | None:
        r, _, _ = select.select([self.sock], [], [], max(0.0, timeout))
        if not r:
            return None
        return self.sock.recv(65536)

    def recv_until(self, pred, timeout: float) -> bytes | None:
        """First frame for which ``pred(frame)`` is true within ``timeout``; others are dropped."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            f = self.recv(left)
            if f is not None and pred(f):
                return f

    def drain(self) -> list[bytes]:
        out = []
        while (f := self.recv(0)) is not None:
            out.append(f)
        return out

    def close(self) -> None:
        self.sock.close()
        try:
            os.unlink(self.host_path)
        except FileNotFoundError:
            pass

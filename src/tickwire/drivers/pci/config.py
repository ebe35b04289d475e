"""PCI configuration space through a file descriptor (sysfs ``config`` or the VFIO
config region): read/write at an offset, capability list walk.

Offsets: PCI Local Bus Specification 3.0 §6.1 (header) and §6.7 (capabilities).
"""

from __future__ import annotations

import os
import struct

COMMAND = 0x04
STATUS = 0x06
CAP_PTR = 0x34
CMD_IO = 0x1            # I/O space enable
CMD_MEMORY = 0x2        # memory space enable
CMD_BUS_MASTER = 0x4    # the device may issue DMA
CMD_INTX_DISABLE = 0x400
STATUS_CAP_LIST = 0x10
CAP_VENDOR = 0x09       # vendor-specific capability (virtio uses it, virtio 1.2 §4.1.4)


class ConfigSpace:
    def __init__(self, fd: int, base: int = 0, size: int = 256):
        self.fd, self.base, self.size = fd, base, size

    def _check(self, off: int, n: int) -> None:
        if off < 0 or off + n > self.size:
            raise ValueError(f"config space access at {off:#x}+{n} outside {self.size} bytes")

    def read(self, off: int, n: int) -> bytes:
        self._check(off, n)
        data = os.pread(self.fd, n, self.base + off)
        if len(data) != n:
            raise OSError(f"config space: short read at {off:#x}")
        return data

    def write(self, off: int, data: bytes) -> None:
        self._check(off, len(data))
        if os.pwrite(self.fd, data, self.base + off) != len(data):
            raise OSError(f"config space: short write at {off:#x}")

    def u8(self, off: int) -> int:
        return self.read(off, 1)[0]

    def u16(self, off: int) -> int:
        return struct.unpack("<H", self.read(off, 2))[0]

    def u32(self, off: int) -> int:
        return struct.unpack("<I", self.read(off, 4))[0]

    def set_u16(self, off: int, value: int) -> None:
        self.write(off, struct.pack("<H", value))

    def enable(self, io: bool = False) -> None:
        """Memory (or I/O) decoding + bus mastering; INTx off since we poll."""
        cmd = self.u16(COMMAND) | CMD_MEMORY | CMD_BUS_MASTER | CMD_INTX_DISABLE | (CMD_IO if io else 0)
        self.set_u16(COMMAND, cmd)

    def disable_bus_master(self) -> None:
        self.set_u16(COMMAND, self.u16(COMMAND) & ~CMD_BUS_MASTER & 0xFFFF)

    def capabilities(self):
        """Yields (offset, cap_id); the walk is bounded so a looping list cannot hang us."""
        if not self.u16(STATUS) & STATUS_CAP_LIST:
            return
        off, seen = self.u8(CAP_PTR) & 0xFC, 0
        while off >= 0x40 and seen < 48:
            cap_id, nxt = self.read(off, 2)
            yield off, cap_id
            off, seen = nxt & 0xFC, seen + 1

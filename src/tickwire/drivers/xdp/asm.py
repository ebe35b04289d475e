"""A tiny eBPF assembler: just the instructions the XDP filter needs, with labels.

Instruction encoding (Documentation/bpf/standardization/instruction-set.rst):
8 bytes = opcode u8, regs u8 (dst low nibble, src high nibble), off s16, imm s32.
``ld_imm64`` takes two slots. Jumps are relative to the next instruction and are
resolved from labels when ``assemble()`` runs.
"""

from __future__ import annotations

import struct

# classes / fields
_LDX, _ALU64, _JMP, _JMP32 = 0x01, 0x07, 0x05, 0x06
_MEM = 0x60
_SIZE = {1: 0x10, 2: 0x08, 4: 0x00, 8: 0x18}   # B, H, W, DW
_K, _X = 0x00, 0x08
_OPS = {"add": 0x00, "and": 0x50, "mov": 0xb0}
_JOPS = {"ja": 0x00, "jeq": 0x10, "jgt": 0x20, "jne": 0x50}
CALL, EXIT = 0x85, 0x95
PSEUDO_MAP_FD = 1


class Asm:
    def __init__(self):
        self._insns: list[list] = []          # [opcode, dst, src, off|label, imm]
        self._labels: dict[str, int] = {}

    def _emit(self, op, dst=0, src=0, off=0, imm=0):
        self._insns.append([op, dst, src, off, imm])

    def label(self, name: str) -> None:
        if name in self._labels:
            raise ValueError(f"label {name!r} defined twice")
        self._labels[name] = len(self._insns)

    # r[dst] = *(size*)(r[src] + off)
    def ldx(self, size: int, dst: int, src: int, off: int) -> None:
        self._emit(_LDX | _MEM | _SIZE[size], dst, src, off)

    def alu64_imm(self, op: str, dst: int, imm: int) -> None:
        self._emit(_ALU64 | _K | _OPS[op], dst, 0, 0, imm)

    def mov_reg(self, dst: int, src: int) -> None:
        self._emit(_ALU64 | _X | _OPS["mov"], dst, src)

    def jmp_imm(self, op: str, dst: int, imm: int, label: str, wide32: bool = False) -> None:
        """Conditional jump against an immediate. ``wide32`` compares the low 32 bits
        only (JMP32 class), so a u32 such as an IP address whose top bit is set still
        matches: a 64-bit compare would sign-extend the s32 immediate."""
        self._emit((_JMP32 if wide32 else _JMP) | _K | _JOPS[op], dst, 0, label, imm)

    def jmp_reg(self, op: str, dst: int, src: int, label: str) -> None:
        self._emit(_JMP | _X | _JOPS[op], dst, src, label)

    def ja(self, label: str) -> None:
        self._emit(_JMP | _JOPS["ja"], 0, 0, label)

    def ld_map_fd(self, dst: int, fd: int) -> None:
        self._emit(0x18, dst, PSEUDO_MAP_FD, 0, fd)
        self._emit(0, 0, 0, 0, 0)

    def call(self, helper: int) -> None:
        self._emit(CALL, 0, 0, 0, helper)

    def exit(self) -> None:
        self._emit(EXIT)

    def __len__(self):
        return len(self._insns)

    def assemble(self) -> bytes:
        out = bytearray()
        for pc, (op, dst, src, off, imm) in enumerate(self._insns):
            if isinstance(off, str):
                if off not in self._labels:
                    raise ValueError(f"undefined label {off!r}")
                off = self._labels[off] - (pc + 1)
                if not -32768 <= off <= 32767:
                    raise ValueError("jump out of range")
            imm = imm - (1 << 32) if imm >= 1 << 31 else imm
            out += struct.pack("<BBhi", op, (src << 4) | dst, off, imm)
        return bytes(out)

"""The bpf(2) system call through ctypes: just the commands AF_XDP needs.

No libbpf: each command packs its ``union bpf_attr`` by byte offset, exactly as
laid out in include/uapi/linux/bpf.h (offsets verified on 6.18, see
shared/notes/af_xdp.md §2). Every failure raises ``BpfError`` carrying errno and,
for PROG_LOAD, the verifier's own text.
"""

from __future__ import annotations

import ctypes
import os
import platform
import struct

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long

SYS_BPF = {"x86_64": 321, "aarch64": 280}.get(platform.machine(), 321)

# commands (enum bpf_cmd)
MAP_CREATE, MAP_LOOKUP_ELEM, MAP_UPDATE_ELEM, MAP_DELETE_ELEM = 0, 1, 2, 3
PROG_LOAD, PROG_TEST_RUN, LINK_CREATE = 5, 10, 28

MAP_TYPE_XSKMAP = 17
PROG_TYPE_XDP = 6
ATTACH_TYPE_XDP = 37

# XDP attach flags (include/uapi/linux/if_link.h)
XDP_FLAGS_UPDATE_IF_NOEXIST, XDP_FLAGS_SKB_MODE, XDP_FLAGS_DRV_MODE = 1, 2, 4

# XDP actions
XDP_ABORTED, XDP_DROP, XDP_PASS, XDP_TX, XDP_REDIRECT = range(5)


class BpfError(OSError):
    """A bpf() command failed; ``errno`` is set and ``log`` holds verifier text if any."""

    def __init__(self, err: int, what: str, log: str = ""):
        msg = f"{what}: {os.strerror(err)} (errno {err})"
        if log:
            msg += "\n" + log
        super().__init__(err, msg)
        self.log = log


def _bpf(cmd: int, attr: ctypes.Array, what: str, keep=()) -> int:
    """Run one bpf command; ``keep`` holds ctypes buffers the attr points to (alive for the call)."""
    ret = _libc.syscall(SYS_BPF, cmd, ctypes.byref(attr), ctypes.sizeof(attr))
    if ret < 0:
        raise BpfError(ctypes.get_errno(), what)
    return ret


def _attr(size: int):
    return (ctypes.c_ubyte * size)()


def _put(attr, fmt: str, off: int, *vals) -> None:
    struct.pack_into(fmt, attr, off, *vals)


def _addr(buf) -> int:
    return ctypes.addressof(buf)


def map_create_xskmap(max_entries: int, name: str = "tw_xsks") -> int:
    """XSKMAP: key u32 queue id -> value u32 AF_XDP socket fd. Returns the map fd."""
    attr = _attr(72)
    _put(attr, "<IIII", 0, MAP_TYPE_XSKMAP, 4, 4, max_entries)
    attr[28:28 + 15] = (ctypes.c_ubyte * 15).from_buffer_copy(name.encode()[:15].ljust(15, b"\0"))
    return _bpf(MAP_CREATE, attr, "bpf(MAP_CREATE xskmap)")


def map_update_u32(map_fd: int, key: int, value: int) -> None:
    k, v = ctypes.c_uint32(key), ctypes.c_uint32(value)
    attr = _attr(32)
    _put(attr, "<IxxxxQQQ", 0, map_fd, ctypes.addressof(k), ctypes.addressof(v), 0)
    _bpf(MAP_UPDATE_ELEM, attr, f"bpf(MAP_UPDATE_ELEM key={key})")


def map_delete_u32(map_fd: int, key: int) -> None:
    k = ctypes.c_uint32(key)
    attr = _attr(32)
    _put(attr, "<IxxxxQ", 0, map_fd, ctypes.addressof(k))
    _bpf(MAP_DELETE_ELEM, attr, f"bpf(MAP_DELETE_ELEM key={key})")


def prog_load_xdp(insns: bytes, name: str = "tw_xdp") -> int:
    """Load an XDP program; on rejection the BpfError message ends with the verifier log."""
    if len(insns) % 8:
        raise ValueError("eBPF code must be a whole number of 8-byte instructions")
    code = ctypes.create_string_buffer(insns, len(insns))
    lic = ctypes.create_string_buffer(b"GPL")
    log = ctypes.create_string_buffer(1 << 16)
    attr = _attr(128)
    _put(attr, "<IIQQIIQ", 0, PROG_TYPE_XDP, len(insns) // 8, _addr(code), _addr(lic),
         1, len(log), _addr(log))
    attr[48:48 + 15] = (ctypes.c_ubyte * 15).from_buffer_copy(name.encode()[:15].ljust(15, b"\0"))
    ret = _libc.syscall(SYS_BPF, PROG_LOAD, ctypes.byref(attr), ctypes.sizeof(attr))
    if ret < 0:
        raise BpfError(ctypes.get_errno(), "bpf(PROG_LOAD xdp)", log.value.decode(errors="replace").strip())
    return ret


def link_create_xdp(prog_fd: int, ifindex: int, flags: int) -> int:
    """Attach through a bpf_link: the program detaches when the returned fd closes,
    including when the process dies (kernel >= 5.9; notes §4)."""
    attr = _attr(64)
    _put(attr, "<IIII", 0, prog_fd, ifindex, ATTACH_TYPE_XDP, flags)
    return _bpf(LINK_CREATE, attr, f"bpf(LINK_CREATE ifindex={ifindex} flags={flags})")


def prog_test_run(prog_fd: int, frame: bytes, repeat: int = 1) -> tuple[int, bytes]:
    """Run an XDP program on a synthetic frame (no NIC); returns (action, frame out)."""
    din = ctypes.create_string_buffer(frame, len(frame))
    dout = ctypes.create_string_buffer(len(frame) + 512)
    attr = _attr(80)
    _put(attr, "<IIIIQQI", 0, prog_fd, 0, len(frame), len(dout), _addr(din), _addr(dout), repeat)
    _bpf(PROG_TEST_RUN, attr, "bpf(PROG_TEST_RUN)")
    retval, _, size_out = struct.unpack_from("<III", attr, 4)
    return retval, dout.raw[:size_out]

"""pcap capture files (libpcap format), read and write, nanosecond or microsecond.

Format (pcap-savefile(5), IETF draft-ietf-opsawg-pcap): a 24-byte global header
    magic u32 (0xA1B23C4D ns / 0xA1B2C3D4 us), version 2.4, thiszone i32, sigfigs u32,
    snaplen u32, linktype u32 (1 = Ethernet)
then per record a 16-byte header: ts_sec u32, ts_frac u32 (ns or us), incl_len u32,
orig_len u32, followed by incl_len bytes. Either byte order is accepted on read
(the magic tells); we write little-endian nanosecond files.

Every length read from a file is checked: a record longer than the snaplen or
the remaining file is reported as a truncated/corrupt file, not read past.
"""

from __future__ import annotations

import struct
import time
from typing import BinaryIO, Iterator, NamedTuple

MAGIC_NS, MAGIC_US = 0xA1B23C4D, 0xA1B2C3D4
LINKTYPE_ETHERNET = 1
_GLOBAL = struct.Struct("<IHHiIII")
_RECORD = "IIII"
MAX_SNAPLEN = 262144


class PcapError(ValueError):
    """A capture file that cannot be read; the message names the offset and the problem."""


class Record(NamedTuple):
    ts_ns: int
    data: bytes
    orig_len: int


class PcapWriter:
    def __init__(self, path_or_file, snaplen: int = MAX_SNAPLEN, linktype: int = LINKTYPE_ETHERNET):
        self._f: BinaryIO = open(path_or_file, "wb") if isinstance(path_or_file, (str, bytes)) or hasattr(path_or_file, "__fspath__") else path_or_file
        self.snaplen = snaplen
        self._rec = struct.Struct("<" + _RECORD)
        self._f.write(_GLOBAL.pack(MAGIC_NS, 2, 4, 0, 0, snaplen, linktype))
        self.count = 0

    def write(self, frame: bytes, ts_ns: int | None = None) -> None:
        if ts_ns is None:
            ts_ns = time.time_ns()
        data = frame[: self.snaplen]
        sec, ns = divmod(ts_ns, 1_000_000_000)
        self._f.write(self._rec.pack(sec, ns, len(data), len(frame)))
        self._f.write(data)
        self.count += 1

    def flush(self) -> None:
        self._f.flush()

    def close(self) -> None:
        self._f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class PcapReader:
    """Iterate ``Record``s; raises PcapError on a corrupt header or record."""

    def __init__(self, path_or_file):
        opened = isinstance(path_or_file, (str, bytes)) or hasattr(path_or_file, "__fspath__")
        self._f: BinaryIO = open(path_or_file, "rb") if opened else path_or_file
        try:
            self._read_header()
        except BaseException:
            if opened:
                self._f.close()  # a refused file is not left open (a `with` block never entered)
            raise

    def _read_header(self) -> None:
        head = self._f.read(24)
        if len(head) < 24:
            raise PcapError(f"pcap: file shorter than the 24-byte global header ({len(head)} bytes)")
        for endian in "<>":
            (magic,) = struct.unpack(endian + "I", head[:4])
            if magic in (MAGIC_NS, MAGIC_US):
                break
        else:
            raise PcapError(f"pcap: bad magic {head[:4].hex()} (not a pcap file; pcapng is not supported)")
        self._scale = 1 if magic == MAGIC_NS else 1000
        _, vmaj, vmin, _, _, self.snaplen, self.linktype = struct.unpack(endian + "IHHiIII", head)
        if vmaj != 2:
            raise PcapError(f"pcap: unsupported version {vmaj}.{vmin}")
        self.nanosecond = magic == MAGIC_NS
        self._rec = struct.Struct(endian + _RECORD)
        self._offset = 24

    def __iter__(self) -> Iterator[Record]:
        limit = max(self.snaplen, 65535) if 0 < self.snaplen <= MAX_SNAPLEN else MAX_SNAPLEN
        while True:
            head = self._f.read(16)
            if not head:
                return
            if len(head) < 16:
                raise PcapError(f"pcap: truncated record header at offset {self._offset}")
            sec, frac, incl, orig = self._rec.unpack(head)
            if incl > limit:
                raise PcapError(f"pcap: record at offset {self._offset} claims {incl} bytes (snaplen {self.snaplen})")
            data = self._f.read(incl)
            if len(data) < incl:
                raise PcapError(f"pcap: record at offset {self._offset} truncated ({len(data)} of {incl} bytes)")
            self._offset += 16 + incl
            yield Record(sec * 1_000_000_000 + frac * self._scale, data, orig)

    def close(self) -> None:
        self._f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def read_frames(path) -> list[bytes]:
    with PcapReader(path) as r:
        return [rec.data for rec in r]

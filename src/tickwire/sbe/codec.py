"""The readable Python face of an SBE schema: message bytes <-> dicts.

Used by `tickwire feed decode`, by tests and by tools; never on the hot path (that is
sbe.codegen / feed.handler). Field names are the schema's. Values are raw integers
(prices stay as {"mantissa": m, "exponent": e}); an optional field holding its null
value decodes to None; enums decode to their validValue name when known (the raw
value otherwise), sets to the list of choice names.

Decoding follows SBE 1.0 §3: the root block is skipped by the *header's* blockLength
and group entries by the *group header's* blockLength (blocks may be longer than the
fields we know: newer versions append fields). Fields added after the message's
version (sinceVersion) or lying beyond the acting blockLength decode as absent.
Every length is checked against the buffer: a short buffer raises DecodeError.
"""

from __future__ import annotations

import struct

from .schema import Composite, Enum, Field, Group, Schema, Set, Type


class DecodeError(ValueError):
    pass


class Codec:
    def __init__(self, schema: Schema):
        self.schema = schema
        self.bo = schema.byte_order
        h = schema.header
        self._hdr = [(n, self._fmt(enc), off) for n, enc, off in h.members]
        self.header_size = h.size

    # ------------------------------------------------------------ primitives
    def _fmt(self, t: Type) -> struct.Struct:
        from .schema import PRIMITIVES
        code = PRIMITIVES[t.primitive][1]
        if t.primitive == "char":
            return struct.Struct(f"{t.length}s")
        return struct.Struct(f"{self.bo}{t.length if t.length != 1 else ''}{code}")

    def _need(self, buf, end, where):
        if end > len(buf):
            raise DecodeError(f"{where}: needs {end} bytes, buffer has {len(buf)}")

    def _read_type(self, t: Type, buf, off):
        if t.presence == "constant":
            return t.constant
        v = self._fmt(t).unpack_from(buf, off)
        if t.primitive == "char":
            return v[0].split(b"\0", 1)[0].decode("latin-1")
        if t.length != 1:
            return list(v)
        v = v[0]
        if t.presence == "optional" and v == t.null:
            return None
        return v

    def _read(self, enc, buf, off):
        if isinstance(enc, Type):
            return self._read_type(enc, buf, off)
        if isinstance(enc, Enum):
            raw = self._read_type(Type("", enc.encoding.primitive), buf, off)
            if enc.encoding.presence == "optional" and raw == enc.encoding.null:
                return None
            for name, v in enc.values.items():
                if v == raw:
                    return name
            return raw
        if isinstance(enc, Set):
            raw = self._read_type(Type("", enc.encoding.primitive), buf, off)
            return [n for n, bit in enc.choices.items() if raw >> bit & 1]
        if isinstance(enc, Composite):
            return {n: self._read(e, buf, off + o) for n, e, o in enc.members}
        raise TypeError(enc)

    # ------------------------------------------------------------ decode
    def header(self, buf, off=0) -> dict:
        self._need(buf, off + self.header_size, "message header")
        return {n: f.unpack_from(buf, off + o)[0] for n, f, o in self._hdr}

    def decode(self, buf, off=0, end=None) -> tuple[dict, int]:
        """Decode one message at ``off``; returns (dict, bytes consumed incl. header)."""
        end = len(buf) if end is None else min(end, len(buf))
        view = memoryview(buf)[:end]
        hdr = self.header(view, off)
        msg = self.schema.messages.get(hdr["templateId"])
        if msg is None:
            raise DecodeError(f"unknown templateId {hdr['templateId']}")
        if hdr["schemaId"] != self.schema.id:
            raise DecodeError(f"schemaId {hdr['schemaId']} != {self.schema.id}")
        out = {"_template": msg.name, "_templateId": msg.id}
        pos = self._block(msg, view, off + self.header_size, hdr["blockLength"], hdr["version"], out)
        return out, pos - off

    def _block(self, g: Group, buf, off, block_len, version, out) -> int:
        self._need(buf, off + block_len, g.name)
        for f in g.fields:
            if f.constant is not None:
                out[f.name] = f.constant
            elif f.since_version > version or f.offset + f.size > block_len:
                out[f.name] = None  # absent in this message's version
            else:
                out[f.name] = self._read(f.encoding, buf, off + f.offset)
        pos = off + block_len
        for sub in g.groups:
            if sub.since_version > version:
                continue
            dim = sub.dimension
            self._need(buf, pos + dim.size, f"{sub.name} group header")
            bl_t, bl_o = dim.member("blockLength")
            n_t, n_o = dim.member("numInGroup")
            entry_len = self._read_type(bl_t, buf, pos + bl_o)
            count = self._read_type(n_t, buf, pos + n_o)
            pos += dim.size
            self._need(buf, pos + entry_len * count, f"{sub.name} ({count} x {entry_len} bytes)")
            entries = []
            for _ in range(count):
                e = {}
                pos = self._block(sub, buf, pos, entry_len, version, e)
                entries.append(e)
            out[sub.name] = entries
        for d in g.data:
            if d.since_version > version:
                continue
            lt, lo = d.encoding.member("length")
            self._need(buf, pos + lo + lt.size, f"{d.name} length")
            n = self._read_type(lt, buf, pos + lo)
            _, vo = d.encoding.member("varData")
            start = pos + (vo if vo is not None else lo + lt.size)
            self._need(buf, start + n, d.name)
            out[d.name] = bytes(buf[start:start + n])
            pos = start + n
        return pos

    # ------------------------------------------------------------ encode
    def encode(self, template, values: dict, version=None, block_length=None) -> bytes:
        """Encode one message (header + body). Missing optional fields get their null."""
        msg = self.schema.message(template)
        out = bytearray(self.header_size)
        hdr = {"blockLength": msg.block_length if block_length is None else block_length,
               "templateId": msg.id, "schemaId": self.schema.id,
               "version": self.schema.version if version is None else version}
        for n, f, o in self._hdr:
            f.pack_into(out, o, hdr[n])
        self._encode_block(msg, values, out, hdr["blockLength"])
        return bytes(out)

    def _encode_block(self, g: Group, values, out: bytearray, block_len):
        base = len(out)
        out.extend(bytes(block_len))
        for f in g.fields:
            if f.constant is not None or f.offset + f.size > block_len:
                continue
            self._write(f.encoding, values.get(f.name), out, base + f.offset, f)
        for sub in g.groups:
            entries = values.get(sub.name, [])
            dim = sub.dimension
            hpos = len(out)
            out.extend(bytes(dim.size))
            bl_t, bl_o = dim.member("blockLength")
            n_t, n_o = dim.member("numInGroup")
            self._fmt(bl_t).pack_into(out, hpos + bl_o, sub.block_length)
            self._fmt(n_t).pack_into(out, hpos + n_o, len(entries))
            for e in entries:
                self._encode_block(sub, e, out, sub.block_length)
        for d in g.data:
            raw = values.get(d.name, b"")
            lt, lo = d.encoding.member("length")
            hdr = bytearray(lo + lt.size)
            self._fmt(lt).pack_into(hdr, lo, len(raw))
            out.extend(hdr)
            out.extend(raw)

    def _write(self, enc, v, out, off, f: Field):
        if isinstance(enc, Type):
            if enc.presence == "constant":
                return
            if v is None:
                if enc.presence != "optional" and f.presence != "optional":
                    raise ValueError(f"required field {f.name} has no value")
                v = enc.null if enc.primitive != "char" else ""
            if enc.primitive == "char":
                b = v.encode("latin-1") if isinstance(v, str) else bytes(v)
                if len(b) > enc.length:
                    raise ValueError(f"{f.name}: {v!r} longer than {enc.length}")
                self._fmt(enc).pack_into(out, off, b)
            elif enc.length != 1:
                self._fmt(enc).pack_into(out, off, *v)
            else:
                self._fmt(enc).pack_into(out, off, v)
        elif isinstance(enc, Enum):
            if v is None:
                v = enc.encoding.null
            elif isinstance(v, str) and v in enc.values:
                v = enc.values[v]
            if enc.encoding.primitive == "char" and isinstance(v, int):
                v = chr(v)
            self._write(Type("", enc.encoding.primitive), v, out, off, f)
        elif isinstance(enc, Set):
            bits = v if isinstance(v, int) else sum(1 << enc.choices[c] for c in (v or []))
            self._write(Type("", enc.encoding.primitive), bits, out, off, f)
        elif isinstance(enc, Composite):
            v = v if isinstance(v, dict) else ({} if v is None else {"mantissa": v})
            for n, e, o in enc.members:
                if isinstance(e, Type) and e.presence == "optional" and n not in v:
                    self._write(e, None, out, off + o, f)
                elif n in v or not (isinstance(e, Type) and e.presence == "constant"):
                    self._write(e, v.get(n), out, off + o, Field(f"{f.name}.{n}", 0, e, 0, f.presence))


def decimal_str(mantissa: int, exponent: int) -> str:
    """Exact decimal text for a fixed-point value (no float on the way)."""
    from decimal import Decimal
    d = Decimal(mantissa).scaleb(exponent)
    s = format(d, "f")
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return s

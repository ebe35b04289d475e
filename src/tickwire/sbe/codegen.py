"""SBE schema -> a generated Python module of Numba-compiled encoders and decoders.

``compile_schema(schema)`` writes plain Python source (one small ``@njit(cache=True)``
function per field, group header and block, every offset a literal taken from the
schema) to a cache file named after the schema's hash, imports it and returns the
module. Because the code lives in a real file, Numba's on-disk cache works for it, and
the functions inline into any caller's Numba loop (the exchange simulator's publisher,
an order-entry session) at the cost of one load or store each.

Names, for message ``M`` (schema name, e.g. MDIncrementalRefreshBook46), group ``G``:

    M_TEMPLATE_ID, M_BLOCK_LENGTH, SCHEMA_ID, SCHEMA_VERSION, HEADER_SIZE   constants
    M_encode(buf, off, <root fields>) -> offset after the root block (writes the header)
    M_G_encode_header(buf, off, count) -> offset of the first entry
    M_G_encode(buf, off, <entry fields>) -> offset after the entry
    M_<Field>(buf, body) / M_G_<Field>(buf, entry)  read a field (raw: prices are the
                                                      int64 mantissa, enums/sets raw)
    M_G_dimension(buf, off) -> (blockLength, numInGroup, first entry offset)
    header(buf, off) -> (blockLength, templateId, schemaId, version)

Field arguments are integers (the mantissa for a price composite, the raw value of an
enum or set); a char[N] field takes a uint8 array (copied, NUL padded). Constant fields
take no argument. Readers do no bounds checks (callers check sizes first, as
feed.handler does); ``M_G_dimension`` returns the header so the caller can. Variable-
length data and big-endian schemas are served by the Python face (sbe.codec) only.
"""

from __future__ import annotations

import hashlib
import importlib.util
import keyword
import os
import re
import sys
from pathlib import Path

from .schema import Composite, Enum, Field, Group, Schema, Set, Type

_READ = {("int", 1): "rd_i8", ("int", 2): "rd_i16", ("int", 4): "rd_i32", ("int", 8): "rd_i64",
         ("uint", 1): "rd_u8", ("uint", 2): "rd_u16", ("uint", 4): "rd_u32", ("uint", 8): "rd_i64",
         ("char", 1): "rd_u8"}
_WRITE = {1: "wr_u8", 2: "wr_u16", 4: "wr_u32", 8: "wr_u64"}
CODEGEN_VERSION = "1"


def _ident(name: str) -> str:
    s = re.sub(r"\W", "_", name)
    if not s or s[0].isdigit() or keyword.iskeyword(s):
        s = "_" + s
    return s


def _prim(t: Type):
    kind = "char" if t.primitive == "char" else ("uint" if t.primitive.startswith("uint") else "int")
    if t.primitive in ("float", "double"):
        return None
    return kind, PRIM_SIZE[t.primitive]


PRIM_SIZE = {"char": 1, "int8": 1, "int16": 2, "int32": 4, "int64": 8, "uint8": 1, "uint16": 2,
             "uint32": 4, "uint64": 8}


def _scalar(enc):
    """(encoding Type used on the wire, extra offset) for a field we expose as one integer."""
    if isinstance(enc, Type):
        return enc, 0
    if isinstance(enc, (Enum, Set)):
        return enc.encoding, 0
    if isinstance(enc, Composite):
        m, off = enc.member("mantissa")
        if isinstance(m, Type) and m.presence != "constant":
            return m, off
    return None, 0


class _Gen:
    def __init__(self, schema: Schema):
        self.s = schema
        self.out = []

    def w(self, line=""):
        self.out.append(line)

    def fn(self, name, args, body, doc=None):
        self.w("@njit(cache=True)")
        self.w(f"def {name}({', '.join(args)}):")
        if doc:
            self.w(f"    {doc!r}")       # repr: a schema's names cannot close the string
        for b in body:
            self.w("    " + b)
        self.w()
        self.w()

    def field_io(self, prefix, f: Field, base_arg):
        """Reader function for one field; returns (arg name, write statements) for encoders."""
        if f.constant is not None:
            return None, []
        name = _ident(f.name)
        enc = f.encoding
        if isinstance(enc, Type) and enc.primitive == "char" and enc.length > 1:
            n = enc.length
            self.fn(f"{prefix}_{name}", ["buf", base_arg], [f"return buf[{base_arg} + {f.offset}:{base_arg} + {f.offset + n}]"],
                    f"{f.name}: char[{n}] view (NUL padded)")
            return name, [f"for _i in range({n}):",
                          f"    buf[off + {f.offset} + _i] = {name}[_i] if _i < {name}.size else 0"]
        t, extra = _scalar(enc)
        if t is None or t.length != 1 or _prim(t) is None:
            return None, []     # arrays of non-char primitives, floats: Python face only
        kind = _prim(t)
        off = f.offset + extra
        self.fn(f"{prefix}_{name}", ["buf", base_arg], [f"return {_READ[kind]}(buf, {base_arg} + {off})"],
                f"{f.name} @ {off} ({t.primitive}{', raw' if not isinstance(enc, Type) else ''})")
        body = [f"{_WRITE[kind[1]]}(buf, off + {off}, {name})"]
        if isinstance(enc, Composite):   # constant members (exponent) are not on the wire
            for mname, m, moff in enc.members:
                if isinstance(m, Type) and m.presence != "constant" and mname != "mantissa" and _prim(m):
                    body.append(f"{_WRITE[_prim(m)[1]]}(buf, off + {f.offset + moff}, {m.null})")
        return name, body

    def block(self, prefix, g: Group, is_message: bool):
        args, body = [], []
        base_arg = "body" if is_message else "entry"
        for f in g.fields:
            a, b = self.field_io(prefix, f, base_arg)
            if a:
                args.append(a)
                body += b
        if is_message:
            hdr = self.s.header
            pre = ["for _i in range(M_BLOCK_LENGTH):".replace("M_", prefix + "_"),
                   f"    buf[off + HEADER_SIZE + _i] = 0"]
            hw = []
            for member, value in (("blockLength", f"{prefix}_BLOCK_LENGTH"), ("templateId", f"{prefix}_TEMPLATE_ID"),
                                  ("schemaId", "SCHEMA_ID"), ("version", "SCHEMA_VERSION")):
                t, o = hdr.member(member)
                hw.append(f"{_WRITE[t.size]}(buf, off + {o}, {value})")
            self.fn(f"{prefix}_encode", ["buf", "off"] + args,
                    hw + pre + ["off += HEADER_SIZE"] + body + [f"return off + {prefix}_BLOCK_LENGTH"],
                    f"Header + root block of {g.name}; returns the offset of its first group.")
        else:
            pre = [f"for _i in range({g.block_length}):", "    buf[off + _i] = 0"]
            self.fn(f"{prefix}_encode", ["buf", "off"] + args, pre + body + [f"return off + {g.block_length}"],
                    f"One {g.name} entry; returns the offset after it.")
        for sub in g.groups:
            self.group(f"{prefix}_{_ident(sub.name)}", sub)

    def group(self, prefix, g: Group):
        dim = g.dimension
        bl_t, bl_o = dim.member("blockLength")
        n_t, n_o = dim.member("numInGroup")
        self.w(f"{prefix}_BLOCK_LENGTH = {g.block_length}")
        self.w(f"{prefix}_DIMENSION_SIZE = {dim.size}")
        self.w()
        self.fn(f"{prefix}_encode_header", ["buf", "off", "count"],
                [f"for _i in range({dim.size}):", "    buf[off + _i] = 0",
                 f"{_WRITE[bl_t.size]}(buf, off + {bl_o}, {g.block_length})",
                 f"{_WRITE[n_t.size]}(buf, off + {n_o}, count)", f"return off + {dim.size}"],
                f"{dim.name} header for {g.name}; returns the offset of the first entry.")
        self.fn(f"{prefix}_dimension", ["buf", "off"],
                [f"return {_READ[_prim(bl_t)]}(buf, off + {bl_o}), {_READ[_prim(n_t)]}(buf, off + {n_o}), off + {dim.size}"],
                f"(blockLength, numInGroup, first entry) of {g.name}.")
        self.block(prefix, g, False)

    def run(self) -> str:
        s = self.s
        if s.byte_order != "<":
            raise NotImplementedError("generated Numba codecs are little-endian only; use sbe.codec for big-endian")
        # repr() of the whole text: the file name and package come from the schema's author and
        # must not be able to end the literal (the module is imported right after)
        self.w(repr(f"Generated by tickwire.sbe.codegen {CODEGEN_VERSION} from {Path(s.path).name} "
                    f"(package {s.package}, id {s.id}, version {s.version}). Do not edit."))
        self.w("from numba import njit")
        self.w("from tickwire.sbe.le import rd_i8, rd_i16, rd_i32, rd_i64, rd_u8, rd_u16, rd_u32, "
               "wr_u8, wr_u16, wr_u32, wr_u64")
        self.w()
        self.w(f"SCHEMA_ID = {s.id}")
        self.w(f"SCHEMA_VERSION = {s.version}")
        self.w(f"HEADER_SIZE = {s.header.size}")
        self.w()
        rd = [f"{_READ[_prim(t)]}(buf, off + {o})" for _, t, o in s.header.members if isinstance(t, Type)]
        self.fn("header", ["buf", "off"], [f"return {', '.join(rd)}"], "Message header fields as a tuple.")
        for tid, m in sorted(s.messages.items()):
            p = _ident(m.name)
            self.w(f"{p}_TEMPLATE_ID = {tid}")
            self.w(f"{p}_BLOCK_LENGTH = {m.block_length}")
            self.w()
            self.block(p, m, True)
        return "\n".join(self.out) + "\n"


def source(schema: Schema) -> str:
    return _Gen(schema).run()


def cache_dir() -> Path:
    d = os.environ.get("TICKWIRE_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "tickwire")
    p = Path(d) / "sbe"
    p.mkdir(parents=True, exist_ok=True)
    return p


def compile_schema(schema: Schema):
    """Generate (or reuse) the codec module for ``schema`` and import it."""
    src = source(schema)
    digest = hashlib.sha1(src.encode()).hexdigest()[:16]
    name = f"tw_sbe_{_ident(schema.package)[:40]}_{digest}"     # (a file name has 255 bytes at most)
    if name in sys.modules:
        return sys.modules[name]
    path = cache_dir() / f"{name}.py"
    if not path.exists() or path.read_text() != src:
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(src)
        os.replace(tmp, path)       # atomic: concurrent processes never see half a file
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod

"""FIX Simple Binary Encoding 1.0 XML schema -> an in-memory layout model.

Reads any SBE 1.0 message schema (CME MDP 3.0 v9-13, Coinbase Derivatives, Deribit,
tickwire's own subset) and resolves every field to a byte offset and an encoding.
Nothing here decodes bytes: sbe.codec (Python face), sbe.codegen (Numba) and
feed.layout (tables for the MDP 3.0 handler) all work from this model.

Spec references are to "Simple Binary Encoding Technical Specification 1.0"
(FIX Trading Community): §2 encodings/primitive types, §3 message structure,
§4 schema XML. Malformed XML raises SchemaError naming the offending element.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Optional

# §2.3 primitive types: (size, struct code, default nullValue for optional presence).
PRIMITIVES = {
    "char": (1, "c", 0),
    "int8": (1, "b", -(2**7)),
    "int16": (2, "h", -(2**15)),
    "int32": (4, "i", -(2**31)),
    "int64": (8, "q", -(2**63)),
    "uint8": (1, "B", 2**8 - 1),
    "uint16": (2, "H", 2**16 - 1),
    "uint32": (4, "I", 2**32 - 1),
    "uint64": (8, "Q", 2**64 - 1),
    "float": (4, "f", float("nan")),
    "double": (8, "d", float("nan")),
}


class SchemaError(ValueError):
    """The schema XML is malformed; the message names the element at fault."""


def _where(elem: ET.Element) -> str:
    tag = elem.tag.split("}")[-1]
    name = elem.get("name")
    return f"<{tag} name={name!r}>" if name else f"<{tag}>"


def _int(elem: ET.Element, attr: str, default: Optional[int] = None) -> Optional[int]:
    v = elem.get(attr)
    if v is None:
        return default
    try:
        return int(v.strip(), 0)
    except ValueError:
        raise SchemaError(f"{_where(elem)}: attribute {attr}={v!r} is not an integer") from None


def _local(tag: str) -> str:
    return tag.split("}")[-1]


# ---------------------------------------------------------------- encodings (§4.2-4.6)
@dataclass
class Type:
    """<type>: a primitive, optionally an array (length>1), optional or constant."""
    name: str
    primitive: str
    length: int = 1
    presence: str = "required"  # required | optional | constant
    null_value: Optional[int] = None
    constant: Optional[object] = None  # int, or str for char constants
    offset: Optional[int] = None       # only inside a composite
    since_version: int = 0

    @property
    def size(self) -> int:
        return 0 if self.presence == "constant" else PRIMITIVES[self.primitive][0] * self.length

    @property
    def null(self):
        return self.null_value if self.null_value is not None else PRIMITIVES[self.primitive][2]


@dataclass
class Enum:
    name: str
    encoding: Type             # the primitive (or named type) it is carried in
    values: dict               # validValue name -> int or single char
    offset: Optional[int] = None
    presence: str = "required"

    @property
    def size(self) -> int:
        return self.encoding.size


@dataclass
class Set:
    name: str
    encoding: Type
    choices: dict              # choice name -> bit number
    offset: Optional[int] = None

    @property
    def size(self) -> int:
        return self.encoding.size


@dataclass
class Composite:
    name: str
    members: list              # (name, encoding, offset-in-composite)
    offset: Optional[int] = None

    @property
    def size(self) -> int:
        end = 0
        for _, enc, off in self.members:
            end = max(end, off + enc.size)
        return end

    def member(self, name):
        for n, enc, off in self.members:
            if n == name:
                return enc, off
        return None, None


# ---------------------------------------------------------------- message structure (§3)
@dataclass
class Field:
    name: str
    id: int
    encoding: object           # Type | Enum | Set | Composite
    offset: int                # within the root block or group entry
    presence: str = "required"
    constant: Optional[object] = None  # resolved constant (valueRef or constant type)
    since_version: int = 0

    @property
    def size(self) -> int:
        return 0 if self.constant is not None else self.encoding.size


@dataclass
class Group:
    name: str
    id: int
    dimension: Composite       # blockLength + numInGroup
    block_length: int
    fields: list = field(default_factory=list)
    groups: list = field(default_factory=list)
    data: list = field(default_factory=list)
    since_version: int = 0

    def field(self, name):
        return next((f for f in self.fields if f.name == name), None)

    def group(self, name):
        return next((g for g in self.groups if g.name == name), None)


@dataclass
class Data:
    """<data>: length-prefixed bytes (§3.6); encoding is a composite length + varData."""
    name: str
    id: int
    encoding: Composite
    since_version: int = 0


@dataclass
class Message(Group):
    semantic_type: str = ""


@dataclass
class Schema:
    id: int
    version: int
    package: str
    byte_order: str            # "<" or ">"
    header: Composite
    types: dict
    messages: dict             # template id -> Message
    path: str = ""

    def message(self, key) -> Message:
        if isinstance(key, int):
            return self.messages[key]
        for m in self.messages.values():
            if m.name == key:
                return m
        raise KeyError(f"no message named {key!r} in schema {self.package}")


# ---------------------------------------------------------------- parser
class _Parser:
    def __init__(self, root: ET.Element):
        self.root = root
        self.raw = {}       # type name -> XML element
        self.types = {}     # type name -> resolved encoding

    def parse_types(self):
        for types in self.root.iter():
            if _local(types.tag) != "types":
                continue
            for elem in types:
                if not isinstance(elem.tag, str):
                    continue
                name = elem.get("name")
                if not name:
                    raise SchemaError(f"{_where(elem)} inside <types> has no name attribute")
                self.raw[name] = elem
        for name in self.raw:
            self.resolve(name, ())

    def resolve(self, name: str, stack: tuple):
        if name in self.types:
            return self.types[name]
        if name in PRIMITIVES:
            return Type(name, name)
        if name in stack:
            raise SchemaError(f"type {name!r} refers to itself ({' -> '.join(stack + (name,))})")
        elem = self.raw.get(name)
        if elem is None:
            return None
        enc = self.build(elem, stack + (name,))
        self.types[name] = enc
        return enc

    def build(self, elem: ET.Element, stack: tuple):
        kind = _local(elem.tag)
        name = elem.get("name", "")
        if kind == "type":
            prim = elem.get("primitiveType")
            if prim not in PRIMITIVES:
                raise SchemaError(f"{_where(elem)}: unknown primitiveType {prim!r}")
            presence = elem.get("presence", "required")
            if presence not in ("required", "optional", "constant"):
                raise SchemaError(f"{_where(elem)}: presence={presence!r}")
            length = _int(elem, "length", 1)
            if length < 0:
                raise SchemaError(f"{_where(elem)}: negative length")
            t = Type(name, prim, length, presence, _int(elem, "nullValue") if prim not in ("float", "double") else None,
                     offset=_int(elem, "offset"), since_version=_int(elem, "sinceVersion", 0))
            if presence == "constant":
                text = (elem.text or "").strip()
                if prim == "char":
                    t.constant = text
                else:
                    try:
                        t.constant = int(text, 0)
                    except ValueError:
                        raise SchemaError(f"{_where(elem)}: constant {text!r} is not an integer") from None
            return t
        if kind == "composite":
            members, pos = [], 0
            for child in elem:
                if not isinstance(child.tag, str):
                    continue
                ck = _local(child.tag)
                if ck == "ref":
                    target = self.resolve(child.get("type", ""), stack)
                    if target is None:
                        raise SchemaError(f"{_where(child)} in {_where(elem)}: unknown type {child.get('type')!r}")
                    off = _int(child, "offset")
                    enc = target
                elif ck in ("type", "enum", "set", "composite"):
                    enc = self.build(child, stack)
                    off = enc.offset
                else:
                    raise SchemaError(f"{_where(child)} is not allowed inside {_where(elem)}")
                off = pos if off is None else off
                if off < pos:
                    raise SchemaError(f"{_where(child)} in {_where(elem)}: offset {off} overlaps the previous member")
                members.append((child.get("name"), enc, off))
                pos = off + enc.size
            return Composite(name, members, _int(elem, "offset"))
        if kind in ("enum", "set"):
            etype = elem.get("encodingType")
            enc = self.resolve(etype, stack) if etype else None
            if not isinstance(enc, Type):
                raise SchemaError(f"{_where(elem)}: encodingType {etype!r} is not a primitive or <type>")
            values = {}
            for child in elem:
                if not isinstance(child.tag, str):
                    continue
                text = (child.text or "").strip()
                if not child.get("name") or not text:
                    raise SchemaError(f"{_where(child)} in {_where(elem)} needs a name and a value")
                if kind == "set" or enc.primitive != "char":
                    try:
                        values[child.get("name")] = int(text, 0)
                    except ValueError:
                        raise SchemaError(f"{_where(child)} in {_where(elem)}: {text!r} is not an integer") from None
                else:
                    values[child.get("name")] = text
            if kind == "enum":
                return Enum(name, enc, values, _int(elem, "offset"), enc.presence)
            return Set(name, enc, values, _int(elem, "offset"))
        raise SchemaError(f"{_where(elem)}: unknown element in <types>")

    def value_ref(self, elem, ref: str):
        enum_name, _, value = ref.partition(".")
        enum = self.types.get(enum_name)
        if not isinstance(enum, Enum) or value not in enum.values:
            raise SchemaError(f"{_where(elem)}: valueRef {ref!r} does not name an enum value")
        return enum.values[value]

    def parse_block(self, elem, target: Group):
        """Fields, then groups, then data, in order (§3.2); offsets default to running."""
        pos = 0
        for child in elem:
            if not isinstance(child.tag, str):
                continue
            kind = _local(child.tag)
            if kind == "field":
                if target.groups or target.data:
                    raise SchemaError(f"{_where(child)} in {_where(elem)} follows a group or data element")
                tname = child.get("type")
                enc = self.resolve(tname or "", ())
                if enc is None:
                    raise SchemaError(f"{_where(child)} in {_where(elem)}: unknown type {tname!r}")
                presence = child.get("presence", getattr(enc, "presence", "required"))
                constant = None
                if child.get("valueRef"):
                    constant = self.value_ref(child, child.get("valueRef"))
                    presence = "constant"
                elif isinstance(enc, Type) and enc.presence == "constant":
                    constant = enc.constant
                    presence = "constant"
                elif presence == "constant":
                    constant = (child.text or "").strip()
                off = _int(child, "offset")
                off = pos if off is None else off
                f = Field(child.get("name") or "", _int(child, "id", 0), enc, off, presence, constant,
                          _int(child, "sinceVersion", 0))
                if not f.name:
                    raise SchemaError(f"{_where(child)} in {_where(elem)} has no name")
                if f.size and off < pos:
                    raise SchemaError(f"{_where(child)} in {_where(elem)}: offset {off} overlaps the previous field")
                target.fields.append(f)
                if f.size:
                    pos = off + f.size
            elif kind == "group":
                if target.data:
                    raise SchemaError(f"{_where(child)} in {_where(elem)} follows a data element")
                dname = child.get("dimensionType", "groupSizeEncoding")
                dim = self.types.get(dname)
                if not isinstance(dim, Composite) or dim.member("numInGroup")[0] is None \
                        or dim.member("blockLength")[0] is None:
                    raise SchemaError(f"{_where(child)}: dimensionType {dname!r} is not a composite "
                                      "with blockLength and numInGroup")
                g = Group(child.get("name") or "", _int(child, "id", 0), dim, 0,
                          since_version=_int(child, "sinceVersion", 0))
                end = self.parse_block(child, g)
                g.block_length = _int(child, "blockLength", end)
                if g.block_length < end:
                    raise SchemaError(f"{_where(child)}: blockLength {g.block_length} < end of its fields {end}")
                target.groups.append(g)
            elif kind == "data":
                tname = child.get("type")
                enc = self.types.get(tname or "")
                if not isinstance(enc, Composite) or enc.member("length")[0] is None:
                    raise SchemaError(f"{_where(child)}: data type {tname!r} is not a composite with a length")
                target.data.append(Data(child.get("name") or "", _int(child, "id", 0), enc,
                                        _int(child, "sinceVersion", 0)))
            else:
                raise SchemaError(f"{_where(child)} is not allowed inside {_where(elem)}")
        return pos


def parse(source) -> Schema:
    """Parse a schema from a path, a file object, or XML text/bytes."""
    try:
        if isinstance(source, (bytes, str)) and str(source).lstrip().startswith(("<", "b'<")):
            root = ET.fromstring(source)
            path = "<string>"
        else:
            root = ET.parse(source).getroot()
            path = str(source)
    except ET.ParseError as e:
        raise SchemaError(f"schema XML is not well formed: {e}") from None
    if _local(root.tag) != "messageSchema":
        raise SchemaError(f"root element is {_where(root)}, expected <messageSchema>")
    p = _Parser(root)
    p.parse_types()
    header_name = root.get("headerType", "messageHeader")
    header = p.types.get(header_name)
    if not isinstance(header, Composite):
        raise SchemaError(f"<messageSchema>: header type {header_name!r} is missing or not a composite")
    for member in ("blockLength", "templateId", "schemaId", "version"):
        if header.member(member)[0] is None:
            raise SchemaError(f"<composite name={header_name!r}> has no {member} member")
    order = root.get("byteOrder", "littleEndian")
    if order not in ("littleEndian", "bigEndian"):
        raise SchemaError(f"<messageSchema>: byteOrder={order!r}")
    schema = Schema(_int(root, "id", 0), _int(root, "version", 0), root.get("package", ""),
                    "<" if order == "littleEndian" else ">", header, p.types, {}, path)
    for elem in root:
        if not isinstance(elem.tag, str) or _local(elem.tag) != "message":
            continue
        msg = Message(elem.get("name") or "", _int(elem, "id"), header, 0,
                      since_version=_int(elem, "sinceVersion", 0), semantic_type=elem.get("semanticType", ""))
        if msg.id is None or not msg.name:
            raise SchemaError(f"{_where(elem)} needs name and id")
        if msg.id in schema.messages:
            raise SchemaError(f"{_where(elem)}: template id {msg.id} is used twice")
        end = p.parse_block(elem, msg)
        msg.block_length = _int(elem, "blockLength", end)
        if msg.block_length < end:
            raise SchemaError(f"{_where(elem)}: blockLength {msg.block_length} < end of its fields {end}")
        schema.messages[msg.id] = msg
    return schema


def load(path) -> Schema:
    try:
        return parse(path)
    except OSError as e:
        raise SchemaError(f"cannot read schema {path}: {e.strerror}") from None


def builtin_path(name: str = "mdp3_subset.xml") -> str:
    from importlib.resources import files
    return str(files("tickwire.sbe") / "schemas" / name)

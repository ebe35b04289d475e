"""SBE 1.0: XML schema -> layout model (schema), Python face (codec), Numba codecs (codegen)."""

from .schema import Schema, SchemaError, builtin_path, load, parse  # noqa: F401

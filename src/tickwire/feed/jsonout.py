"""Decoded messages -> JSON-ready values: fixed-point composites become exact decimal
strings ("4512.25"), never floats; everything else passes through."""

from __future__ import annotations

from ..sbe.codec import decimal_str


def jsonable(v):
    if isinstance(v, dict):
        if set(v) == {"mantissa", "exponent"}:
            if v["mantissa"] is None:
                return None
            return decimal_str(v["mantissa"], v["exponent"])
        return {k: jsonable(x) for k, x in v.items()}
    if isinstance(v, list):
        return [jsonable(x) for x in v]
    if isinstance(v, bytes):
        return v.decode("latin-1")
    return v

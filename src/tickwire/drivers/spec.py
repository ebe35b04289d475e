"""Port spec strings: one syntax for CLI, config and API.

    SCHEME:key=value,key=value[,positional]

``memif:socket=/run/tw.sock,role=client,id=0`` -> ("memif", {"socket": ..., "role": ..., "id": "0"})
``pci:0000:00:04.0,driver=e1000e``            -> ("pci", {"": "0000:00:04.0", "driver": "e1000e"})

Items without ``=`` are positional and land under the key "" (at most one).
Values are strings; each driver converts and validates its own keys and rejects
unknown ones, so a typo is an error and never silently ignored.
"""

from __future__ import annotations

import re

_SCHEME = re.compile(r"^[a-z][a-z0-9_]*$")


class SpecError(ValueError):
    """A port spec that cannot be opened; the message says what to fix."""


def parse_spec(spec: str) -> tuple[str, dict[str, str]]:
    scheme, sep, rest = spec.partition(":")
    if not sep or not _SCHEME.match(scheme):
        raise SpecError(f"port spec {spec!r}: expected SCHEME:key=value,... (e.g. memif:socket=/run/tw.sock)")
    args: dict[str, str] = {}
    for item in filter(None, rest.split(",")):
        key, eq, value = item.partition("=")
        if not eq:
            key, value = "", item
        if key in args:
            raise SpecError(f"port spec {spec!r}: {key or 'positional argument'!r} given twice")
        args[key] = value
    return scheme, args


class SpecArgs:
    """Typed access to spec arguments; ``finish()`` rejects any key nobody read."""

    def __init__(self, scheme: str, args: dict[str, str]):
        self.scheme, self._args, self._used = scheme, dict(args), set()

    def _get(self, key, default, conv, what):
        self._used.add(key)
        if key not in self._args:
            if default is _REQUIRED:
                raise SpecError(f"{self.scheme}: missing required argument {key}=<{what}>")
            return default
        raw = self._args[key]
        try:
            return conv(raw)
        except ValueError:
            raise SpecError(f"{self.scheme}: {key}={raw!r} is not a valid {what}") from None

    def str(self, key, default=None):
        return self._get(key, default if default is not None else _REQUIRED, str, "string")

    def int(self, key, default=None, lo=None, hi=None):
        value = self._get(key, default if default is not None else _REQUIRED, lambda s: int(s, 0), "integer")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise SpecError(f"{self.scheme}: {key}={value} out of range [{lo}, {hi}]")
        return value

    def choice(self, key, choices, default=None):
        value = self.str(key, default)
        if value not in choices:
            raise SpecError(f"{self.scheme}: {key}={value!r}; expected one of {', '.join(choices)}")
        return value

    def bool(self, key, default=False):
        return self.choice(key, ("yes", "no", "on", "off", "1", "0", "true", "false"),
                           "yes" if default else "no") in ("yes", "on", "1", "true")

    def finish(self):
        unknown = sorted(set(self._args) - self._used)
        if unknown:
            raise SpecError(f"{self.scheme}: unknown argument(s) {', '.join(k or '<positional>' for k in unknown)}")


_REQUIRED = object()

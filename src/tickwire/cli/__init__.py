"""The ``tickwire`` command. Each sub-command lives in its own module in this package
and defines ``register(subparsers)``; modules are discovered, so adding a command
never touches this file. A command's handler returns the process exit code."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tickwire", description="Kernel-bypass trading toolkit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}").register(sub)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        return 130
    except (OSError, ValueError) as e:
        # Expected operational failures (bad spec, peer gone, no privileges): one clear line.
        print(f"tickwire {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

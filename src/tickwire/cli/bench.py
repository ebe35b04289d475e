"""``tickwire bench NAME``: benchmarks live in tickwire.bench.<name> modules, each with
``add_arguments(parser)`` and ``run(args) -> int``; they are discovered like commands."""

from __future__ import annotations

import importlib
import pkgutil

from .. import bench as bench_pkg


def register(sub):
    p = sub.add_parser("bench", help="benchmarks with their competitor measured in the same run")
    bsub = p.add_subparsers(dest="bench", metavar="NAME", required=True)
    for info in sorted(pkgutil.iter_modules(bench_pkg.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"{bench_pkg.__name__}.{info.name}")
        bp = bsub.add_parser(info.name.replace("_", "-"), help=(mod.__doc__ or "").strip().splitlines()[0])
        bp.add_argument("--json", action="store_true", help="print one JSON object")
        mod.add_arguments(bp)
        bp.set_defaults(handler=_with_competitors(mod.run))


def _with_competitors(run):
    """The competitors (scapy, dpkt, sbedecoder) are an extra, not a runtime dependency:
    say how to get one when it is missing instead of printing a traceback."""
    def guarded(args) -> int:
        try:
            return run(args)
        except ModuleNotFoundError as e:
            if e.name in BENCH_EXTRAS:
                raise SystemExit(f"tickwire bench: the competitor {e.name} is not installed; "
                                 f"pip install 'tickwire[bench]' (or: pip install {e.name})") from None
            raise
    return guarded


BENCH_EXTRAS = ("scapy", "dpkt", "sbedecoder")

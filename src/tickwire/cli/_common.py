"""Options and output shared by the port tools (echo, capture, send, ...)."""

from __future__ import annotations

import argparse
import json
import math
import sys


def at_least(low: int):
    """An argparse type: an integer >= ``low`` (a burst of 0 would make a tool spin forever)."""
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if v < low:
            raise argparse.ArgumentTypeError(f"{v} is less than {low}")
        return v
    return parse


def non_negative_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(v) or v < 0:
        raise argparse.ArgumentTypeError(f"{text} is not a finite number >= 0")
    return v


def positive_float(text: str) -> float:
    """An argparse type: a finite number > 0 (a rate or a duration of 0 divides by zero)."""
    v = non_negative_float(text)
    if v == 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return v


def cpu_index(text: str) -> int:
    """An argparse type: a CPU this process may run on."""
    import os
    v = at_least(0)(text)
    if v not in os.sched_getaffinity(0):
        raise argparse.ArgumentTypeError(f"CPU {v} is not one this process may use "
                                         f"({sorted(os.sched_getaffinity(0))})")
    return v


def impair_ppm(text: str) -> tuple:
    """An argparse type: the simulator's per-feed impairment 'LOSS,DUP,REORDER' in parts per million."""
    try:
        parts = tuple(int(x) for x in text.split(","))
    except ValueError:
        parts = ()
    if len(parts) != 3 or any(p < 0 or p > 1_000_000 for p in parts):
        raise argparse.ArgumentTypeError(f"{text!r}: expected LOSS,DUP,REORDER in ppm (0..1000000)")
    return parts


def cpu_index_or_off(text: str) -> int:
    """cpu_index, or -1 for "do not pin"."""
    return -1 if text.strip() == "-1" else cpu_index(text)


def add_port_args(p) -> None:
    p.add_argument("--port", required=True, metavar="SPEC", help="port spec, e.g. memif:socket=/run/tw.sock,role=client")
    p.add_argument("--burst", type=at_least(1), default=32, help="frames per rx/tx burst (default 32)")
    p.add_argument("--pool", type=at_least(1), default=8192, help="buffers in the packet pool (default 8192)")
    p.add_argument("--buf-size", type=at_least(129), default=2048 + 128,
                   help="bytes per pool buffer incl. 128 headroom")
    p.add_argument("--link-timeout", type=non_negative_float, default=10.0,
                   help="seconds to wait for the link (default 10)")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")


def open_from_args(args):
    from ..drivers.port import open_port
    from ..mem.mempool import Mempool
    return open_port(args.port, Mempool(args.pool, args.buf_size, 128))


def report(args, result: dict, port=None) -> None:
    if port is not None:
        port.pool.check()  # the accounting invariant must hold at the end of every tool run
        result = {**result, **port.pool.counters()}
        events = list(getattr(port, "events", []))
        if events and not args.json:
            for e in events:
                print(f"  event: {e}", file=sys.stderr)
    if args.json:
        print(json.dumps(result))
    else:
        width = max(len(k) for k in result)
        for k, v in result.items():
            print(f"{k:<{width}}  {v}")

"""`tickwire echo --port SPEC`: reflect every frame with MACs swapped (testpmd macswap)."""

from __future__ import annotations

from ._common import add_port_args, at_least, non_negative_float, open_from_args, report


def register(sub):
    p = sub.add_parser("echo", help="reflect every frame with MAC addresses swapped")
    add_port_args(p)
    p.add_argument("--count", type=at_least(0), default=0, help="stop after N frames (default: run until Ctrl-C)")
    p.add_argument("--duration", type=non_negative_float, default=0.0, help="stop after S seconds")
    p.set_defaults(handler=run)


def run(args) -> int:
    from ..tools.echo import run_echo
    with open_from_args(args) as port:
        result = run_echo(port, count=args.count, duration=args.duration, burst=args.burst,
                          link_timeout=args.link_timeout)
        report(args, result, port)
    return 0

"""`tickwire capture --port SPEC --count N --out FILE.pcap`: nanosecond pcap of received frames."""

from __future__ import annotations

from ._common import add_port_args, at_least, non_negative_float, open_from_args, report


def register(sub):
    p = sub.add_parser("capture", help="write received frames to a nanosecond pcap file")
    add_port_args(p)
    p.add_argument("--count", type=at_least(0), default=0, help="stop after N frames (0: until Ctrl-C/--duration)")
    p.add_argument("--duration", type=non_negative_float, default=0.0, help="stop after S seconds")
    p.add_argument("--out", required=True, help="pcap file to write")
    p.set_defaults(handler=run)


def run(args) -> int:
    from ..tools.capture import run_capture
    with open_from_args(args) as port:
        result = run_capture(port, args.out, count=args.count, duration=args.duration, burst=args.burst,
                             link_timeout=args.link_timeout)
        report(args, result, port)
    return 0

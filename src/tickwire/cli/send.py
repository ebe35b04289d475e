"""`tickwire send --port SPEC --pcap FILE [--loop N] [--rate PPS]`: transmit a capture."""

from __future__ import annotations

from ._common import add_port_args, at_least, non_negative_float, open_from_args, report


def register(sub):
    p = sub.add_parser("send", help="transmit the frames of a pcap file")
    add_port_args(p)
    p.add_argument("--pcap", required=True, help="pcap file whose frames are sent in order")
    p.add_argument("--loop", type=at_least(1), default=1, help="send the file N times (default 1)")
    p.add_argument("--rate", type=non_negative_float, default=0.0, help="frames per second (default: as fast as possible)")
    p.set_defaults(handler=run)


def run(args) -> int:
    from ..tools.send import run_send
    with open_from_args(args) as port:
        result = run_send(port, args.pcap, loop=args.loop, rate=args.rate, burst=args.burst,
                          link_timeout=args.link_timeout)
        report(args, result, port)
    return 0

"""`tickwire sim --port SPEC`: the exchange simulator (matching engine, seeded order flow,
MDP 3.0 feeds A/B + snapshot loop, iLink 3-style FIXP order-entry gateway)."""

from __future__ import annotations

import json
import sys

from ._common import impair_ppm


def _addresses(args) -> dict:
    """ip and groups for SimConfig: given, or the defaults of the transport (kernel sockets:
    loopback, as the demo's baseline and `tickwire run`'s examples expect)."""
    from ..engine.runner import check_feed_addresses
    from ..sim.server import SimConfig
    sock = args.port == "socket"
    ip = args.ip or ("127.0.0.1" if sock else "10.77.0.1")
    groups = tuple(args.groups.split(",")) if args.groups else (("127.0.0.1",) * 3 if sock else SimConfig.groups)
    if len(groups) != 3:
        raise ValueError(f"--groups: three addresses (feed A, feed B, snapshot), got {len(groups)}")
    try:
        check_feed_addresses(args.port, ip, groups)
    except ValueError as err:
        raise ValueError(f"--ip/--groups: {err}") from None
    return {"ip": ip, "groups": groups}


def register(sub):
    p = sub.add_parser("sim", help="exchange simulator: matching engine, MDP 3.0 feeds, FIXP order entry")
    p.add_argument("--port", default="socket", metavar="SPEC",
                   help="frame port (memif:socket=PATH,role=server, packet:dev=...) or 'socket' for kernel sockets")
    p.add_argument("--ip", default=None,
                   help="our address: on a frame port (default 10.77.0.1), or the kernel sockets' (default 127.0.0.1)")
    p.add_argument("--groups", default=None, metavar="A,B,SNAPSHOT",
                   help="where feed A, feed B and the snapshot loop go (default 239.77.0.1-3 on a frame port; "
                        "127.0.0.1 with kernel sockets, which also send to multicast groups)")
    p.add_argument("--oe-port", type=int, default=9310, help="order-entry TCP port")
    p.add_argument("--udp-ports", default="14310,14311,14312", help="feed A, feed B, snapshot UDP ports")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--rate", type=float, default=2000.0, help="synthetic order-flow actions per second")
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--impair-a", type=impair_ppm, default=(0, 0, 0), metavar="L,D,R",
                   help="feed A loss,duplicate,reorder probabilities in ppm")
    p.add_argument("--impair-b", type=impair_ppm, default=(0, 0, 0), metavar="L,D,R")
    p.add_argument("--replay", default="", metavar="FILE.pcap",
                   help="replay the UDP payloads of a capture as feeds A and B (synthetic flow off)")
    p.add_argument("--replay-speed", type=float, default=1.0, help="capture time scale (2: twice as fast)")
    p.add_argument("--replay-ports", default="", help="only UDP packets to these ports (comma list; default all)")
    p.add_argument("--start", choices=("session", "now"), default="session",
                   help="start the run's clock at the first FIXP session (default) or at once")
    p.add_argument("--e2e-out", default="", metavar="FILE.npz",
                   help="measure tick-to-trade end to end: stamp market data sent and orders received in the "
                        "compiled loop, save the stamps here (docs/sim-e2e.md)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=run)


def run(args) -> int:
    from ..sim.server import SimConfig, run_sim
    ports = tuple(int(x) for x in args.udp_ports.split(","))
    if len(ports) != 3:
        raise ValueError("--udp-ports: three ports (feed A, feed B, snapshot)")
    where = _addresses(args)
    cfg = SimConfig(port=args.port, **where, oe_port=args.oe_port, udp_ports=ports, seed=args.seed,
                    rate=args.rate, duration=args.duration, impair=(args.impair_a, args.impair_b),
                    replay=args.replay, replay_speed=args.replay_speed, start=args.start, e2e_out=args.e2e_out,
                    replay_ports=tuple(int(x) for x in args.replay_ports.split(",")) if args.replay_ports else None)
    if args.replay_speed <= 0:
        raise ValueError("--replay-speed must be positive")
    import signal
    stop = []
    # SIGTERM (from `tickwire demo`, or an operator) ends the run cleanly: statistics still printed
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    stats = run_sim(cfg, ready=lambda: print("sim: ready", file=sys.stderr, flush=True), stop=lambda: bool(stop))
    if args.json:
        print(json.dumps(stats))
    else:
        for k, v in stats.items():
            print(f"{k:<24} {v}")
    return 0

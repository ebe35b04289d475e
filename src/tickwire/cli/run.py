"""`tickwire run --config FILE.toml`: the engine alone against real ports and a real venue.

Example config::

    duration = 60                        # seconds (0 = until Ctrl-C)
    [transport]
    port = "memif:socket=/run/venue.sock,role=client"   # any frame-port spec, or "socket"
    ip = "10.77.0.2/24"
    mac = "02:77:00:00:00:02"
    venue_ip = "10.77.0.1"
    oe_port = 9310
    groups = ["239.77.0.1", "239.77.0.2", "239.77.0.3"]  # feed A, feed B, snapshot loop
    udp_ports = [14310, 14311, 14312]
    cpu = 1
    [engine]
    secids = [1001, 1002]
    strategy = "market_maker"            # or "taker", or "package.module"
    [engine.strategy_params]
    instr = 0
    tick = 250000000
    [risk]
    order_rate = 100
    order_burst = 20
    [[risk.instruments]]
    max_qty = 10
    max_notional = 100000000000000
    collar = 5000000000
    position_limit = 20
    tick = 250000000
"""

from __future__ import annotations

import json
import sys


def register(sub):
    p = sub.add_parser("run", help="run the engine against a venue (config file)")
    p.add_argument("--config", required=True, metavar="FILE.toml")
    p.add_argument("--duration", type=float, default=None, help="override the config's duration")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=run)


def load_config(path):
    import tomllib
    from ..engine.build import EngineConfig
    from ..engine.runner import TransportConfig
    from ..order.config import RiskConfig
    with open(path, "rb") as f:
        d = tomllib.load(f)
    known = {"duration", "transport", "engine", "risk"}
    extra = set(d) - known
    if extra:
        raise ValueError(f"{path}: unknown sections/keys {sorted(extra)}")
    t = dict(d.get("transport", {}))
    for k in ("groups", "udp_ports"):
        if k in t:
            t[k] = tuple(t[k])
    tc = _make(TransportConfig, t, f"{path} [transport]")
    e = dict(d.get("engine", {}))
    try:
        e["risk"] = RiskConfig.from_dict(d.get("risk", {}))
    except TypeError as err:        # an unknown key in [risk] or [[risk.instruments]]
        raise ValueError(f"{path} [risk]: {err}") from None
    ec = _make(EngineConfig, e, f"{path} [engine]")
    duration = d.get("duration", 0)
    if not isinstance(duration, (int, float)) or duration < 0:
        raise ValueError(f"{path}: duration must be a number of seconds >= 0, got {duration!r}")
    return float(duration), tc, ec


def _make(cls, values: dict, where: str):
    """``cls(**values)`` with an unknown key reported by name (a TypeError would be a traceback)."""
    from dataclasses import fields
    unknown = set(values) - {f.name for f in fields(cls)}
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)}")
    try:
        return cls(**values)
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None


def run(args) -> int:
    from ..engine.build import build_engine
    from ..engine.latency import samples, summary
    from ..engine.runner import run_engine
    from ..engine.view import engine_snapshot
    duration, tc, ec = load_config(args.config)
    if args.duration is not None:
        duration = args.duration
    E, _ = build_engine(ec)
    stats = run_engine(E, tc, duration if duration > 0 else 1e12)
    out = {**engine_snapshot(E), "tick_to_trade": summary(samples(E)["tick_to_trade"]),
           "transport": {k: v for k, v in stats.items() if not isinstance(v, dict)}}
    if args.json:
        print(json.dumps(out))
    else:
        from rich import print_json
        print_json(json.dumps(out))
    return 0

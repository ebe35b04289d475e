"""`tickwire tcp-echo --port SPEC --ip A.B.C.D --listen PORT`: a TCP echo server on tickwire's stack."""

from __future__ import annotations

import json
import signal
import sys
import time


def register(sub):
    p = sub.add_parser("tcp-echo", help="TCP echo server on tickwire's user-space TCP (fast path in Numba)")
    p.add_argument("--port", required=True, metavar="SPEC", help="port spec, e.g. packet:dev=veth0")
    p.add_argument("--ip", required=True, help="our IPv4 address[/prefix] (default /24); give the kernel a different one or none")
    p.add_argument("--mac", help="our MAC (default: the port's)")
    p.add_argument("--listen", type=int, required=True, metavar="PORT", help="TCP port to listen on")
    p.add_argument("--count", type=int, default=0, help="exit after N connections have closed (0 = never)")
    p.add_argument("--duration", type=float, default=0, help="exit after S seconds (0 = never)")
    p.add_argument("--backlog", type=int, default=8)
    p.add_argument("--delayed-ack", action="store_true", help="delay ACKs (RFC 1122); default: ACK at once")
    p.add_argument("--json", action="store_true", help="print the final counters as one JSON object")
    p.set_defaults(handler=run)


def run(args) -> int:
    from ..drivers.port import open_port
    from ..mem.mempool import Mempool
    from ..stack import Stack
    from ..stack.tcp import TcpConfig, TcpStack
    from ..stack.tcp import tcb as T

    stop = []
    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    port = open_port(args.port, Mempool(n_bufs=8192))      # no wait for the link: a server waits for peers
    try:
        stack = TcpStack(port, args.ip, local_mac=args.mac, cfg=TcpConfig(delayed_ack=args.delayed_ack))
        # the IPv4 stack answers ARP and ping and keeps the ARP cache (stack/iface.py)
        stack.attach_net(Stack(stack.local_mac, args.ip if "/" in args.ip else args.ip + "/24"))
        lst = stack.listen(args.listen, backlog=args.backlog)
        stack.echo_step(1)                     # compile (or load) the loop before announcing
        print(f"tcp-echo: listening on {args.ip}:{args.listen} via {args.port}", file=sys.stderr, flush=True)
        live, done, echoed, reasons = [], 0, 0, []
        t_end = time.monotonic() + args.duration if args.duration else None
        while not stop and (not args.count or done < args.count) and (t_end is None or time.monotonic() < t_end):
            echoed += stack.echo_step(2000)
            while lst.ready:
                c = lst.ready.pop(0)
                c.listener = None
                live.append(c)
            for c in list(live):
                h = c.h
                if c.state_name == "CLOSE-WAIT" and h[T.TX_UNA] == h[T.TX_END] and not c.readable():
                    c.close()                  # peer finished and everything was echoed: FIN back
                if c.state_name in ("CLOSED", "TIME-WAIT"):
                    live.remove(c)
                    done += 1
                    if c.reason:
                        reasons.append(c.reason)
        stack.run_until(lambda: all(c.state_name in ("CLOSED", "TIME-WAIT") for c in live), 1.0)
        result = {"connections": done, "echoed_bytes": echoed, "errors": reasons, **stack.counters(),
                  **port.pool.counters()}
        print(json.dumps(result) if args.json else "\n".join(f"{k:<22} {v}" for k, v in result.items()),
              flush=True)
        stack.close()
    finally:
        port.close()
    return 0

"""``tickwire stack``: run tickwire's IPv4 stack on a port (answers ARP and ping, joins
groups, echoes UDP, publishes to a group) and print its counters."""

from __future__ import annotations

import json
import signal
import sys
import time

import numpy as np


def register(sub):
    p = sub.add_parser("stack", help="run the IPv4 stack on a port: ARP, ping, IGMP, UDP echo; prints counters")
    p.add_argument("--port", required=True, help="port spec, e.g. packet:dev=veth0 or pcap:in=a.pcap,out=b.pcap")
    p.add_argument("--ip", required=True, help="our address with prefix, e.g. 10.0.0.2/24")
    p.add_argument("--gw", help="default gateway (for destinations off the subnet)")
    p.add_argument("--mac", help="our MAC (default: the port's, else a locally administered one)")
    p.add_argument("--vlan", type=int, help="accept only frames tagged with this VLAN id")
    p.add_argument("--join", action="append", default=[], metavar="GROUP", help="join an IPv4 multicast group")
    p.add_argument("--udp-echo", action="append", type=int, default=[], metavar="PORT",
                   help="reflect UDP datagrams sent to PORT back to their sender")
    p.add_argument("--publish", metavar="GROUP:PORT", help="send a datagram to GROUP:PORT every --interval s")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between --publish datagrams")
    p.add_argument("--igmp-version", type=int, choices=(1, 2, 3), default=3)
    p.add_argument("--duration", type=float, default=0, help="seconds to run (0 = until interrupted)")
    p.add_argument("--stats-every", type=float, default=0, help="print counters every N seconds (0 = at exit)")
    p.add_argument("--json", action="store_true", help="print the final counters as one JSON object")
    p.set_defaults(handler=run)


def run(args) -> int:
    from ..drivers.port import open_port
    from ..mem.mempool import Mempool
    from ..stack import Stack
    from ..stack.loop import run_stack, tsc_calibration
    from ..stack.state import C_NOW
    from ..stack.udp import SEND_OK, UDP_PAYLOAD_OFF, udp_prepare
    from ..wire.bytes import ip_to_int

    stop = []
    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    pool = Mempool(n_bufs=4096, buf_size=2048, headroom=128)
    port = open_port(args.port, pool)
    try:
        mac = args.mac or getattr(port, "mac", None) or "02:74:77:00:00:01"
        stack = Stack(mac, args.ip, gateway=args.gw, vlan=args.vlan, igmp_version=args.igmp_version)
        for g in args.join:
            stack.join(g)
            if hasattr(port, "add_multicast"):
                from ..wire.bytes import int_to_mac
                port.add_multicast(int_to_mac(0x01005E000000 | (ip_to_int(g) & 0x7FFFFF)))
        for p in args.udp_echo:
            stack.bind_udp(p, echo=True)
        pub = None
        if args.publish:
            g, _, p = args.publish.rpartition(":")
            pub = (ip_to_int(g), int(p))
        rx = np.empty(32, np.int32)
        tx = np.empty(64, np.int32)
        ticks_per_ns, q32 = tsc_calibration()
        slice_ticks = int(0.05e9 * ticks_per_ns)
        st = stack.state
        # compile (or load from cache) before announcing readiness
        run_stack(port.state, pool.arrays, st, rx, tx, stack.info, 0, q32, time.monotonic_ns())
        pbuf = np.zeros(1, np.int32)
        if pub:     # and the publisher's path: a peer starts its clock at "ready" (cold: seconds)
            udp_prepare(st, pool.arrays, np.int32(0), pub[0], pub[1], pub[1], -1)   # refused at once: no effect
            port.tx_burst(pbuf, 0)
        print(f"tickwire stack: ready on {args.port} mac {stack.mac} ip {args.ip}"
              + (f" groups {','.join(args.join)}" if args.join else ""), flush=True)
        t_end = time.monotonic() + args.duration if args.duration > 0 else float("inf")
        next_pub = time.monotonic()
        next_stats = time.monotonic() + args.stats_every if args.stats_every > 0 else float("inf")
        seq = 0
        try:
            while not stop and time.monotonic() < t_end:
                run_stack(port.state, pool.arrays, st, rx, tx, stack.info, slice_ticks, q32, time.monotonic_ns())
                port.poll()
                now = time.monotonic()
                if pub and now >= next_pub:
                    next_pub = now + args.interval
                    got = pool.alloc_burst(1)
                    if len(got):
                        b = int(got[0])
                        payload = f"tickwire {seq}".encode()
                        start = b * pool.buf_size + int(pool.arrays.data_off[b]) + UDP_PAYLOAD_OFF
                        pool.arrays.data[start:start + len(payload)] = np.frombuffer(payload, np.uint8)
                        st.cfg[C_NOW] = time.monotonic_ns()
                        if udp_prepare(st, pool.arrays, np.int32(b), pub[0], pub[1], pub[1], len(payload)) == SEND_OK:
                            pbuf[0] = b
                            if port.tx_burst(pbuf, 1) == 1:
                                seq += 1
                            else:
                                pool.free_burst(pbuf)
                        else:
                            pool.free_burst([b])
                if now >= next_stats:
                    next_stats = now + args.stats_every
                    _print(stack, port, pool, False)
        except KeyboardInterrupt:
            pass
        # leave groups politely: state-change reports go out on the next slices
        for g in args.join:
            stack.leave(g)
        for _ in range(3):
            run_stack(port.state, pool.arrays, st, rx, tx, stack.info, slice_ticks // 5, q32, time.monotonic_ns())
        _print(stack, port, pool, args.json)
    finally:
        port.close()
    return 0


def _print(stack, port, pool, as_json):
    out = {"stack": {k: v for k, v in stack.counters().items() if v},
           "drops": stack.drops(), "port": {k: v for k, v in port.stats().items() if v},
           "arp": {ip: mac for ip, (mac, state) in stack.arp_entries().items() if state != "incomplete"},
           "groups": stack.groups(), "pool_in_flight": pool.in_flight}
    if as_json:
        print(json.dumps(out), flush=True)
        return
    line = " ".join(f"{k}={v}" for k, v in out["stack"].items())
    print(f"stack: {line}", flush=True)
    print(f"port: {' '.join(f'{k}={v}' for k, v in out['port'].items())}", flush=True)
    if out["drops"]:
        print(f"drops: {' '.join(f'{k}={v}' for k, v in out['drops'].items())}", flush=True)

"""`tickwire tcp-send --port SPEC --ip A.B.C.D --connect HOST:PORT`: a TCP client on tickwire's stack.

Sends a file, random bytes or a message while reading everything the peer sends, then
closes (FIN, or RST with --abort) and reports what happened. With --rtt N it instead
times N round trips of --size bytes against an echo server with the compiled loop."""

from __future__ import annotations

import hashlib
import json
import os
import time


def register(sub):
    p = sub.add_parser("tcp-send", help="TCP client on tickwire's user-space TCP: send/receive, or time round trips")
    p.add_argument("--port", required=True, metavar="SPEC", help="port spec, e.g. packet:dev=veth0")
    p.add_argument("--ip", required=True, help="our IPv4 address[/prefix] (default /24)")
    p.add_argument("--mac", help="our MAC (default: the port's)")
    p.add_argument("--connect", required=True, metavar="HOST:PORT")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--input", metavar="FILE", help="send this file")
    src.add_argument("--random", type=int, metavar="N", help="send N random bytes")
    src.add_argument("--message", help="send this text")
    p.add_argument("--output", metavar="FILE", help="write what the peer sent to FILE")
    p.add_argument("--abort", action="store_true", help="end with RST (after our data is acknowledged)")
    p.add_argument("--rtt", type=int, metavar="N", help="time N round trips against an echo server")
    p.add_argument("--size", type=int, default=64, help="message size for --rtt (default 64)")
    p.add_argument("--warmup", type=int, default=1000, help="untimed round trips before --rtt")
    p.add_argument("--timeout", type=float, default=60.0)
    p.add_argument("--delayed-ack", action="store_true")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.set_defaults(handler=run)


def wait_link(port, timeout: float) -> None:
    """memif and friends come up after a control-plane handshake serviced by poll()."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if port.link_up:
                return
        except NotImplementedError:
            return
        if time.monotonic() > deadline:
            raise OSError(f"link of {port.spec} did not come up in {timeout:g} s")
        port.poll()
        time.sleep(0.001)


def run(args) -> int:
    from ..drivers.port import open_port
    from ..mem.mempool import Mempool
    from ..stack import Stack
    from ..stack.tcp import TcpConfig, TcpStack
    from ..stack.tcp import tcb as T

    host, _, rport = args.connect.rpartition(":")
    if not host or not rport.isdigit():
        raise ValueError(f"--connect {args.connect!r}: expected HOST:PORT")
    port = open_port(args.port, Mempool(n_bufs=8192))
    wait_link(port, 10.0)
    result: dict = {}
    try:
        stack = TcpStack(port, args.ip, local_mac=args.mac, cfg=TcpConfig(delayed_ack=args.delayed_ack))
        # the IPv4 stack answers ARP and ping and keeps the ARP cache (stack/iface.py)
        stack.attach_net(Stack(stack.local_mac, args.ip if "/" in args.ip else args.ip + "/24"))
        t0 = time.monotonic()
        conn = stack.connect(host, int(rport), timeout=min(args.timeout, 10))
        result["connect_ms"] = round((time.monotonic() - t0) * 1000, 3)
        if args.rtt:
            import numpy as np
            msg = os.urandom(args.size)
            if args.warmup:
                stack.pingpong(conn, msg, args.warmup, timeout=args.timeout)
            ns = stack.pingpong(conn, msg, args.rtt, timeout=args.timeout)
            result.update(rtt_n=int(args.rtt), size=args.size, rtt_median_ns=int(np.median(ns)),
                          rtt_p99_ns=int(np.percentile(ns, 99)), rtt_min_ns=int(ns.min()),
                          interrupted_rounds=getattr(stack, "interrupted_rounds", 0))
            conn.close()
            stack.run_until(lambda: conn.state_name in ("CLOSED", "TIME-WAIT"), 3)
        else:
            if args.input:
                with open(args.input, "rb") as f:
                    data = f.read()
            elif args.random is not None:
                data = os.urandom(args.random)
            else:
                data = (args.message or "").encode()
            got = bytearray()
            off, ended = 0, False
            deadline = time.monotonic() + args.timeout
            h = conn.h
            while True:
                if time.monotonic() > deadline:
                    result["error"] = "timeout"
                    break
                if off < len(data) and conn.state_name in ("ESTABLISHED", "CLOSE-WAIT"):
                    off += conn.send(data[off:off + 65536])
                elif not ended and off >= len(data):
                    if args.abort:
                        if conn.h[T.TX_UNA] == conn.h[T.TX_END]:     # all our data acknowledged
                            conn.abort()
                            stack.flush()
                            ended = True
                    else:
                        conn.close()
                        ended = True
                stack.poll()
                got += conn.recv(1 << 20)
                if conn.state_name == "CLOSED" or (ended and conn.eof and conn.state_name == "TIME-WAIT"):
                    break
            got += conn.recv(1 << 30)
            if args.output:
                with open(args.output, "wb") as f:
                    f.write(got)
            result.update(sent=off, sent_sha256=hashlib.sha256(data[:off]).hexdigest(), received=len(got),
                          received_sha256=hashlib.sha256(got).hexdigest(), eof=conn.eof)
        result.update(state=conn.state_name, reason=conn.reason, **{f"conn_{k}": v for k, v in conn.counters.items()},
                      **stack.counters())
        print(json.dumps(result) if args.json else "\n".join(f"{k:<22} {v}" for k, v in result.items()),
              flush=True)
        stack.close()
    finally:
        port.close()
    failed = result.get("error") or (result.get("reason") and not (args.abort and result["reason"] == "aborted by user"))
    return 1 if failed else 0

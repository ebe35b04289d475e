"""``tickwire book --schema FILE.xml [--depth N] CAPTURE.pcap``: run a capture through
the compiled MDP 3.0 handler; print each instrument's final book and the counters."""

from __future__ import annotations

import json
from collections import Counter


def register(sub):
    p = sub.add_parser("book", help="rebuild order books from an MDP 3.0 capture")
    p.add_argument("--schema", required=True, help="SBE XML schema (e.g. your templates_FixBinary.xml)")
    p.add_argument("--depth", type=int, default=10, help="levels per side (default 10)")
    p.add_argument("--max-instruments", type=int, default=4096)
    p.add_argument("--port", type=int, action="append", help="only UDP packets to this port (repeatable)")
    p.add_argument("--snapshot-port", type=int, action="append",
                   help="UDP port of the market recovery (snapshot) loop; by default a packet whose first "
                        "message is a snapshot (52/53) is treated as one")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("capture", help="pcap file (ns or us timestamps, Ethernet)")
    p.set_defaults(handler=book_cmd)


def book_cmd(args) -> int:
    import numpy as np

    from ..book.view import book_dict
    from ..feed import handler
    from ..feed.capture import udp_payloads
    from ..feed.state import C_N_INST, SRC_A, SRC_SNAPSHOT, counters, new_feed_state
    from ..sbe import SchemaError, load

    if not 1 <= args.depth <= 64:
        raise ValueError("--depth must be 1..64")
    try:
        schema = load(args.schema)
    except SchemaError as e:
        raise ValueError(str(e)) from None
    st = new_feed_state(schema, max_instruments=args.max_instruments, depth=args.depth)
    drops = Counter()
    snap_ports = set(args.snapshot_port or ())
    for _, _, _, port, payload in udp_payloads(args.capture, drops, set(args.port or ())):
        buf = np.frombuffer(payload, np.uint8)
        if snap_ports:
            src = SRC_SNAPSHOT if port in snap_ports else SRC_A
        else:
            tid = int.from_bytes(payload[16:18], "little") if len(payload) >= 18 else -1
            src = SRC_SNAPSHOT if tid in (52, 53) else SRC_A
        handler.feed_input(st.mem, buf, 0, buf.size, src)
    handler.feed_flush(st.mem)
    books = [book_dict(st, s) for s in range(int(st.ctr[C_N_INST]))]
    result = {"instruments": books, "counters": counters(st), "capture_drops": dict(drops)}
    if args.json:
        print(json.dumps(result))
        return 0
    for b in books:
        print(f"SecurityID {b['SecurityID']}  state={b['state']}  RptSeq={b['RptSeq']}  updates={b['updates']}")
        if "mbo_state" in b:
            print(f"  order book: {b['mbo_state']}")
        for name in ("bid", "offer", "implied_bid", "implied_offer", "mbo_bid", "mbo_offer"):
            rows = [r for r in b.get(name, []) if r]
            if rows:
                print(f"  {name:>13}: " + "  ".join(f"{r['qty']}@{r['px']}({r['orders']})" for r in rows))
    print("counters: " + " ".join(f"{k}={v}" for k, v in result["counters"].items() if v))
    if drops:
        print("capture drops: " + " ".join(f"{k}={v}" for k, v in drops.items()))
    return 0

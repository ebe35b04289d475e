"""``tickwire feed decode --schema FILE.xml CAPTURE.pcap``: every SBE message of an MDP
3.0 capture as one JSON line (field names as in the schema, prices as exact decimals)."""

from __future__ import annotations

import json
import sys
from collections import Counter


def register(sub):
    p = sub.add_parser("feed", help="MDP 3.0 feed tools")
    fsub = p.add_subparsers(dest="feed_command", metavar="ACTION", required=True)
    d = fsub.add_parser("decode", help="print every message of a capture as JSON lines")
    d.add_argument("--schema", required=True, help="SBE XML schema (e.g. your templates_FixBinary.xml)")
    d.add_argument("--port", type=int, action="append", help="only UDP packets to this port (repeatable)")
    d.add_argument("capture", help="pcap file (ns or us timestamps, Ethernet)")
    d.set_defaults(handler=decode_cmd)


def decode_cmd(args) -> int:
    from ..feed.capture import udp_payloads
    from ..feed.jsonout import jsonable
    from ..feed.mdp3 import decode_packet
    from ..sbe import SchemaError, load
    from ..sbe.codec import Codec

    try:
        codec = Codec(load(args.schema))
    except SchemaError as e:
        raise ValueError(str(e)) from None
    drops = Counter()
    out = sys.stdout
    for frame, ts, dst, port, payload in udp_payloads(args.capture, drops, set(args.port or ())):
        seq, sending, msgs = decode_packet(codec, payload)
        for i, (msg, err) in enumerate(msgs):
            rec = {"frame": frame, "ts_ns": ts, "dst": f"{dst}:{port}", "MsgSeqNum": seq, "SendingTime": sending,
                   "msg": i}
            if msg is None:
                drops["bad_message"] += 1
                rec["error"] = err
            else:
                rec.update(jsonable(msg))
            out.write(json.dumps(rec) + "\n")
    if drops:
        print(json.dumps({"dropped": dict(drops)}), file=sys.stderr)
    return 0

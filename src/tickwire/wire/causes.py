"""Why a frame was not accepted: one small integer per cause, shared by every decoder.

Decoders return ``OK`` (0) or one of these; the stack counts each under its name
(house rule: every drop is counted under a named cause). The stack appends its own
behavioural causes after ``N_WIRE_CAUSES``.
"""

OK = 0
TRUNCATED = 1          # a header or a length field points past the end of the frame
BAD_CHECKSUM = 2       # IPv4 header / ICMP / IGMP / UDP / TCP checksum does not verify
BAD_HEADER = 3         # version, header length, length field or option layout is invalid
FRAGMENT = 4           # an IPv4 fragment (MF set or offset != 0): no reassembly, dropped
TTL_EXPIRED = 5        # IPv4 TTL of zero (no host may send one, RFC 1122 §3.2.1.7)
UNKNOWN_ETHERTYPE = 6  # neither IPv4 nor ARP (after up to two VLAN tags)
UNKNOWN_PROTOCOL = 7   # an IP protocol the stack does not handle
BAD_ADDRESS = 8        # source address that may never appear (multicast/broadcast/loopback)
N_WIRE_CAUSES = 9

NAMES = ("ok", "truncated", "bad_checksum", "bad_header", "fragment", "ttl_expired",
         "unknown_ethertype", "unknown_protocol", "bad_address")

"""Wire formats: zero-copy header views (Numba) and plain representations (Python).

API summary (everything named ``*_check/_decode/_write/rd*/wr*`` is ``@njit(cache=True)``
and callable from another Numba loop; ``*Repr`` classes are the Python face):

Addressing. A header is ``(buf, off)``: ``buf`` is a flat uint8 array (e.g.
``pool.data``), ``off`` a byte offset (``mempool.buf_start(pool, idx)``). All
fields are int64 (MAC = 48-bit int, IPv4 address = 32-bit int). Validation
functions take the frame end (or the L4 length) and never read past it; they
return a cause from ``wire.causes`` (OK=0, TRUNCATED, BAD_CHECKSUM, BAD_HEADER,
FRAGMENT, TTL_EXPIRED, UNKNOWN_ETHERTYPE, UNKNOWN_PROTOCOL, BAD_ADDRESS).

  bytes     rd8/rd16/rd32/rd48, wr8/wr16/wr32/wr48 (big-endian); mac_to_int, ip_to_int, int_to_mac, int_to_ip
  checksum  csum_add(buf, off, n, acc) -> unfolded sum; csum_finish(sum) -> field value;
            csum_pseudo_ipv4(src, dst, proto, l4_len); inet_checksum(buf, off, n);
            csum_update16(csum, old, new), csum_update32(...)  (RFC 1624 incremental)
  ethernet  eth_decode(buf, off, end) -> (cause, ethertype, l3_off, outer_tci|-1)  (≤2 VLAN tags);
            eth_write(buf, off, dst, src, type) -> l3_off; eth_write_vlan(..., tci, type);
            eth_dst/eth_src; ipv4_multicast_mac(group); mac_is_multicast; ETH_HLEN, ETHERTYPE_*
  arp       arp_check(buf, off, end); arp_oper/sha/spa/tha/tpa; arp_write(buf, off, oper, sha, spa, tha, tpa)
  ipv4      ipv4_check(buf, off, end) -> (cause, hlen, total_len) (checksum + options walked);
            ipv4_is_fragment, ipv4_src/dst/proto/ttl, ipv4_is_multicast;
            ipv4_write(buf, off, src, dst, proto, payload_len, ttl, ident, tos, df, router_alert) -> l4_off
  udp       udp_check(buf, off, l4_len, src, dst) -> (cause, udp_len) (zero checksum = none);
            udp_write(buf, off, src, dst, sport, dport, payload_len, with_checksum) -> payload_off;
            udp_fill_checksum(buf, off, src, dst); udp_sport/udp_dport
  tcp       tcp_check(buf, off, l4_len, src, dst, verify) -> (cause, hlen);
            tcp_parse_options(buf, off, hlen, opts) with opts = tcp.new_options() (slots OPT_MSS,
            OPT_WSCALE, OPT_SACK_PERM, OPT_TS_VAL, OPT_TS_ECR, OPT_SACK_N, OPT_SACK0..; -1 absent);
            tcp_write(buf, off, sport, dport, seq, ack, flags, window, opt_len) -> payload_off;
            tcp_write_options(buf, off, mss, wscale, sack_perm, ts_val, ts_ecr) -> opt_len;
            tcp_write_sack(buf, off, blocks, n); tcp_fill_checksum(buf, off, seg_len, src, dst);
            tcp_sport/dport/seq/ack/flags/window; flag constants FIN SYN RST PSH ACK URG ECE CWR
  icmp      icmp_check(buf, off, l4_len); icmp_type/code/echo_id/echo_seq;
            icmp_echo_to_reply(buf, off) (in place, incremental checksum); icmp_write_echo(...)
  igmp      igmp_check; igmp_query_decode(buf, off, l4_len) -> (cause, version, max_resp_ds, group);
            igmpv2_write(buf, off, type, max_resp, group); igmpv3_write_report(buf, off, rtypes, groups, n);
            igmpv3_write_query; igmpv3_report_check; igmpv3_record_at
  decode    decode_frame(buf, off, length, info) -> cause; ``info`` = decode.new_info(), slots I_*
            (ethertype, tci, macs, l3, ip fields, l4, ports, payload offset/length); decode(frame) -> dict

Representations (tests, tools): EthernetRepr, ArpRepr, Ipv4Repr, UdpRepr, TcpRepr,
IcmpEchoRepr, IgmpRepr each have ``parse(bytes)`` and ``emit()`` built on the njit code.
pcap files: ``wire.pcapfile`` (nanosecond pcap reader/writer).
"""

from . import causes  # noqa: F401
from .arp import ArpRepr  # noqa: F401
from .bytes import int_to_ip, int_to_mac, ip_to_int, mac_to_int  # noqa: F401
from .checksum import checksum  # noqa: F401
from .decode import decode, decode_frame, new_info  # noqa: F401
from .ethernet import EthernetRepr  # noqa: F401
from .icmp import IcmpEchoRepr  # noqa: F401
from .igmp import IgmpRepr  # noqa: F401
from .ipv4 import Ipv4Repr  # noqa: F401
from .tcp import TcpRepr  # noqa: F401
from .udp import UdpRepr  # noqa: F401

"""The stack's state: a namedtuple of a few int64 arrays, shared by Python and Numba.

``cfg``      interface configuration and clocks (slots C_*)
``cnt``      counters: the wire causes (``wire.causes``) followed by the stack's own
             drop causes and event counts (``COUNTER_NAMES``)
``arp``      ARP cache, open addressing with linear probing, rows of A_* columns
``groups``   joined IPv4 multicast groups, rows of G_* columns
``udp_head`` int32[65536]: first UDP endpoint row for a destination port (-1: none)
``udp_ep``   UDP endpoints, rows of U_* columns, chained per port through U_NEXT

Few arrays on purpose: each array argument costs ~55 ns per Python->Numba call and
makes signatures long (notes/numba-hot-path.md §6).
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from ..wire.causes import N_WIRE_CAUSES, NAMES as WIRE_NAMES

StackState = namedtuple("StackState", "cfg cnt arp groups udp_head udp_ep scratch")
SCRATCH_ROWS = 3     # IGMPv3 report building: record types, group addresses, group rows
SCRATCH_LEN = 64     # records per v3 report we build (8 bytes each, fits any MTU)

# --- cfg slots ---------------------------------------------------------------------------------
(C_MAC, C_IP, C_MASK, C_GW, C_VLAN, C_NOW, C_ARP_TIMEOUT, C_IGMP_VERSION, C_IP_ID, C_RNG,
 C_GARP_LEFT, C_GARP_NEXT, C_V1_QUERIER_UNTIL, C_V2_QUERIER_UNTIL, C_MCAST_TTL, C_TTL,
 C_ARP_RETRY_NS, C_ARP_TRIES, C_UNSOLICITED_NS, C_ROBUSTNESS, C_GROUPS_HWM) = range(21)
# C_GROUPS_HWM: rows [0, hwm) of ``groups`` may be in use, so the per-packet scan stops early
CFG_SLOTS = 24

# --- counters ------------------------------------------------------------------------------------
_STACK_COUNTERS = (
    # drop causes (the frame was freed without effect)
    "not_for_us",          # destination MAC/IP/VLAN is neither ours, broadcast, nor a joined group
    "no_endpoint",         # UDP to a port nobody listens on (no ICMP port unreachable is sent)
    "arp_not_for_us",      # ARP request for another address
    "ip_conflict",         # ARP from another MAC claiming our IP (RFC 5227 §2.4)
    "icmp_ignored",        # ICMP other than an echo request to our unicast address
    "igmp_ignored",        # IGMP message we have no use for (e.g. an unknown type)
    "tcp_no_handler",      # TCP segment and the caller has no TCP (counted by the caller)
    # events
    "rx_frames", "arp_request_rx", "arp_reply_tx", "arp_reply_rx", "arp_request_tx", "garp_tx",
    "arp_learned", "arp_miss", "arp_failed", "icmp_echo_rx", "icmp_echo_tx", "igmp_query_rx",
    "igmp_report_rx", "igmp_report_tx", "igmp_leave_tx", "udp_rx", "udp_tx", "tcp_rx", "tx_nobuf",
    "tx_dropped",          # the port did not take a frame we built (its own counters say why)
    "arp_evicted",         # a full ARP cache gave its least recently confirmed learned entry to a new one
)
COUNTER_NAMES = tuple(WIRE_NAMES) + _STACK_COUNTERS
_idx = {n: i for i, n in enumerate(COUNTER_NAMES)}
(K_NOT_FOR_US, K_NO_ENDPOINT, K_ARP_NOT_FOR_US, K_IP_CONFLICT, K_ICMP_IGNORED, K_IGMP_IGNORED,
 K_TCP_NO_HANDLER, K_RX_FRAMES, K_ARP_REQUEST_RX, K_ARP_REPLY_TX, K_ARP_REPLY_RX, K_ARP_REQUEST_TX,
 K_GARP_TX, K_ARP_LEARNED, K_ARP_MISS, K_ARP_FAILED, K_ICMP_ECHO_RX, K_ICMP_ECHO_TX, K_IGMP_QUERY_RX,
 K_IGMP_REPORT_RX, K_IGMP_REPORT_TX, K_IGMP_LEAVE_TX, K_UDP_RX, K_UDP_TX, K_TCP_RX,
 K_TX_NOBUF, K_TX_DROPPED, K_ARP_EVICTED) = (_idx[n] for n in _STACK_COUNTERS)
N_COUNTERS = len(COUNTER_NAMES)
DROP_CAUSES = tuple(WIRE_NAMES[1:]) + _STACK_COUNTERS[:7]
assert K_NOT_FOR_US == N_WIRE_CAUSES

# --- ARP cache ---------------------------------------------------------------------------------
A_IP, A_MAC, A_EXPIRES, A_STATE, A_TRIES, A_NEXT_REQ = range(6)
ARP_COLS = 6
ARP_FREE, ARP_INCOMPLETE, ARP_REACHABLE, ARP_STATIC, ARP_TOMBSTONE = 0, 1, 2, 3, 4

# --- multicast groups ---------------------------------------------------------------------------
G_ADDR, G_STATE, G_REPORT_DUE, G_REPORTS_LEFT, G_PENDING = range(5)
GROUP_COLS = 5
GROUP_FREE, GROUP_JOINED, GROUP_LEAVING = 0, 1, 2
# G_PENDING: what the next report says: 0 = current state (answer to a query), 1 = join, 2 = leave

# --- UDP endpoints ------------------------------------------------------------------------------
U_BIND_IP, U_PORT, U_NEXT, U_TAG, U_USED = range(5)
UDP_COLS = 5
TAG_SINK, TAG_ECHO = 0, 1   # U_TAG values understood by stack.loop.run_stack

NS = 1_000_000_000

# --- what stack_input tells its caller to do with the buffer -------------------------------------
ACT_FREE = 0   # nothing to send: free the buffer (the reason is counted)
ACT_TX = 1     # the buffer was rewritten into a reply: transmit it
ACT_UDP = 2    # a UDP datagram for endpoint info[I_EP]: the caller owns the buffer
ACT_TCP = 3    # a TCP segment for our address: hand it to the TCP code (info has the offsets)
I_EP = 19      # slot of the decode info array holding the UDP endpoint row


def make_state(mac: int, ip: int, prefix: int, gw: int = 0, vlan: int = -1, arp_size: int = 256,
               max_groups: int = 32, max_udp: int = 64, igmp_version: int = 3, seed: int = 0x9E3779B97F4A7C15):
    if arp_size & (arp_size - 1) or arp_size < 8:
        raise ValueError("arp_size must be a power of two >= 8")
    if not 0 <= prefix <= 32:
        raise ValueError(f"bad prefix length /{prefix}")
    cfg = np.zeros(CFG_SLOTS, np.int64)
    cfg[C_MAC], cfg[C_IP], cfg[C_GW], cfg[C_VLAN] = mac, ip, gw, vlan
    cfg[C_MASK] = ((0xFFFFFFFF << (32 - prefix)) & 0xFFFFFFFF) if prefix else 0
    cfg[C_ARP_TIMEOUT] = 60 * NS          # Linux base_reachable_time is 30 s +-50%; one fixed value here
    cfg[C_IGMP_VERSION] = igmp_version
    cfg[C_RNG] = seed & 0x7FFFFFFFFFFFFFFF or 1
    cfg[C_GARP_LEFT] = 1
    cfg[C_MCAST_TTL] = 1                  # RFC 1112 §6.1: default multicast TTL 1
    cfg[C_TTL] = 64
    cfg[C_ARP_RETRY_NS] = NS              # RFC 1122 §2.3.2.1: at most one request per second per address
    cfg[C_ARP_TRIES] = 3
    cfg[C_UNSOLICITED_NS] = NS            # RFC 3376 §8.11 Unsolicited Report Interval (v3: 1 s)
    cfg[C_ROBUSTNESS] = 2                 # RFC 3376 §8.1 Robustness Variable
    udp_ep = np.zeros((max_udp, UDP_COLS), np.int64)
    return StackState(cfg, np.zeros(N_COUNTERS, np.int64), np.zeros((arp_size, ARP_COLS), np.int64),
                      np.zeros((max_groups, GROUP_COLS), np.int64), np.full(65536, -1, np.int32), udp_ep,
                      np.zeros((SCRATCH_ROWS, SCRATCH_LEN), np.int64))

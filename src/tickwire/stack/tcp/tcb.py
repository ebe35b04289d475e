"""The per-connection state shared by the Numba fast path and the Python slow path.

A connection occupies one *slot*. Its scalar state is one row of the int64 table
``hot[slot, :]`` (field indices below); its send and receive byte streams are
rows of ``txq[slot, :]`` and ``rxq[slot, :]`` (power-of-two rings addressed by
64-bit stream offsets, ``ring[off & (cap-1)]``); its precomputed frame header is
``tmpl[slot, :]``. Python reads and writes the same arrays through the
``Connection`` properties, so both paths always see one truth.

Stream offsets: data byte number ``o`` (0 = first byte after the SYN) carries
sequence number ``(ISS + 1 + o) mod 2**32`` on the send side and
``(IRS + 1 + o) mod 2**32`` on the receive side. Offsets never wrap (int64), so
ring and window arithmetic is plain subtraction.
"""

from __future__ import annotations

_FIELDS = """
STATE
ISS SND_UNA SND_NXT SND_MAX SND_WND SND_WL1 SND_WL2 SND_MSS SND_WSCALE CWND SSTHRESH DUPACKS RECOVER
IRS RCV_NXT RCV_ADV RCV_WSCALE
TX_UNA TX_NXT TX_END TX_FIN
RX_READ RX_NXT RX_FIN OOO
TS_OK TS_RECENT TS_BASE SACK_OK
RTO_US RTT_SAMPLE_US RTX_DEADLINE ACK_PENDING DELAYED_ACK LAST_RX_US
LOCAL_IP REMOTE_IP LOCAL_PORT REMOTE_PORT
TMPL_LEN TMPL_SUM IP_SUM IP_ID HDR_TCP_OFF HDR_TCP_LEN
FAST_RX FAST_TX PY_DEADLINE
"""
NAMES = tuple(_FIELDS.split())
globals().update({n: i for i, n in enumerate(NAMES)})
N_FIELDS = len(NAMES)

# PY_DEADLINE: the earliest timer kept in Python (persist, keepalive, TIME-WAIT, delayed ACK,
#   and the RTO), mirrored by service() so compiled loops know when to hand back (slow_work_due).
# TX_FIN: 0 = no FIN queued, 1 = FIN queued after TX_END, 2 = FIN sent.
# RX_FIN: -1 = none seen, else the stream offset at which the peer's FIN sits.
# OOO: number of out-of-order pieces held (fast path steps aside while non-zero).
# TMPL_SUM: ones'-complement sum of the template's constant TCP words + pseudo-header
#   addresses and protocol (RFC 9293 §3.1), so a segment's checksum only adds what changes.
# IP_SUM: the template IPv4 header's sum without total length and identification.
TMPL_CAP = 128     # bytes reserved per template row (14 + 20 + 20 + 12 = 66 used)

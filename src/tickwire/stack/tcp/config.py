"""Per-connection options. Defaults suit an order-entry session on a LAN: immediate
ACKs, Nagle off, a 200 ms minimum RTO (see rto.py)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TcpConfig:
    mss: int = 1460                 # our receive MSS (RFC 9293 §3.7.1); Ethernet 1500 - 40
    rcv_buf: int = 1 << 18          # receive ring bytes (power of two); bounds window + reassembly
    snd_buf: int = 1 << 18          # send ring bytes (power of two)
    window_scaling: bool = True     # RFC 7323 §2
    timestamps: bool = True         # RFC 7323 §3
    sack: bool = True               # RFC 2018: we send SACK-permitted and SACK blocks
    nagle: bool = False             # RFC 896 coalescing; off: every send() goes out at once
    delayed_ack: bool = False       # RFC 1122 §4.2.3.2 / RFC 5681 §4.2; off = ACK at once (latency)
    delayed_ack_us: int = 40_000
    min_rto_us: int = 200_000
    max_retries: int = 8            # data retransmissions before the connection is aborted
    syn_retries: int = 5
    synack_retries: int = 3
    msl_us: int = 30_000_000        # TIME-WAIT lasts 2*MSL (RFC 9293 §3.4.2)
    keepalive_idle_us: int = 0      # 0 = off (RFC 1122 §4.2.3.6: off by default)
    keepalive_interval_us: int = 75_000_000
    keepalive_probes: int = 9
    max_ooo_pieces: int = 64        # out-of-order pieces held per connection

    def __post_init__(self):
        for name in ("rcv_buf", "snd_buf"):
            v = getattr(self, name)
            if v < 4096 or v & (v - 1):
                raise ValueError(f"{name}={v}: must be a power of two >= 4096")
        if not 536 <= self.mss <= 9000:
            raise ValueError(f"mss={self.mss}: expected 536..9000")

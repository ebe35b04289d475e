"""Frames the harness sends, and the exchanges it runs against a guest step.

Frames are built with scapy (an independent encoder); what comes back is compared
byte for byte with what ``tickwire echo`` must return (the frame with Ethernet
source and destination swapped), and captures are parsed with dpkt.
"""

from __future__ import annotations

import random
import time

HOST_MAC = "02:00:00:00:00:01"
HOST_IP, GUEST_IP = "10.77.0.1", "10.77.0.2"


def udp_frame(dst_mac: str, seq: int, size: int, rng: random.Random) -> bytes:
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether
    payload = seq.to_bytes(4, "big") + bytes(rng.getrandbits(8) for _ in range(max(0, size - 4)))
    f = Ether(dst=dst_mac, src=HOST_MAC) / IP(src=HOST_IP, dst=GUEST_IP) / UDP(sport=40000 + seq % 1000, dport=7) / payload
    return bytes(f)


def make_frames(dst_mac: str, n: int, seed: int = 8) -> list[bytes]:
    """UDP frames of assorted sizes (minimum to 1514 bytes) plus a broadcast ARP request."""
    from scapy.layers.l2 import ARP, Ether
    rng = random.Random(seed)
    sizes = [18, 1472, 0, 1, 100, 512, 1000, 1471] + [rng.randrange(0, 1473) for _ in range(n)]
    frames = [udp_frame(dst_mac, i, s, rng) for i, s in enumerate(sizes[:n])]
    # hwsrc spelled out: scapy's default is the MAC of this machine's own interface, so
    # the frame (and a stack's reply to it, if it arrives late) would differ per machine.
    frames.append(bytes(Ether(dst="ff:ff:ff:ff:ff:ff", src=HOST_MAC) / ARP(hwsrc=HOST_MAC, psrc=HOST_IP,
                                                                          pdst=GUEST_IP)))
    return frames


def swapped(frame: bytes) -> bytes:
    return frame[6:12] + frame[0:6] + frame[12:]


def wait_echo(wire, dst_mac: str, timeout: float) -> float:
    """Probe once a second until the guest echoes (it is still starting); returns seconds waited.
    Probes queued before the NIC was enabled are echoed later and ignored by ``is_probe``."""
    t0 = time.monotonic()
    rng = random.Random(1)
    probe = udp_frame(dst_mac, 0xFFFF0000, 40, rng)
    while time.monotonic() - t0 < timeout:
        sent = wire.send(probe)
        if wire.recv_until(lambda f: f == swapped(sent), 1.0) is not None:
            return time.monotonic() - t0
    raise AssertionError(f"no echo from the guest within {timeout} s")


def is_probe(frame: bytes) -> bool:
    return len(frame) > 46 and frame[42:46] == (0xFFFF0000).to_bytes(4, "big")


def echo_exchange(wire, frames: list[bytes], timeout: float = 5.0) -> list[tuple[bytes, bytes | None]]:
    """Send each frame, wait for its echo; returns (expected, got) pairs."""
    out = []
    for f in frames:
        sent = wire.send(f)
        want = swapped(sent)
        got = wire.recv_until(lambda r: not is_probe(r), timeout)
        out.append((want, got))
    return out


def stream(wire, frames: list[bytes], stop, gap: float = 0.1) -> list[bytes]:
    """Send ``frames`` (cycled, each copy with a fresh sequence number) every ``gap`` s
    until ``stop()``; returns exactly what was sent, in order."""
    sent = []
    i = 0
    while not stop():
        f = frames[i % len(frames)]
        f = f[:42] + i.to_bytes(4, "big") + f[46:] if len(f) >= 46 else f
        s = wire.send(f)
        if s:
            sent.append(s)
        i += 1
        time.sleep(gap)
    return sent


def _checksums_ok(pkt) -> bool:
    """True when scapy, recomputing every checksum, gets the bytes we received."""
    from scapy.layers.inet import ICMP, IP, UDP
    clone = pkt.copy()
    for layer in (IP, UDP, ICMP):
        if layer in clone:
            del clone[layer].chksum
    if IP in clone:
        del clone[IP].len
    return bytes(clone.__class__(bytes(clone)))[:len(bytes(pkt))] == bytes(pkt)


def stack_exchange(wire, guest_mac: str, arp_window: float, alive=lambda: True) -> dict:
    """ARP, ping and UDP echo against a running ``tickwire stack --ip GUEST_IP/24 --udp-echo 7``
    (call it after the stack's ready line). ARP is retried every second for ``arp_window`` s.
    Returns {"arp": (want42, got), "icmp": scapy pkt or None, "udp": ...}; ARP requests
    from the guest for HOST_IP are answered along the way."""
    from scapy.layers.inet import ICMP, IP, UDP
    from scapy.layers.l2 import ARP, Ether
    arp_req = bytes(Ether(dst="ff:ff:ff:ff:ff:ff", src=HOST_MAC) / ARP(op=1, hwsrc=HOST_MAC, psrc=HOST_IP,
                                                                     pdst=GUEST_IP))
    want_arp = bytes(Ether(dst=HOST_MAC, src=guest_mac) / ARP(op=2, hwsrc=guest_mac, psrc=GUEST_IP,
                                                              hwdst=HOST_MAC, pdst=HOST_IP))

    def answer_arp(f: bytes) -> bool:
        p = Ether(f)
        if ARP in p and p[ARP].op == 1 and p[ARP].pdst == HOST_IP:
            wire.send(bytes(Ether(dst=p.src, src=HOST_MAC) / ARP(op=2, hwsrc=HOST_MAC, psrc=HOST_IP,
                                                                   hwdst=p.src, pdst=p[ARP].psrc)))
            return True
        return False

    def wait_for(pred, secs):
        deadline = time.monotonic() + secs
        while time.monotonic() < deadline:
            f = wire.recv(deadline - time.monotonic())
            if f is None:
                break
            if answer_arp(f):
                continue
            if pred(f):
                return f
        return None

    def is_our_arp_reply(f: bytes) -> bool:
        # A reply addressed to our request: frames an earlier step left queued in QEMU
        # (a late ARP request among them) reach the stack first, and its answers to them
        # are not the answer under test.
        p = Ether(f)
        return ARP in p and p[ARP].op == 2 and p[ARP].pdst == HOST_IP and p[ARP].hwdst == HOST_MAC

    def is_reply_to(layer, match):
        def pred(f: bytes) -> bool:
            p = Ether(f)
            return layer in p and p.dst == HOST_MAC and match(p)
        return pred

    out = {}
    wire.drain()                 # echoes of earlier steps
    t0 = time.monotonic()
    got = None
    while got is None and time.monotonic() - t0 < arp_window and alive():
        wire.send(arp_req)
        got = wait_for(is_our_arp_reply, 1.0)
    out["arp"] = (want_arp, got)
    payload = bytes(range(56))
    ping = Ether(dst=guest_mac, src=HOST_MAC) / IP(src=HOST_IP, dst=GUEST_IP) / ICMP(type=8, id=0x1234, seq=7) / payload
    wire.send(bytes(ping))
    f = wait_for(is_reply_to(ICMP, lambda p: p[ICMP].type == 0 and p[ICMP].id == 0x1234), 5.0)
    out["icmp"] = Ether(f) if f else None
    udp = Ether(dst=guest_mac, src=HOST_MAC) / IP(src=HOST_IP, dst=GUEST_IP) / UDP(sport=41000, dport=7) / b"tickwire-pci"
    wire.send(bytes(udp))
    f = wait_for(is_reply_to(UDP, lambda p: p[UDP].dport == 41000), 5.0)
    out["udp"] = Ether(f) if f else None
    out["payload"] = payload
    return out

"""``packet:`` port: Linux AF_PACKET with a PACKET_MMAP receive ring.

    packet:dev=IF[,mode=latency|capture][,frames=1024][,frame_size=2048]
           [,filter=all|A.B.C.D][,qdisc_bypass=yes][,promisc=no][,csum=fix|keep]
           [,block_size=1048576][,blocks=8][,timeout_ms=4][,tx=send|ring][,tx_frames=256]

mode=latency (default): TPACKET_V2, the kernel hands over each frame by its own
status word, and rx_burst spins on it (busy polling from user space; echo RTT about
that of kernel UDP busy-poll, notes/af_xdp.md §9). mode=capture: TPACKET_V3, frames
are handed over per block when it fills or its retire timer fires (milliseconds
late, but cheap per packet: for capture, never for request/response).

Sending: tx=send (default) makes one ``send()`` per frame from the pool buffer (a copy
into the kernel). tx=ring (mode=latency only) uses a PACKET_TX_RING (kernel
Documentation/networking/packet_mmap.rst, "Transmission process"): tx_burst copies each
frame into the next free ring slot, hands the slot over with a release store of
TP_STATUS_SEND_REQUEST and makes one ``send()`` per burst, after which the kernel
transmits every pending slot. Measured over veth (2-vCPU VM, load 2.4-4.8, the two
alternating in one process): tx=ring sends bursts of 32 at 1.26-1.37x the frames/s of
tx=send (3 rounds), but a single frame's UDP echo round trip through `tickwire stack`
is ~0.8 us longer (p50 12.6 vs 11.85 us, 6 rounds; the kernel's tpacket_snd builds a
paged skb over the ring slot and walks the ring), hence send() by default, for
request/response. Either way PACKET_QDISC_BYPASS makes frames skip the qdisc layer
(packet(7)).

filter=A.B.C.D attaches a classic BPF program (SO_ATTACH_FILTER) before the socket
is bound, so the ring only ever sees ARP and IPv4 to that address, to a multicast
group or to broadcast. The kernel's own stack still gets its copy: on the tickwire
side give the interface no IP address, or the kernel answers too.

Checksums: a frame sent by a local stack over veth carries a *partial* checksum
(CHECKSUM_PARTIAL: only the pseudo-header sum; notes/af_xdp.md §7) and the ring
marks it TP_STATUS_CSUMNOTREADY. With csum=fix (default) rx_burst completes the
TCP/UDP checksum in software, as a NIC's TX offload would have, so the layers
above see ordinary frames.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import socket
import struct
from collections import namedtuple

import numpy as np
from numba import njit

from ..mem.hotpath import hot

from ..mem.atomics import load_acquire_u32, load_u16, load_u32, memcpy, store_release_u32, store_u32
from ..mem.mempool import BUF_SIZE, buf_start, pool_alloc, pool_free
from .counters import RX_BYTES, RX_NOBUF, RX_PACKETS, RX_TOO_LONG, TX_BYTES, TX_PACKETS, TX_RING_FULL, TX_TOO_LONG
from .counters import Counters, tx_take
from .libc_calls import EAGAIN, ENOBUFS, MSG_DONTWAIT, sys_errno, sys_sendto
from .port import Port, register_burst
from .spec import SpecArgs, SpecError

# <linux/if_packet.h>
SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP, PACKET_RX_RING, PACKET_STATISTICS, PACKET_VERSION = 1, 5, 6, 10
PACKET_TX_RING, PACKET_LOSS = 13, 14
PACKET_QDISC_BYPASS, PACKET_IGNORE_OUTGOING = 20, 23
PACKET_MR_MULTICAST, PACKET_MR_PROMISC = 0, 1
TPACKET_V2, TPACKET_V3 = 1, 2
TP_STATUS_KERNEL, TP_STATUS_USER, TP_STATUS_COPY, TP_STATUS_LOSING, TP_STATUS_CSUMNOTREADY = 0, 1, 2, 4, 8
TP_STATUS_VLAN_VALID, TP_STATUS_VLAN_TPID_VALID = 0x10, 0x40
# TX ring slot states (the same word as tp_status; <linux/if_packet.h>)
TP_STATUS_AVAILABLE, TP_STATUS_SEND_REQUEST, TP_STATUS_SENDING, TP_STATUS_WRONG_FORMAT = 0, 1, 2, 4
ETH_P_ALL = 0x0003
SO_ATTACH_FILTER = 26
# struct tpacket2_hdr: status u32@0, len@4, snaplen@8, mac u16@12, net u16@14, sec u32@16, nsec@20,
#   vlan_tci u16@24, vlan_tpid u16@26
# struct tpacket3_hdr: next_offset u32@0, sec@4, nsec@8, snaplen@12, len@16, status@20, mac u16@24,
#   net u16@26, hv1 {rxhash u32@28, vlan_tci u32@32, vlan_tpid u16@36}
# block descriptor (V3): version@0, offset_to_priv@4, hdr_v1 {block_status@8, num_pkts@12, offset_to_first_pkt@16}
TPACKET2_HDRLEN = 32       # TPACKET_ALIGN(sizeof(struct tpacket2_hdr)); a TX slot's frame starts here
TPACKET3_HDRLEN = 48

EXTRA = ("rx_bad_desc",        # the kernel descriptor points outside its frame/block (never expected)
         "rx_truncated",       # the frame was longer than the ring slot (snaplen < len): dropped
         "rx_csum_completed",  # partial checksum completed in software (TP_STATUS_CSUMNOTREADY)
         "tx_error",           # send() failed with an error other than EAGAIN/ENOBUFS (tx=send: frame
                               # dropped; tx=ring: the pending slots go with the next burst's send())
         "kernel_packets", "kernel_drops",  # PACKET_STATISTICS, accumulated by poll()
         "tx_kicks",           # tx=ring: send() calls made to flush the TX ring (one per burst, plus
                               # the retries of a flush the kernel left unfinished; failed ones too)
         "tx_too_short",       # frame shorter than an Ethernet header (the kernel refuses it): dropped
         "tx_bad_buf",         # tx_burst given an index that is not an in-use buffer of the pool: skipped
         "rx_bad_desc_frames")  # V3: frames a block still claimed after a bad descriptor, dropped
                               # with it (its num_pkts, so as trustworthy as the block: never expected)
(RX_BAD_DESC, RX_TRUNCATED, RX_CSUM_COMPLETED, TX_ERROR, KERNEL_PACKETS, KERNEL_DROPS, TX_KICKS,
 TX_TOO_SHORT, TX_BAD_BUF, RX_BAD_DESC_FRAMES) = range(8, 8 + len(EXTRA))

# meta slots
(M_FD, M_FRAME_SIZE, M_FRAME_NR, M_HEAD, M_CSUM_FIX, M_BLOCK_SIZE, M_BLOCK_NR, M_REMAIN, M_POS, M_MAX_TX,
 M_TX_BASE, M_TX_NR, M_TX_HEAD, M_TX_KICK) = range(14)

PacketV2State = namedtuple("PacketV2State", "ring meta counters rx_ts scratch")
# the same fields; its own type so that tx_burst resolves to the TX ring at compile time
PacketV2TxRingState = namedtuple("PacketV2TxRingState", "ring meta counters rx_ts scratch")
PacketV3State = namedtuple("PacketV3State", "ring meta counters rx_ts scratch")


@hot
def _complete_l4_checksum(buf, start, length):
    """Finish a CHECKSUM_PARTIAL TCP/UDP checksum of an IPv4 frame: the field holds the
    pseudo-header sum, so the checksum is ~(sum over the L4 bytes). Returns True if done.
    Every offset is checked against ``length``."""
    p = start + 12
    end = start + length
    for _ in range(2):      # up to two VLAN tags
        if p + 2 > end:
            return False
        et = (np.int64(buf[p]) << 8) | np.int64(buf[p + 1])
        if et != 0x8100 and et != 0x88A8:
            break
        p += 4
    if p + 2 > end or buf[p] != 0x08 or buf[p + 1] != 0x00:
        return False
    l3 = p + 2
    if l3 + 20 > end:
        return False
    hl = (np.int64(buf[l3]) & 0xF) * 4
    total = (np.int64(buf[l3 + 2]) << 8) | np.int64(buf[l3 + 3])
    if hl < 20 or total < hl or l3 + total > end:
        return False
    proto = buf[l3 + 9]
    l4 = l3 + hl
    n = total - hl
    if proto == 17:
        field = 6
    elif proto == 6:
        field = 16
    else:
        return False
    if n < field + 2:
        return False
    s = np.int64(0)
    i = l4
    while i + 4 <= l4 + n:
        s += np.int64(load_u32(buf, i))
        i += 4
    if i + 2 <= l4 + n:
        s += np.int64(load_u16(buf, i))
        i += 2
    if i < l4 + n:
        s += np.int64(buf[i])
    for _ in range(3):
        s = (s & 0xFFFF) + (s >> 16)
    s = ((s & 0xFF) << 8) | (s >> 8)       # little-endian word sum -> network order (RFC 1071 §2(B))
    c = (~s) & 0xFFFF
    if proto == 17 and c == 0:
        c = 0xFFFF
    buf[l4 + field] = c >> 8
    buf[l4 + field + 1] = c & 0xFF
    return True


@njit(cache=True, inline="always")
def _deliver(pool, counters, rx_ts, ring, src, snaplen, status, sec, nsec, csum_fix, tci, tpid):
    """Copy one frame from the ring into a new pool buffer; -1 when the pool is empty,
    -2 when the frame was dropped (counted). A VLAN tag the NIC/driver stripped into the
    descriptor (TP_STATUS_VLAN_VALID) is put back after the MAC addresses, as libpcap
    does, so the layers above see the frame as it was on the wire."""
    b = pool_alloc(pool)
    if b < 0:
        counters[RX_NOBUF] += 1
        return -1
    tagged = (status & TP_STATUS_VLAN_VALID) != 0 and snaplen >= 12
    total = snaplen + (4 if tagged else 0)
    if total > pool.meta[BUF_SIZE] - pool.data_off[b]:
        counters[RX_TOO_LONG] += 1
        pool_free(pool, b)
        return -2
    start = buf_start(pool, b)
    if tagged:
        memcpy(pool.data, start, ring, src, 12)
        if (status & TP_STATUS_VLAN_TPID_VALID) == 0 or tpid == 0:
            tpid = 0x8100
        pool.data[start + 12] = tpid >> 8
        pool.data[start + 13] = tpid & 0xFF
        pool.data[start + 14] = (tci >> 8) & 0xFF
        pool.data[start + 15] = tci & 0xFF
        memcpy(pool.data, start + 16, ring, src + 12, snaplen - 12)
    else:
        memcpy(pool.data, start, ring, src, snaplen)
    snaplen = total
    pool.data_len[b] = snaplen
    if csum_fix and (status & TP_STATUS_CSUMNOTREADY) != 0:
        if _complete_l4_checksum(pool.data, start, snaplen):
            counters[RX_CSUM_COMPLETED] += 1
    rx_ts[b] = sec * 1_000_000_000 + nsec
    counters[RX_PACKETS] += 1
    counters[RX_BYTES] += snaplen
    return b


@hot
def packet_v2_rx_burst(state, pool, bufs, n):
    ring, meta, counters = state.ring, state.meta, state.counters
    fsize = meta[M_FRAME_SIZE]
    nr = meta[M_FRAME_NR]
    head = meta[M_HEAD]
    n = min(n, bufs.shape[0])     # never write past the caller's array
    got = 0
    while got < n:
        off = head * fsize
        status = np.int64(load_acquire_u32(ring, off))
        if (status & TP_STATUS_USER) == 0:
            break
        length = np.int64(load_u32(ring, off + 4))
        snaplen = np.int64(load_u32(ring, off + 8))
        mac = np.int64(load_u16(ring, off + 12))
        b = -2
        if mac < TPACKET2_HDRLEN or snaplen <= 0 or mac + snaplen > fsize:
            counters[RX_BAD_DESC] += 1
        elif snaplen < length:
            counters[RX_TRUNCATED] += 1
        else:
            b = _deliver(pool, counters, state.rx_ts, ring, off + mac, snaplen, status,
                         np.int64(load_u32(ring, off + 16)), np.int64(load_u32(ring, off + 20)), meta[M_CSUM_FIX],
                         np.int64(load_u16(ring, off + 24)), np.int64(load_u16(ring, off + 26)))
            if b == -1:
                break       # pool empty: leave the frame in the ring for the next call
        store_release_u32(ring, off, np.uint32(TP_STATUS_KERNEL))
        head += 1
        if head == nr:
            head = 0
        if b >= 0:
            bufs[got] = b
            got += 1
    meta[M_HEAD] = head
    return got


@njit(cache=True, inline="always")
def _drop_block(counters, meta, frames):
    """A descriptor of the current V3 block points outside it: nothing after it can be
    found, so the block's ``frames`` not yet delivered go with it (counted), and the
    block is handed back to the kernel on the next pass."""
    counters[RX_BAD_DESC] += 1
    counters[RX_BAD_DESC_FRAMES] += frames
    meta[M_REMAIN] = 0


@hot
def packet_v3_rx_burst(state, pool, bufs, n):
    ring, meta, counters = state.ring, state.meta, state.counters
    bsize = meta[M_BLOCK_SIZE]
    n = min(n, bufs.shape[0])     # never write past the caller's array
    got = 0
    while got < n:
        blk = meta[M_HEAD] * bsize
        if (np.int64(load_acquire_u32(ring, blk + 8)) & TP_STATUS_USER) == 0:
            break
        if meta[M_REMAIN] < 0:      # a block we have not started yet (tpacket_hdr_v1)
            first = np.int64(load_u32(ring, blk + 16))
            meta[M_REMAIN] = np.int64(load_u32(ring, blk + 12))
            meta[M_POS] = blk + first
            if first < 48 or first >= bsize:
                _drop_block(counters, meta, meta[M_REMAIN])
        if meta[M_REMAIN] == 0:
            store_release_u32(ring, blk + 8, np.uint32(TP_STATUS_KERNEL))
            meta[M_REMAIN] = -1
            meta[M_HEAD] = (meta[M_HEAD] + 1) % meta[M_BLOCK_NR]
            continue
        p = meta[M_POS]
        if p + TPACKET3_HDRLEN > blk + bsize:
            _drop_block(counters, meta, meta[M_REMAIN])
            continue
        nxt = np.int64(load_u32(ring, p))
        snaplen = np.int64(load_u32(ring, p + 12))
        length = np.int64(load_u32(ring, p + 16))
        status = np.int64(load_u32(ring, p + 20))
        mac = np.int64(load_u16(ring, p + 24))
        meta[M_REMAIN] -= 1
        meta[M_POS] = p + nxt
        if mac < TPACKET3_HDRLEN or snaplen <= 0 or p + mac + snaplen > blk + bsize or \
                (meta[M_REMAIN] > 0 and (nxt <= 0 or p + nxt >= blk + bsize)):
            _drop_block(counters, meta, meta[M_REMAIN] + 1)
            continue
        if snaplen < length:
            counters[RX_TRUNCATED] += 1
            continue
        b = _deliver(pool, counters, state.rx_ts, ring, p + mac, snaplen, status,
                     np.int64(load_u32(ring, p + 4)), np.int64(load_u32(ring, p + 8)), meta[M_CSUM_FIX],
                     np.int64(load_u32(ring, p + 32)) & 0xFFFF, np.int64(load_u16(ring, p + 36)))
        if b == -1:
            meta[M_REMAIN] += 1     # retry this frame next time
            meta[M_POS] = p
            break
        if b >= 0:
            bufs[got] = b
            got += 1
    return got


@njit(cache=True, inline="always")
def _tx_refusal(data, start, length, max_untagged, room):
    """The counter a frame of ``length`` bytes is dropped under, or -1 if the kernel takes
    it. The kernel's own rules (net/packet/af_packet.c, packet_snd and tpacket_snd): at
    least the Ethernet header (dev_validate_header), at most MTU + 14 (``max_untagged``),
    4 bytes more if the frame carries an 802.1Q tag (packet_extra_vlan_len_allowed), and
    no more than the TX ring slot holds (``room``). Checking here keeps both TX modes
    alike: the kernel would refuse such a frame with EMSGSIZE (tx=send) or skip its slot
    silently (tx=ring, PACKET_LOSS)."""
    if length < 14:
        return TX_TOO_SHORT
    if length > room:
        return TX_TOO_LONG
    if length > max_untagged:
        if length > max_untagged + 4 or data[start + 12] != 0x81 or data[start + 13] != 0x00:
            return TX_TOO_LONG
    return -1


@njit(cache=True, inline="always")
def _tx_len(pool, counters, b, max_untagged, room):
    """The length to send from the caller's buffer ``b``, or -1 when it cannot go: what
    every driver refuses (tx_take: counted, freed if ours) or what this kernel would
    (_tx_refusal: counted under its cause, freed). Both TX modes start here."""
    length = tx_take(pool, counters, b, TX_BAD_BUF)
    if length < 0:
        return length
    cause = _tx_refusal(pool.data, buf_start(pool, b), length, max_untagged, room)
    if cause >= 0:
        counters[cause] += 1
        pool_free(pool, b)
        return np.int64(-1)
    return length


@hot
def packet_tx_burst(state, pool, bufs, n):
    """One send() per frame (PACKET_QDISC_BYPASS set at open). Frames the kernel refuses
    for lack of room (EAGAIN/ENOBUFS) stay with the caller."""
    meta, counters = state.meta, state.counters
    fd = meta[M_FD]
    noaddr = state.scratch      # no destination address: the socket is bound to the device
    max_untagged = meta[M_MAX_TX]
    sent = 0
    for i in range(min(n, bufs.shape[0])):
        b = bufs[i]
        length = _tx_len(pool, counters, b, max_untagged, max_untagged + 4)
        if length < 0:
            sent += 1
            continue
        r = sys_sendto(fd, pool.data, buf_start(pool, b), length, MSG_DONTWAIT, noaddr, 0)
        if r < 0:
            e = sys_errno()
            if e == EAGAIN or e == ENOBUFS:
                counters[TX_RING_FULL] += 1
                break
            counters[TX_ERROR] += 1
        else:
            counters[TX_PACKETS] += 1
            counters[TX_BYTES] += length
        pool_free(pool, b)
        sent += 1
    return sent


@hot
def packet_ring_tx_burst(state, pool, bufs, n):
    """PACKET_TX_RING: copy each frame into the next slot the kernel has given back
    (TP_STATUS_AVAILABLE), publish it with a release store of TP_STATUS_SEND_REQUEST,
    then one send() for the whole burst. A slot the kernel still owns means the ring is
    full: the frames from there on stay with the caller. As in DPDK's af_packet PMD, a
    frame counts as sent once it is in the ring. The kernel stops a flush at the first
    slot it cannot get an skb for (a full socket send buffer: tpacket_snd returns the
    bytes sent so far, or EAGAIN/ENOBUFS) and leaves that slot and the later ones
    SEND_REQUEST; then the next call, even with n = 0, or the port's poll() flushes again."""
    ring, meta, counters = state.ring, state.meta, state.counters
    fsize = meta[M_FRAME_SIZE]
    base = meta[M_TX_BASE]
    nr = meta[M_TX_NR]
    head = meta[M_TX_HEAD]
    max_untagged = meta[M_MAX_TX]
    room = fsize - TPACKET2_HDRLEN
    sent = 0
    queued = 0
    for i in range(min(n, bufs.shape[0])):
        b = bufs[i]
        length = _tx_len(pool, counters, b, max_untagged, room)
        if length < 0:
            sent += 1
            continue
        off = base + head * fsize
        # SEND_REQUEST or SENDING: not yet given back (with PACKET_LOSS set the kernel never
        # leaves a slot WRONG_FORMAT, it makes a slot it cannot send AVAILABLE again)
        if load_acquire_u32(ring, off) != TP_STATUS_AVAILABLE:
            counters[TX_RING_FULL] += 1
            break
        memcpy(ring, off + TPACKET2_HDRLEN, pool.data, buf_start(pool, b), length)
        store_u32(ring, off + 4, np.uint32(length))                           # tp_len
        store_release_u32(ring, off, np.uint32(TP_STATUS_SEND_REQUEST))
        head += 1
        if head == nr:
            head = 0
        counters[TX_PACKETS] += 1
        counters[TX_BYTES] += length
        pool_free(pool, b)
        sent += 1
        queued += 1
    meta[M_TX_HEAD] = head
    if queued > 0 or meta[M_TX_KICK] != 0:
        # the kernel ignores the buffer of a send() on a TX-ring socket (tpacket_snd)
        r = sys_sendto(meta[M_FD], ring, 0, 0, MSG_DONTWAIT, state.scratch, 0)
        counters[TX_KICKS] += 1
        if r < 0:
            e = sys_errno()
            if e != EAGAIN and e != ENOBUFS:
                counters[TX_ERROR] += 1
        # an unfinished flush leaves the last slot queued still SEND_REQUEST (see above)
        last = head - 1 if head > 0 else nr - 1
        pending = load_acquire_u32(ring, base + last * fsize) == TP_STATUS_SEND_REQUEST
        meta[M_TX_KICK] = 1 if pending else 0
    return sent


register_burst(PacketV2State, packet_v2_rx_burst, packet_tx_burst)
register_burst(PacketV2TxRingState, packet_v2_rx_burst, packet_ring_tx_burst)
register_burst(PacketV3State, packet_v3_rx_burst, packet_tx_burst)


# --- control plane ------------------------------------------------------------------------------

def filter_program(ip: int) -> list[tuple[int, int, int, int]]:
    """Classic BPF (filter.h): accept ARP, and IPv4 to ``ip``, to 255.255.255.255 or to
    224.0.0.0/4; drop the rest. Offsets assume an untagged Ethernet frame."""
    return [
        (0x28, 0, 0, 12),            # 0 ldh [12]            EtherType
        (0x15, 7, 0, 0x0806),        # 1 jeq ARP -> 9 accept
        (0x15, 0, 5, 0x0800),        # 2 jeq IPv4 else -> 8 drop
        (0x20, 0, 0, 30),            # 3 ld [30]             IPv4 destination
        (0x15, 4, 0, ip),            # 4 jeq ip -> 9
        (0x15, 3, 0, 0xFFFFFFFF),    # 5 jeq broadcast -> 9
        (0x54, 0, 0, 0xF0000000),    # 6 and #0xf0000000
        (0x15, 1, 0, 0xE0000000),    # 7 jeq 224/4 -> 9 else 8
        (0x06, 0, 0, 0),             # 8 ret 0              drop
        (0x06, 0, 0, 0x40000),       # 9 ret 256 KiB        accept whole frame
    ]


def attach_filter(sock: socket.socket, prog) -> None:
    insns = b"".join(struct.pack("HBBI", c, jt, jf, k) for c, jt, jf, k in prog)
    cbuf = ctypes.create_string_buffer(insns, len(insns))
    fprog = struct.pack("HxxxxxxQ", len(prog), ctypes.addressof(cbuf))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)   # the kernel copies the program here


SIOCGIFFLAGS, SIOCGIFMTU, SIOCGIFHWADDR = 0x8913, 0x8921, 0x8927
IFF_UP, IFF_RUNNING = 0x1, 0x40


def _ifreq(sock: socket.socket, dev: str, request: int) -> bytes:
    """ioctl on the socket (not /sys: sysfs shows the namespace it was mounted in, not ours)."""
    import fcntl
    return fcntl.ioctl(sock.fileno(), request, struct.pack("16s24x", dev.encode()))[16:]


class PacketPort(Port):
    def __init__(self, args: SpecArgs, pool, spec: str):
        self.spec, self.pool = spec, pool
        self.sock = None
        self._map = None
        self.state, self.tx = None, "send"
        self.dev = args.str("dev")
        mode = args.choice("mode", ("latency", "capture"), "latency")
        frames = args.int("frames", 1024, lo=8, hi=1 << 20)
        fsize = args.int("frame_size", 2048, lo=256, hi=65536)
        flt = args.str("filter", "all")
        bypass = args.bool("qdisc_bypass", True)
        promisc = args.bool("promisc", False)
        csum = args.choice("csum", ("fix", "keep"), "fix")
        bsize = args.int("block_size", 1 << 20, lo=4096, hi=1 << 26)
        blocks = args.int("blocks", 8, lo=2, hi=4096)
        tov = args.int("timeout_ms", 4, lo=1, hi=10000)
        tx = args.choice("tx", ("send", "ring"), "send")
        tx_frames = args.int("tx_frames", 256, lo=8, hi=1 << 20)
        args.finish()
        if tx == "ring" and mode != "latency":
            raise SpecError("packet: tx=ring needs mode=latency (TPACKET_V2); use tx=send with mode=capture")
        if fsize % 16 or mmap.PAGESIZE % fsize and fsize % mmap.PAGESIZE:
            raise SpecError(f"packet: frame_size={fsize} must be a multiple of 16 that divides or is a multiple "
                            f"of the page size {mmap.PAGESIZE}")
        if bsize % mmap.PAGESIZE:
            raise SpecError(f"packet: block_size={bsize} must be a multiple of the page size {mmap.PAGESIZE}")
        try:
            self.ifindex = socket.if_nametoindex(self.dev)
        except OSError:
            raise SpecError(f"packet: no interface named {self.dev!r} (see `ip link`)") from None
        self.counters = Counters(EXTRA)
        try:
            # protocol 0: nothing is queued until bind(), so the filter is in place first
            self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        except PermissionError as e:
            raise OSError(e.errno, "packet: AF_PACKET needs root or CAP_NET_RAW "
                          "(setcap cap_net_raw+ep $(readlink -f $(which python3)))") from None
        try:
            s = self.sock
            self.mac = ":".join(f"{x:02x}" for x in _ifreq(s, self.dev, SIOCGIFHWADDR)[2:8])
            mtu = struct.unpack("i", _ifreq(s, self.dev, SIOCGIFMTU)[:4])[0]
            if flt != "all":
                try:
                    socket.inet_aton(flt)
                    ip = struct.unpack("!I", socket.inet_aton(flt))[0] if flt.count(".") == 3 else -1
                except OSError:
                    ip = -1
                if ip < 0:
                    raise SpecError(f"packet: filter={flt!r}: expected all or an IPv4 address")
                attach_filter(s, filter_program(ip))
            try:
                s.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)   # not our own sends (kernel >= 4.20)
            except OSError:
                pass
            if bypass:
                s.setsockopt(SOL_PACKET, PACKET_QDISC_BYPASS, 1)
            meta = np.zeros(16, np.int64)
            if mode == "latency":
                s.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V2)
                if tx == "ring":
                    # skip a TX slot the kernel cannot send instead of stopping at it (EBUSY once a ring exists)
                    s.setsockopt(SOL_PACKET, PACKET_LOSS, 1)
                per_block = max(1, mmap.PAGESIZE // fsize)
                block = fsize * per_block
                nblocks = -(-frames // per_block)
                frames = nblocks * per_block
                s.setsockopt(SOL_PACKET, PACKET_RX_RING, struct.pack("IIII", block, nblocks, fsize, frames))
                size = block * nblocks
                meta[M_FRAME_SIZE], meta[M_FRAME_NR] = fsize, frames
                state_type = PacketV2State
                if tx == "ring":
                    tx_blocks = -(-tx_frames // per_block)
                    tx_frames = tx_blocks * per_block
                    s.setsockopt(SOL_PACKET, PACKET_TX_RING, struct.pack("IIII", block, tx_blocks, fsize, tx_frames))
                    # one mmap covers both rings: RX first, then TX (packet_mmap.rst)
                    meta[M_TX_BASE], meta[M_TX_NR] = size, tx_frames
                    size += block * tx_blocks
                    state_type = PacketV2TxRingState
            else:
                s.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V3)
                s.setsockopt(SOL_PACKET, PACKET_RX_RING,
                             struct.pack("IIIIIII", bsize, blocks, 2048, bsize // 2048 * blocks, tov, 0, 0))
                size = bsize * blocks
                meta[M_BLOCK_SIZE], meta[M_BLOCK_NR], meta[M_REMAIN] = bsize, blocks, -1
                state_type = PacketV3State
            self._map = mmap.mmap(s.fileno(), size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
            ring = np.frombuffer(self._map, np.uint8)
            s.bind((self.dev, ETH_P_ALL))
            if promisc:
                self._membership(PACKET_MR_PROMISC, b"")
            meta[M_FD] = s.fileno()
            meta[M_CSUM_FIX] = 1 if csum == "fix" else 0
            meta[M_MAX_TX] = mtu + 14          # untagged; _tx_refusal allows 4 more for an 802.1Q tag
            self.mode, self.tx = mode, (tx if mode == "latency" else "send")
            self.state = state_type(ring, meta, self.counters.array, np.zeros(max(pool.size, 1), np.int64),
                                    np.zeros(16, np.uint8))
        except BaseException:
            self.close()
            raise

    def _membership(self, typ: int, addr: bytes) -> None:
        mreq = struct.pack("iHH8s", self.ifindex, typ, len(addr), addr)
        self.sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)

    def add_multicast(self, mac: str) -> None:
        """Ask the NIC to accept frames for a multicast MAC (its hardware filter)."""
        self._membership(PACKET_MR_MULTICAST, bytes(int(x, 16) for x in mac.split(":")))

    def rx_timestamp_ns(self, b: int) -> int:
        """Kernel receive time (CLOCK_REALTIME ns) of a buffer rx_burst returned."""
        return int(self.state.rx_ts[b])

    @property
    def link_up(self) -> bool:
        if self.sock is None:
            return False
        flags = struct.unpack("H", _ifreq(self.sock, self.dev, SIOCGIFFLAGS)[:2])[0]
        return flags & (IFF_UP | IFF_RUNNING) == IFF_UP | IFF_RUNNING

    def poll(self) -> None:
        if self.sock is None:
            return
        if self.tx == "ring" and self.state is not None and self.state.meta[M_TX_KICK]:
            self.tx_burst(self.pool.alloc_burst(0))      # finish a flush the kernel left unfinished
        st = self.sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 12)
        packets, drops = struct.unpack("II", st[:8])
        self.counters.array[KERNEL_PACKETS] += packets
        self.counters.array[KERNEL_DROPS] += drops

    def close(self) -> None:
        if self.sock is None:
            return
        try:
            self.poll()
        except OSError:
            pass
        self.state = None
        if self._map is not None:
            try:
                self._map.close()
            except BufferError:
                pass          # a numpy view is still alive somewhere; unmapped when it goes
            self._map = None
        self.sock.close()
        self.sock = None


def open(args: SpecArgs, pool, spec: str) -> PacketPort:  # noqa: A001 - the driver contract's name
    return PacketPort(args, pool, spec)

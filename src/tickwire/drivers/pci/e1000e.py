"""Intel 82574L ("e1000e", what QEMU emulates as ``-device e1000e``) poll-mode driver.

References are to the Intel 82574 GbE Controller Family datasheet (rev 3.x):
§7.1 receive (legacy RX descriptor, Table 7-... "Receive Descriptor"), §7.2
transmit (legacy TX descriptor), §10.2 register descriptions, §10.2.2 CTRL/STATUS,
§10.2.5 RCTL/RDBA/RDLEN/RDH/RDT, §10.2.6 TCTL/TIPG/TDBA/TDLEN/TDH/TDT, §10.2.7
RAL/RAH/MTA filters, §10.2.8 statistics (clear on read).

Only legacy 16-byte descriptors and one RX/TX queue; no interrupts (IMC masks all),
no offloads (RXCSUM off, so RX error bits mean frame errors only).
"""

from __future__ import annotations

import time
from collections import namedtuple

import numpy as np
from numba import njit

from ...mem.atomics import load_acquire_u32, load_u16, store_release_u32, store_u32, store_u64
from ...mem.hotpath import hot
from ...mem.mempool import BUF_SIZE, pool_free
from ..counters import RX_TOO_LONG, TX_BYTES, TX_PACKETS, TX_RING_FULL
from ..port import register_burst
from .ring import dma_addr, foreign_pool, rx_hand_over, tx_accept

# --- registers (byte offsets in BAR0) ---------------------------------------------------------
CTRL, STATUS, ICR, IMC = 0x0000, 0x0008, 0x00C0, 0x00D8
CTRL_SLU = 1 << 6            # set link up
CTRL_RST = 1 << 26           # device reset, self-clearing (§10.2.2.1)
STATUS_LU = 1 << 1           # link up
RCTL, RXCSUM = 0x0100, 0x5000
# Written explicitly because a CTRL.RST need not clear what the previous owner set
# (QEMU's e1000e keeps them; Linux's e1000e sets RFCTL.EXTEN = extended RX descriptors
# and RSS in MRQC): RFCTL 0 = legacy descriptors (§10.2.5.16), MRQC 0 = no RSS (§10.2.5.20).
RFCTL, MRQC = 0x5008, 0x5818
RCTL_EN, RCTL_UPE, RCTL_MPE, RCTL_BAM, RCTL_SECRC = 1 << 1, 1 << 3, 1 << 4, 1 << 15, 1 << 26
# RCTL.LPE stays 0: the MAC discards frames over 1522 bytes, so a 2048-byte BSIZE
# (BSIZE=00, BSEX=0) never writes more than 1522 bytes into a buffer (§10.2.5.1).
MAX_RX_FRAME = 1522
TCTL, TIPG = 0x0400, 0x0410
TCTL_EN, TCTL_PSP = 1 << 1, 1 << 3
TCTL_CT, TCTL_COLD = 0x0F << 4, 0x3F << 12
TIPG_DEFAULT = 0x00602008    # IPGT 8, IPGR1 8, IPGR2 6: the datasheet's copper defaults
RDBAL, RDBAH, RDLEN, RDH, RDT = 0x2800, 0x2804, 0x2808, 0x2810, 0x2818
TDBAL, TDBAH, TDLEN, TDH, TDT = 0x3800, 0x3804, 0x3808, 0x3810, 0x3818
MTA, RAL0, RAH0 = 0x5200, 0x5400, 0x5404
RAH_AV = 1 << 31             # address valid
MTA_WORDS = 128
# Statistics, clear on read (§10.2.8): folded into the port counters by poll().
HW_STATS = (("hw_rx_crc_errors", 0x4000), ("hw_rx_errors", 0x400C), ("hw_rx_missed", 0x4010),
            ("hw_rx_no_desc", 0x40A0), ("hw_rx_undersize", 0x40A4), ("hw_rx_oversize", 0x40AC),
            ("hw_rx_good", 0x4074), ("hw_tx_good", 0x4080))

# --- descriptors (16 bytes) -------------------------------------------------------------------
DESC = 16
# RX: addr u64 @0, length u16 @8, csum u16 @10, status u8 @12, errors u8 @13, special u16 @14
RXD_DD, RXD_EOP = 0x01, 0x02
RXD_ERR_MASK = 0x97          # CE|SE|SEQ|CXE|RXE: frame errors (TCPE/IPE need RXCSUM, which is off)
# TX: addr u64 @0, length u16 @8, cso u8 @10, cmd u8 @11, status u8 @12, css u8 @13, special u16 @14
TXD_CMD_EOP, TXD_CMD_IFCS, TXD_CMD_RS = 0x01, 0x02, 0x08
TXD_STAT_DD = 0x01
MAX_TX_FRAME = 16288         # legacy TX descriptor length limit

EXTRA_COUNTERS = ("rx_errors", "rx_bad_length", "tx_bad_buf", "pool_mismatch") + tuple(n for n, _ in HW_STATS)
_C_RX_ERRORS, _C_RX_BAD_LENGTH, _C_TX_BAD_BUF, _C_POOL_MISMATCH = range(8, 12)

# q[] slots: ring geometry and software ring indices
Q_RX_NEXT, Q_TX_TAIL, Q_TX_CLEAN, Q_N_RX, Q_N_TX, Q_RX_RING, Q_TX_RING, Q_POOL_OFF, Q_POOL_ADDR = range(9)
Q_LEN = 16

E1000eState = namedtuple("E1000eState", "bar dma pages q rx_bufs tx_bufs counters")


@njit(cache=True, inline="always")
def _buf_addr(st, pool, idx):
    off = st.q[Q_POOL_OFF] + idx * pool.meta[BUF_SIZE] + pool.data_off[idx]
    return dma_addr(st.pages, off)


@hot    # runtime-free (mem/hotpath.py): no refcounting in the per-burst path
def e1000e_rx_burst(st, pool, bufs, n):
    q, c, ring = st.q, st.counters, st.dma
    if foreign_pool(pool, q, Q_POOL_ADDR, c, _C_POOL_MISMATCH):
        return 0
    nrx = q[Q_N_RX]
    nxt = q[Q_RX_NEXT]
    last = -1
    got = 0
    n = min(n, bufs.shape[0])     # never write past the caller's array
    while got < n:
        d = q[Q_RX_RING] + nxt * DESC
        word = load_acquire_u32(ring, d + 12)      # status | errors<<8 | special<<16
        if (word & RXD_DD) == 0:
            break
        length = np.int64(load_u16(ring, d + 8))
        buf = st.rx_bufs[nxt]
        room = pool.meta[BUF_SIZE] - pool.data_off[buf]
        # Check what the device wrote before anyone reads the buffer (house rule).
        if (word >> 8) & RXD_ERR_MASK:
            c[_C_RX_ERRORS] += 1                   # frame error: re-arm the same buffer
        elif (word & RXD_EOP) == 0 or length > room or length > MAX_RX_FRAME:
            c[RX_TOO_LONG] += 1                    # would span descriptors: we never allow that
        elif length < 14:
            c[_C_RX_BAD_LENGTH] += 1
        else:
            new = rx_hand_over(pool, bufs, got, buf, length, c)
            if new < 0:
                break                              # pool empty: the frame stays in the ring
            got += 1
            st.rx_bufs[nxt] = new
            buf = new
        store_u64(ring, d, _buf_addr(st, pool, buf))
        store_u32(ring, d + 8, np.uint32(0))
        store_u32(ring, d + 12, np.uint32(0))
        last = nxt
        nxt += 1
        if nxt == nrx:
            nxt = 0
    if last >= 0:
        q[Q_RX_NEXT] = nxt
        # RDT = last descriptor handed back: the device owns [RDH, RDT) (§7.1.4.1).
        store_release_u32(st.bar, RDT, np.uint32(last))
    return got


@njit(cache=True, inline="always")
def _tx_reclaim(st, pool):
    q, ring = st.q, st.dma
    ntx, clean, tail = q[Q_N_TX], q[Q_TX_CLEAN], q[Q_TX_TAIL]
    while clean != tail:
        d = q[Q_TX_RING] + clean * DESC
        if (load_acquire_u32(ring, d + 12) & TXD_STAT_DD) == 0:
            break
        pool_free(pool, st.tx_bufs[clean])
        st.tx_bufs[clean] = -1
        clean += 1
        if clean == ntx:
            clean = 0
    q[Q_TX_CLEAN] = clean


@hot    # runtime-free (mem/hotpath.py): no refcounting in the per-burst path
def e1000e_tx_burst(st, pool, bufs, n):
    q, c, ring = st.q, st.counters, st.dma
    if foreign_pool(pool, q, Q_POOL_ADDR, c, _C_POOL_MISMATCH):
        return 0
    _tx_reclaim(st, pool)
    ntx = q[Q_N_TX]
    tail = q[Q_TX_TAIL]
    clean = q[Q_TX_CLEAN]
    sent = 0
    n = min(n, bufs.shape[0])     # never read past the caller's array
    while sent < n:
        nt = tail + 1
        if nt == ntx:
            nt = 0
        if nt == clean:
            c[TX_RING_FULL] += 1
            break
        buf = bufs[sent]
        sent += 1
        length = tx_accept(pool, buf, 0, MAX_TX_FRAME, c, _C_TX_BAD_BUF)
        if length < 0:
            continue                               # consumed and counted
        d = q[Q_TX_RING] + tail * DESC
        store_u64(ring, d, _buf_addr(st, pool, buf))
        cmd = TXD_CMD_EOP | TXD_CMD_IFCS | TXD_CMD_RS
        store_u32(ring, d + 8, np.uint32(length | (cmd << 24)))
        store_u32(ring, d + 12, np.uint32(0))
        st.tx_bufs[tail] = buf
        c[TX_PACKETS] += 1
        c[TX_BYTES] += length
        tail = nt
    if tail != q[Q_TX_TAIL]:
        q[Q_TX_TAIL] = tail
        store_release_u32(st.bar, TDT, np.uint32(tail))   # descriptors are written before the doorbell
    return sent


register_burst(E1000eState, e1000e_rx_burst, e1000e_tx_burst)


def fake_state() -> E1000eState:
    """A state over plain memory whose pool address matches nothing (warm.py)."""
    from ..counters import Counters
    return E1000eState(np.zeros(0x20000, np.uint8), np.zeros(4096, np.uint8), np.zeros(1, np.uint64),
                       np.zeros(Q_LEN, np.int64), np.zeros(1, np.int32), np.zeros(1, np.int32),
                       Counters(EXTRA_COUNTERS).array)

"""Control plane of the 82574L driver: reset, rings, filters, link, statistics.

Bring-up order follows the datasheet's initialisation chapter (§4.6): mask
interrupts, global reset, wait for it to clear, set link up, program receive
(§4.6.7) and transmit (§4.6.8) rings, then enable.
"""

from __future__ import annotations

import struct
import time

import numpy as np

from . import e1000e as hw
from .base import POOL_OFF, PciPort
from .mmio import rd32, wr32

RING_ENTRIES = 256            # RDLEN/TDLEN must be multiples of 128 bytes (8 descriptors)


class E1000ePort(PciPort):
    driver_name = "e1000e"

    def __init__(self, dev, iommu, pool, spec, *, promisc=False, allmulti=False,
                 link_timeout=5.0, rx_ring=RING_ENTRIES, tx_ring=RING_ENTRIES):
        self.promisc, self.allmulti, self.link_timeout = promisc, allmulti, link_timeout
        self.n_rx, self.n_tx = rx_ring, tx_ring
        self.state = None
        super().__init__(dev, iommu, pool, spec, hw.EXTRA_COUNTERS)

    # --- bring-up ---------------------------------------------------------------------
    def _setup(self) -> None:
        a = self.access
        a.config.enable()
        self.bar = bar = a.map_bar(0)
        if bar.size < 0x10000:
            raise OSError(f"pci: {self.dev.bdf} BAR0 is {bar.size:#x} bytes; not an 82574L register file")
        self._reset()
        self.mac_bytes = self._read_mac()
        self.mac = ":".join(f"{x:02x}" for x in self.mac_bytes)    # the drivers' common form
        q = np.zeros(hw.Q_LEN, np.int64)
        rx_ring, tx_ring = 0, self.n_rx * hw.DESC
        q[hw.Q_N_RX], q[hw.Q_N_TX] = self.n_rx, self.n_tx
        q[hw.Q_RX_RING], q[hw.Q_TX_RING] = rx_ring, tx_ring
        q[hw.Q_POOL_OFF] = POOL_OFF
        q[hw.Q_POOL_ADDR] = self.pool_addr
        self.state = hw.E1000eState(bar, self.dma.buf, self.dma.pages, q,
                                    np.full(self.n_rx, -1, np.int32), np.full(self.n_tx, -1, np.int32),
                                    self.counters.array)
        self._rx_on = False
        self._setup_rx(rx_ring)
        self._setup_tx(tx_ring)
        self._clear_stats()
        self._wait_link()
        self._enable_rx_when_link_up()

    def _enable_rx_when_link_up(self) -> None:
        """RCTL.EN only once the link is up, then RDT written again (which makes QEMU's
        e1000e flush frames it queued while it could not receive). Defensive: the
        'RX dead after a kernel driver' failure we chased was RFCTL.EXTEN, see _setup_rx."""
        if self._rx_on or not self.link_up:
            return
        wr32(self.bar, hw.RCTL, self._rctl())
        wr32(self.bar, hw.RDT, rd32(self.bar, hw.RDT))
        self._rx_on = True

    def _reset(self) -> None:
        bar = self.bar
        wr32(bar, hw.IMC, 0xFFFFFFFF)                    # we poll: no interrupts
        wr32(bar, hw.RCTL, 0)
        wr32(bar, hw.TCTL, 0)
        wr32(bar, hw.CTRL, rd32(bar, hw.CTRL) | hw.CTRL_RST)
        deadline = time.monotonic() + 1.0
        time.sleep(0.001)                                # §10.2.2.1: wait >= 1 us before polling
        while rd32(bar, hw.CTRL) & hw.CTRL_RST:
            if time.monotonic() > deadline:
                raise TimeoutError(f"pci: {self.dev.bdf} did not finish its reset within 1 s")
            time.sleep(0.001)
        wr32(bar, hw.IMC, 0xFFFFFFFF)                    # reset re-enables nothing, but be explicit
        rd32(bar, hw.ICR)                                # clear pending causes
        wr32(bar, hw.CTRL, rd32(bar, hw.CTRL) | hw.CTRL_SLU)

    def _read_mac(self) -> bytes:
        lo, hi = rd32(self.bar, hw.RAL0), rd32(self.bar, hw.RAH0)
        return struct.pack("<IH", lo, hi & 0xFFFF)

    def _setup_rx(self, ring_off: int) -> None:
        bar, st, pool = self.bar, self.state, self.pool
        if pool.buf_size - pool.headroom < hw.MAX_RX_FRAME:
            raise ValueError(f"pci: pool buffers hold {pool.buf_size - pool.headroom} bytes after the headroom; "
                             f"the e1000e may write {hw.MAX_RX_FRAME}")
        bufs = self._alloc_rx_bufs(self.n_rx)
        st.rx_bufs[:] = bufs
        for i, b in enumerate(bufs):
            d = ring_off + i * hw.DESC
            addr = self.dma.addr(POOL_OFF + int(b) * pool.buf_size + int(pool.arrays.data_off[b]))
            self.dma.buf[d:d + hw.DESC] = np.frombuffer(struct.pack("<QQ", addr, 0), np.uint8)
        base = self.dma.addr(ring_off)
        wr32(bar, hw.RXCSUM, 0)
        wr32(bar, hw.RFCTL, 0)
        wr32(bar, hw.MRQC, 0)
        wr32(bar, hw.RDBAL, base & 0xFFFFFFFF)
        wr32(bar, hw.RDBAH, base >> 32)
        wr32(bar, hw.RDLEN, self.n_rx * hw.DESC)
        wr32(bar, hw.RDH, 0)
        wr32(bar, hw.RDT, self.n_rx - 1)                 # one slot stays empty: RDH == RDT means "none"
        self._program_filters()      # RCTL stays 0 until the link is up

    def _rctl(self) -> int:
        # BSIZE=00 (2048 bytes), LPE=0, SECRC: strip the FCS so lengths are frame lengths.
        v = hw.RCTL_EN | hw.RCTL_BAM | hw.RCTL_SECRC
        if self.promisc:
            v |= hw.RCTL_UPE | hw.RCTL_MPE
        elif self.allmulti:
            v |= hw.RCTL_MPE
        return v

    def _program_filters(self) -> None:
        mac = self.mac_bytes
        wr32(self.bar, hw.RAL0, struct.unpack("<I", mac[:4])[0])
        wr32(self.bar, hw.RAH0, struct.unpack("<H", mac[4:])[0] | hw.RAH_AV)
        for i in range(hw.MTA_WORDS):
            wr32(self.bar, hw.MTA + 4 * i, 0)
        if self._rx_on:
            wr32(self.bar, hw.RCTL, self._rctl())

    def set_promisc(self, on: bool) -> None:
        self.promisc = on
        if self._rx_on:
            wr32(self.bar, hw.RCTL, self._rctl())

    def add_multicast(self, mac) -> None:
        """Accept one multicast group: MTA hash of address bits 47:36 (RCTL.MO=00, §10.2.7.1).
        ``mac``: "01:00:5e:..." or 6 bytes."""
        if isinstance(mac, str):
            mac = bytes.fromhex(mac.replace(":", ""))
        h = ((mac[4] >> 4) | (mac[5] << 4)) & 0xFFF
        reg = hw.MTA + 4 * (h >> 5)
        wr32(self.bar, reg, rd32(self.bar, reg) | (1 << (h & 31)))

    def _setup_tx(self, ring_off: int) -> None:
        bar = self.bar
        self.dma.buf[ring_off:ring_off + self.n_tx * hw.DESC] = 0
        base = self.dma.addr(ring_off)
        wr32(bar, hw.TDBAL, base & 0xFFFFFFFF)
        wr32(bar, hw.TDBAH, base >> 32)
        wr32(bar, hw.TDLEN, self.n_tx * hw.DESC)
        wr32(bar, hw.TDH, 0)
        wr32(bar, hw.TDT, 0)
        wr32(bar, hw.TIPG, hw.TIPG_DEFAULT)
        wr32(bar, hw.TCTL, hw.TCTL_EN | hw.TCTL_PSP | hw.TCTL_CT | hw.TCTL_COLD)

    # --- run time -----------------------------------------------------------------------
    @property
    def link_up(self) -> bool:
        return bool(rd32(self.bar, hw.STATUS) & hw.STATUS_LU)

    def _clear_stats(self) -> None:
        for _, reg in hw.HW_STATS:
            rd32(self.bar, reg)

    def _fold_hw_stats(self) -> None:
        """Add the clear-on-read statistics registers (§10.2.8) to the counters."""
        c = self.counters
        for name, reg in hw.HW_STATS:
            v = rd32(self.bar, reg)
            if v:
                c.bump(name, v)

    def stats(self) -> dict[str, int]:
        # Fold first: frames received since the last poll() would otherwise show in
        # rx_packets but not yet in hw_rx_good (GPRC), which then read low.
        if not self._closed and self.state is not None:
            self._fold_hw_stats()
        return super().stats()

    def poll(self) -> None:
        """Fold the clear-on-read statistics registers into the counters; TX watchdog."""
        if self._closed:
            return
        self._enable_rx_when_link_up()
        self._fold_hw_stats()
        q = self.state.q
        clean, tail = int(q[hw.Q_TX_CLEAN]), int(q[hw.Q_TX_TAIL])
        d = int(q[hw.Q_TX_RING]) + clean * hw.DESC
        self._watch_tx(clean, clean != tail and not rd32(self.dma.buf, d + 12) & hw.TXD_STAT_DD)

    def _stop(self) -> None:
        if self.state is None:
            return
        wr32(self.bar, hw.RCTL, 0)
        wr32(self.bar, hw.TCTL, 0)
        wr32(self.bar, hw.IMC, 0xFFFFFFFF)
        wr32(self.bar, hw.CTRL, rd32(self.bar, hw.CTRL) | hw.CTRL_RST)
        time.sleep(0.002)

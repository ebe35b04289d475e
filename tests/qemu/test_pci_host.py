"""PCI driver checks that need no guest: they run against this machine's real sysfs
and refuse before touching any device (nothing here binds, unbinds or maps a BAR)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from conftest import float_uses_after_fresh_compile

from tickwire.drivers.pci import list_nics, sysfs
from tickwire.drivers.port import open_port
from tickwire.drivers.spec import SpecError
from tickwire.mem.mempool import Mempool


def _default_route_nic():
    for nic in list_nics():
        if any(i["default_route"] for i in nic["interfaces"]):
            return nic
    return None


def test_bdf_forms():
    assert sysfs.normalize_bdf("00:04.0") == "0000:00:04.0"
    assert sysfs.normalize_bdf("0000:AB:1f.7") == "0000:ab:1f.7"
    for bad in ("", "00:04", "0000:00:04.8", "zz:00.0", "0000:00:04.0/../x"):
        with pytest.raises(SpecError):
            sysfs.normalize_bdf(bad)


def test_wrong_pci_address_is_a_spec_error():
    with pytest.raises(SpecError, match="no PCI device 0000:7f:1f.7"):
        open_port("pci:0000:7f:1f.7", Mempool(64))
    with pytest.raises(SpecError, match="not a PCI address"):
        open_port("pci:eth0", Mempool(64))
    with pytest.raises(SpecError, match="unknown argument"):
        open_port("pci:0000:00:04.0,iommu=vfio,colour=red", Mempool(64))
    with pytest.raises(SpecError, match="iommu="):
        open_port("pci:0000:00:04.0,iommu=maybe", Mempool(64))


def test_nic_with_the_default_route_is_refused():
    """The NIC this machine talks through is listed as unusable, and open() refuses it
    (before unbinding anything) unless force=yes."""
    nic = _default_route_nic()
    if nic is None:
        pytest.skip("no PCI NIC carries the default route here")
    assert not nic["usable"] and "default route" in nic["reason"]
    with pytest.raises(PermissionError, match="default route"):
        open_port(f"pci:{nic['bdf']},iommu=none", Mempool(64))
    # Still bound to its kernel driver: nothing was touched.
    assert sysfs.device(nic["bdf"]).driver == nic["kernel_driver"]


def test_list_nics_describes_every_network_device():
    for nic in list_nics():
        assert set(nic) >= {"bdf", "vendor", "device", "driver", "kernel_driver", "iommu_group",
                            "interfaces", "usable", "reason"}
        dev = sysfs.device(nic["bdf"])
        assert dev.is_network
        assert nic["reason"]


def test_device_without_iommu_group_needs_explicit_unsafe_mode():
    """Default iommu is VFIO; a device with no IOMMU group is refused with the way out named."""
    idle = [d for d in sysfs.devices() if d.iommu_group is None and not d.netifs and not d.driver]
    if not idle:
        pytest.skip("no idle PCI device without an IOMMU group on this machine")
    bdf = idle[0].bdf
    with pytest.raises(OSError, match="iommu=none"):
        open_port(f"pci:{bdf},driver=e1000e", Mempool(64))
    with pytest.raises(OSError, match="no IOMMU group"):
        open_port(f"pci:{bdf},driver=e1000e,iommu=vfio", Mempool(64))
    assert sysfs.device(bdf).driver == ""


def test_no_hugepages_is_a_clear_error():
    """The sysfs path needs physically contiguous 2 MiB pages: asking for more than are
    free (none, on most machines) is refused before anything is mapped, naming the knob."""
    from tickwire.drivers.pci.dma import DmaMemory
    from tickwire.mem.shm import HUGEPAGE_2M, free_hugepages
    with pytest.raises(OSError, match=r"free 2 MiB hugepages needed .*nr_hugepages"):
        DmaMemory((free_hugepages() + 1) * HUGEPAGE_2M, vfio=None)


@pytest.mark.parametrize("buf_size", [2048, 2176, 4096, 9216])
def test_pagemap_pool_never_hands_out_a_buffer_across_a_2m_page(buf_size):
    """Without an IOMMU only single 2 MiB pages are contiguous: the buffers that cross a
    page boundary are held back by the port, the rest stay in the pool."""
    from tickwire.drivers.pci.base import POOL_OFF, PciPort

    class FakeDma:
        iommu = "none"

    port = PciPort.__new__(PciPort)
    port.pool = Mempool(3000, buf_size, 128)
    port.dma = FakeDma()
    port._reserve_straddlers()
    start = POOL_OFF + np.arange(port.pool.size, dtype=np.int64) * buf_size
    crosses = (start >> 21) != ((start + buf_size - 1) >> 21)
    assert sorted(port._reserved.tolist()) == np.flatnonzero(crosses).tolist()
    handed = port.pool.alloc_burst(port.pool.size)
    assert not crosses[handed].any()
    assert len(handed) + len(port._reserved) == port.pool.size
    port._closed = True


def test_hot_paths_reject_a_pool_outside_dma_memory():
    """rx/tx with buffers from a pool the port does not own: nothing happens, it is counted."""
    from tickwire.drivers.pci import e1000e, virtio
    from tickwire.drivers.port import rx_burst, tx_burst
    pool = Mempool(64)
    bufs = pool.alloc_burst(4)
    for mod in (e1000e, virtio):
        st = mod.fake_state()
        assert rx_burst(st, pool.arrays, np.empty(4, np.int32), 4) == 0
        assert tx_burst(st, pool.arrays, bufs, 4) == 0
        assert st.counters[mod.EXTRA_COUNTERS.index("pool_mismatch") + 8] == 2
    assert pool.in_flight == 4


def test_pagemap_translation_is_page_aligned_for_a_hugepage():
    """Reserves two 2 MiB pages for the test (and gives them back) when none are free."""
    from conftest import require_root
    from tickwire.drivers.pci.dma import DmaMemory
    from tickwire.mem.shm import free_hugepages
    require_root()
    nr = "/proc/sys/vm/nr_hugepages"
    with open(nr) as f:
        before = int(f.read())
    if free_hugepages() < 1:
        with open(nr, "w") as f:
            f.write(str(before + 2))
    try:
        assert free_hugepages() >= 1, "could not reserve a 2 MiB hugepage"
        m = DmaMemory(1, vfio=None)
        try:
            assert int(m.pages[0]) % (2 << 20) == 0
            assert m.addr(4096) == int(m.pages[0]) + 4096
        finally:
            m.close()
    finally:
        with open(nr, "w") as f:
            f.write(str(before))


def test_bursts_do_no_floating_point(tmp_path):
    """Numba compares or adds a uint64 and an int64 through float64 (numba-hot-path §4):
    slow, and inexact above 2**53. The compiled bursts must hold no float conversion at
    all (the pool-address check once compared ctypes.data, unsigned, with an int64).
    Compiled fresh in a subprocess: a kernel loaded from the cache has no LLVM IR."""
    setup = "from tickwire.drivers.pci import e1000e, virtio\nfrom tickwire.drivers.pci.warm import warm\nwarm()\n"
    found = float_uses_after_fresh_compile(tmp_path, setup, "e1000e.e1000e_rx_burst, e1000e.e1000e_tx_burst, "
                                           "virtio.virtio_rx_burst, virtio.virtio_tx_burst", llvm=True)
    assert len(found) == 4, found
    assert {k: v for k, v in found.items() if v} == {}


def test_a_failed_dma_mapping_keeps_no_memory_and_no_fd():
    from tickwire.drivers.pci.dma import DmaMemory

    class RefusingVfio:
        def map_dma(self, va, iova, size):
            raise OSError("VFIO_IOMMU_MAP_DMA: refused (test)")

        def unmap_dma_all(self):
            raise AssertionError("nothing was mapped")

    before = len(os.listdir("/proc/self/fd"))
    for _ in range(5):
        with pytest.raises(OSError, match="refused"):
            DmaMemory(1, vfio=RefusingVfio())
    assert len(os.listdir("/proc/self/fd")) == before


def test_virtio_capability_windows_too_small_for_the_registers_are_refused(tmp_path):
    """A device whose common-config window ends before queue_device (0x38) would have the
    unchecked MMIO accessors run past the mapping: refused at open, naming the window."""
    import struct
    from tickwire.drivers.pci.config import ConfigSpace
    from tickwire.drivers.pci.virtio_transport import ModernTransport

    def config_space(common_len, device_len):
        cs = bytearray(256)
        cs[0x06] = 0x10                                    # status: capability list
        cs[0x34] = 0x40
        for i, (cfg_type, length) in enumerate(((1, common_len), (2, 0x1000), (4, device_len))):
            off = 0x40 + 0x14 * i
            nxt = off + 0x14 if i < 2 else 0
            cs[off:off + 20] = struct.pack("<BBBBB3xIII", 0x09, nxt, 20, cfg_type, 0, 0x1000 * i, length, 4)
        p = tmp_path / f"cfg{common_len}_{device_len}"
        p.write_bytes(bytes(cs))
        return os.open(p, os.O_RDONLY)

    class Bar:
        size = 0x4000

    class Access:
        def __init__(self, fd):
            self.config = ConfigSpace(fd)

        def map_bar(self, bar):
            return Bar()

    for common_len, device_len, what in ((16, 8, "common"), (0x38, 4, "device")):
        fd = config_space(common_len, device_len)
        try:
            with pytest.raises(OSError, match=f"{what} configuration window"):
                ModernTransport(Access(fd))
        finally:
            os.close(fd)
    fd = config_space(0x38, 8)
    try:
        ModernTransport(Access(fd))                         # just large enough
    finally:
        os.close(fd)


def _le16(buf, off, v):
    """The device's side of a virtqueue: little-endian fields (virtio 1.2 §2.4)."""
    buf[off:off + 2] = np.frombuffer(np.uint16(v).tobytes(), np.uint8)


def _virtio_rings(nq=8):
    """A virtio state over plain memory with ``nq`` RX buffers posted, as virtio_fill_rx
    leaves it: the test plays the device by writing the used rings."""
    from tickwire.drivers.counters import Counters
    from tickwire.drivers.pci import virtio as hw
    pool = Mempool(64)
    q = np.zeros(hw.Q_LEN, np.int64)
    q[hw.Q_N], q[hw.Q_HDR] = nq, 12
    q[hw.Q_RX_DESC], q[hw.Q_RX_AVAIL], q[hw.Q_RX_USED] = 0, 256, 512
    q[hw.Q_TX_DESC], q[hw.Q_TX_AVAIL], q[hw.Q_TX_USED] = 1024, 1280, 1536
    q[hw.Q_POOL_ADDR] = pool.arrays.data.ctypes.data
    st = hw.VirtioState(np.zeros(64, np.uint8), np.zeros(2048, np.uint8), np.zeros(1, np.uint64), q,
                        np.full(nq, -1, np.int32), np.full(nq, -1, np.int32), Counters(hw.EXTRA_COUNTERS).array)
    q[hw.Q_NOTIFY_PIO] = 0
    q[hw.Q_RX_NOTIFY] = q[hw.Q_TX_NOTIFY] = 0
    hw.virtio_fill_rx(st, pool.arrays, pool.alloc_burst(nq))
    return hw, st, pool


def test_virtio_used_index_past_what_was_made_available_breaks_the_port_and_touches_nothing():
    """A device whose used.idx runs past the buffers we supplied would make us hand out RX
    buffers it never wrote (and free TX buffers it may still read): nothing is handed out,
    nothing freed, the queue is left alone, counted, and poll() says why."""
    from tickwire.drivers.port import rx_burst, tx_burst
    from tickwire.drivers.pci.virtio_port import VirtioPort
    hw, st, pool = _virtio_rings()
    bad = hw.EXTRA_COUNTERS.index("bad_used_idx") + 8
    # a legitimate completion first: slot 3 written with a 60-byte frame
    _le16(st.dma, 512 + 4, 3)
    _le16(st.dma, 512 + 8, 12 + 60)
    _le16(st.dma, 512 + 2, 1)
    out = np.empty(8, np.int32)
    assert rx_burst(st, pool.arrays, out, 8) == 1
    assert st.counters[bad] == 0
    in_flight = pool.in_flight
    # then 9 more used entries than the 8 that are posted: the whole ring is stale
    _le16(st.dma, 512 + 2, 1 + 9)
    assert rx_burst(st, pool.arrays, out, 8) == 0
    assert st.counters[bad] == 1 and st.q[hw.Q_BROKEN] == 1
    assert pool.in_flight == in_flight and st.q[hw.Q_RX_LAST_USED] == 1
    # the port stays stopped: TX takes nothing, the caller keeps its buffer
    b = pool.alloc_burst(1)
    pool.arrays.data_len[b[0]] = 60
    assert tx_burst(st, pool.arrays, b, 1) == 0 and pool.in_flight == in_flight + 1
    port = VirtioPort.__new__(VirtioPort)
    port._closed, port.state = False, st
    port.dev = type("Dev", (), {"bdf": "0000:00:04.0"})()
    with pytest.raises(OSError, match="more used buffers than were made available"):
        port.poll()
    port._closed = True


def test_virtio_tx_used_index_past_the_available_index_frees_nothing():
    from tickwire.drivers.port import tx_burst
    hw, st, pool = _virtio_rings()
    bad = hw.EXTRA_COUNTERS.index("bad_used_idx") + 8
    b = pool.alloc_burst(2)
    pool.arrays.data_len[b] = 60
    assert tx_burst(st, pool.arrays, b, 2) == 2          # two descriptors made available
    in_flight = pool.in_flight
    _le16(st.dma, 1536 + 2, 3)                           # the device claims three back
    more = pool.alloc_burst(1)
    pool.arrays.data_len[more] = 60
    assert tx_burst(st, pool.arrays, more, 1) == 0
    assert st.counters[bad] == 1 and pool.in_flight == in_flight + 1
    assert (st.tx_bufs[:2] == b).all()                  # still the device's: not freed

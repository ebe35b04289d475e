"""Shared regions: memfd, 2 MiB hugepages when reserved (the test reserves and
restores them), locking, virtual->physical translation, and memif over hugepages."""

from __future__ import annotations

import logging
import os

import numpy as np
import pytest

from tickwire.mem.pagemap import virt_to_phys
from tickwire.mem.shm import HUGEPAGE_2M, SharedRegion, free_hugepages

from conftest import require, require_root

NR = "/proc/sys/vm/nr_hugepages"


@pytest.fixture
def hugepages():
    require_root()
    require(os.path.exists(NR), "hugetlb support in the kernel")
    with open(NR) as f:
        before = int(f.read())
    with open(NR, "w") as f:
        f.write(str(before + 8))
    require(free_hugepages() >= 8, "8 free 2 MiB hugepages after reserving them")
    yield
    with open(NR, "w") as f:
        f.write(str(before))


def test_plain_region_is_shared_and_locked():
    with SharedRegion.create(10000, hugepages="off") as r:
        assert not r.hugepages and r.size == 10000
        r.buf[:5] = [1, 2, 3, 4, 5]
        with SharedRegion.attach(os.dup(r.fd), 10000) as peer:   # another mapping of the same file
            assert bytes(peer.buf[:5]) == b"\x01\x02\x03\x04\x05"


def test_attach_refuses_a_size_beyond_the_file():
    with SharedRegion.create(4096, hugepages="off") as r:
        with pytest.raises(ValueError, match="exceeds the file size"):
            SharedRegion.attach(r.fd, 8192)


def test_auto_without_free_hugepages_says_so_in_one_line(caplog, monkeypatch):
    import tickwire.mem.shm as shm
    monkeypatch.setattr(shm, "free_hugepages", lambda: 0)
    with caplog.at_level(logging.WARNING, logger="tickwire.mem"):
        with SharedRegion.create(3 * HUGEPAGE_2M, hugepages="auto") as r:
            assert not r.hugepages
    lines = [rec.getMessage() for rec in caplog.records]
    assert len(lines) == 1 and "no 3 free 2 MiB hugepages" in lines[0] and "nr_hugepages" in lines[0]


def test_hugepage_region_is_physically_contiguous_per_page(hugepages):
    with SharedRegion.create(HUGEPAGE_2M + 1, hugepages="on") as r:
        assert r.hugepages and r.size == 2 * HUGEPAGE_2M and r.locked
        base = r.address
        assert base % HUGEPAGE_2M == 0
        p0 = virt_to_phys(base)
        assert p0 % HUGEPAGE_2M == 0
        assert virt_to_phys(base + 4096 * 17 + 5) == p0 + 4096 * 17 + 5   # one 2 MiB page: contiguous


def test_pagemap_on_ordinary_memory():
    require_root()
    a = np.ones(4096 * 2, np.uint8)
    addr = a.ctypes.data
    assert virt_to_phys(addr) & 0xFFF == addr & 0xFFF


def test_memif_client_region_on_hugepages(hugepages, tmp_path):
    from tickwire.drivers.port import open_port
    from tickwire.mem.mempool import Mempool
    sock = str(tmp_path / "h.sock")
    ps, pc = Mempool(64, 2048, 128), Mempool(64, 2048, 128)
    with open_port(f"memif:socket={sock},role=server", ps) as srv, \
         open_port(f"memif:socket={sock},role=client,hugepages=on", pc) as cli:
        import time
        deadline = time.monotonic() + 5
        while not (srv.link_up and cli.link_up) and time.monotonic() < deadline:
            srv.poll()
            cli.poll()
        assert srv.link_up and cli.link_up
        assert cli.tx_burst(pc.alloc_frames([b"h" * 100])) == 1
        out = np.empty(4, np.int32)
        assert srv.rx_burst(out) == 1 and ps.read(int(out[0])) == b"h" * 100
        ps.free_burst(out[:1])

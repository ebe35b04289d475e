"""Bad input to xdp: -- each error names the cause and the fix, and nothing stays attached."""

import os
import shutil
import subprocess
import sys

import pytest

from conftest import require
from tickwire.drivers import xdp
from tickwire.drivers.port import open_port
from tickwire.drivers.spec import SpecError

from .netns import inside
from .peers import xdp_holder


def _open(veth, tail, pool=None):
    with inside(veth.ns_a):
        return open_port(f"xdp:dev={veth.dev_a},{tail}", pool)


@pytest.mark.peer
def test_interface_missing(veth):
    with inside(veth.ns_a), pytest.raises(xdp.XdpSetupError) as e:
        open_port("xdp:dev=twnosuch0,ports=1")
    msg = str(e.value)
    assert "twnosuch0" in msg and "not found" in msg and "ip link" in msg


@pytest.mark.peer
def test_queue_missing(veth):
    with pytest.raises(xdp.XdpSetupError, match=r"has 1 RX queue.*queue=0\.\.0"):
        _open(veth, "queue=3,ports=1")
    assert not veth.xdp_attached()


@pytest.mark.parametrize("key", ["rx", "tx", "fill", "comp"])
def test_ring_size_not_power_of_two(key):
    with pytest.raises(SpecError) as e:
        open_port(f"xdp:dev=lo,{key}=1000")
    assert "power of two" in str(e.value) and f"{key}=512 or {key}=1024" in str(e.value)


@pytest.mark.peer
def test_umem_too_small(veth):
    pool = xdp.make_pool(n_bufs=1024)
    with pytest.raises(xdp.XdpSetupError) as e:
        _open(veth, "fill=2048,ports=1", pool)
    msg = str(e.value)
    assert "UMEM too small" in msg and "1024" in msg and "make_pool" in msg
    assert not veth.xdp_attached()
    assert pool.check() == 0


@pytest.mark.peer
def test_program_already_attached_by_another_process(veth2q):
    v = veth2q
    with xdp_holder(v, f"xdp:dev={v.dev_a},queue=0,ports=1"):
        pool = xdp.make_pool(4096)
        with pytest.raises(xdp.XdpSetupError) as e:
            _open(v, "queue=1,ports=1", pool)
        msg = str(e.value)
        assert "already has an XDP program" in msg and f"ip link set dev {v.dev_a} xdp off" in msg
        assert pool.check() == 0, "the failed port gave its buffers back"
        assert v.xdp_attached(), "the other process's program is untouched"


@pytest.mark.peer
def test_queue_bound_by_a_live_socket_of_another_process(veth):
    """A queue whose AF_XDP socket is alive elsewhere stays busy: after bind_wait
    seconds the error says so, and nothing of ours stays attached."""
    v = veth
    with xdp_holder(v, f"xdp:dev={v.dev_a},queue=0,ports=1,mode=generic"):
        pool = xdp.make_pool(4096)
        with pytest.raises(xdp.XdpSetupError) as e:
            _open(v, "queue=0,ports=1,mode=native,bind_wait=1", pool)
        msg = str(e.value)
        assert f"queue 0 of {v.dev_a} is still bound to another AF_XDP socket after waiting 1 s" in msg
        assert "another process holds it" in msg and "queue=" in msg
        assert pool.check() == 0
        assert "xdpgeneric" in v.a("ip", "-d", "link", "show", "dev", v.dev_a), "the holder's program is untouched"


@pytest.mark.peer
def test_second_port_with_a_different_filter_on_the_same_device(veth2q):
    v = veth2q
    first = _open(v, "queue=0,ports=1")
    try:
        with pytest.raises(xdp.XdpSetupError, match="one XDP program, so open all its queues with the same"):
            _open(v, "queue=1,ports=2")
        with pytest.raises(xdp.XdpSetupError, match="attached in native mode.*mode=native or mode=auto"):
            _open(v, "queue=1,ports=1,mode=generic")
        assert v.xdp_attached()
    finally:
        first.close()
    assert not v.xdp_attached()


@pytest.mark.peer
def test_same_queue_twice(veth):
    first = _open(veth, "ports=1")
    try:
        with pytest.raises(xdp.XdpSetupError, match="queue 0 of .* already open in this process"):
            _open(veth, "ports=1")
    finally:
        first.close()
    assert not veth.xdp_attached()


@pytest.mark.peer
def test_zerocopy_on_veth_refused_with_fix(veth):
    with pytest.raises(xdp.XdpSetupError, match="does not support AF_XDP zero-copy.*zerocopy=auto"):
        _open(veth, "zerocopy=on,ports=1")
    assert not veth.xdp_attached()


_TRY_OPEN = r"""
import sys
from tickwire.drivers.port import open_port
try:
    open_port(sys.argv[1])
except OSError as e:
    print(e)
    sys.exit(3)
print("opened")
"""


@pytest.mark.peer
def test_no_privileges(veth):
    capsh = shutil.which("capsh")
    require(capsh is not None, "program 'capsh' (libcap2-bin)")
    drop = "cap_bpf,cap_net_admin,cap_sys_admin,cap_net_raw,cap_perfmon"
    r = subprocess.run(["ip", "netns", "exec", veth.ns_a, capsh, f"--drop={drop}", "--",
                        "-c", f"exec {sys.executable} -c '{_TRY_OPEN}' xdp:dev={veth.dev_a},ports=1"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 3, (r.stdout, r.stderr)
    assert "CAP_BPF" in r.stdout and "setcap" in r.stdout, r.stdout
    assert not veth.xdp_attached()


@pytest.mark.peer
def test_netlink_attached_program_blocks_us_with_the_fix_in_the_message(veth):
    # A program attached the legacy way (netlink, like `ip link set xdp` or libxdp's
    # fallback) survives its owner; ours must refuse politely and attach nothing.
    from .netlink_xdp import attach_xdp_netlink
    from tickwire.drivers.xdp import bpf
    from tickwire.drivers.xdp.program import build_filter
    m = bpf.map_create_xskmap(1)
    p = bpf.prog_load_xdp(build_filter(m, udp_ports=[1]))
    try:
        with inside(veth.ns_a):
            attach_xdp_netlink(veth.dev_a, p, bpf.XDP_FLAGS_SKB_MODE)
        assert veth.xdp_attached()
        with pytest.raises(xdp.XdpSetupError, match="already has an XDP program"):
            _open(veth, "ports=2,mode=generic")
    finally:
        os.close(p)
        os.close(m)
    veth.a("ip", "link", "set", "dev", veth.dev_a, "xdpgeneric", "off")
    assert not veth.xdp_attached()

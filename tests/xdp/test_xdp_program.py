"""The hand-assembled filter, run by the kernel's verifier and BPF_PROG_TEST_RUN on
frames built by scapy (an independent encoder). Built with miss_action=XDP_TX so that
"redirect" (3, the XSKMAP slot is empty) and "pass" (2) can be told apart."""

import os

import pytest
from scapy.all import ARP, ICMP, IP, TCP, UDP, Dot1Q, Ether, raw

from conftest import require
from tickwire.drivers.xdp import bpf
from tickwire.drivers.xdp.asm import Asm
from tickwire.drivers.xdp.program import build_filter

REDIRECT, PASS = bpf.XDP_TX, bpf.XDP_PASS
E = Ether(dst="02:00:00:00:00:01", src="02:00:00:00:00:02")
PAY = b"x" * 20


@pytest.fixture
def run():
    require(os.geteuid() == 0, "root privileges (bpf)")
    fds = []

    def load(**kw):
        m = bpf.map_create_xskmap(1)
        p = bpf.prog_load_xdp(build_filter(m, miss_action=bpf.XDP_TX, **kw))
        fds.extend((m, p))
        return lambda frame: bpf.prog_test_run(p, raw(frame))[0]

    yield load
    for fd in fds:
        os.close(fd)


CASES = [
    (E / IP(dst="10.9.0.1") / UDP(dport=14310) / PAY, REDIRECT, "our UDP port"),
    (E / IP(dst="10.9.0.7") / UDP(dport=14311) / PAY, REDIRECT, "second UDP port, any address"),
    (E / IP(dst="10.9.0.5") / UDP(dport=53) / PAY, PASS, "other UDP port"),
    (E / IP(dst="239.1.1.1") / UDP(dport=5000) / PAY, REDIRECT, "multicast group"),
    (E / IP(dst="239.1.1.200") / UDP(dport=5000) / PAY, REDIRECT, "group with top bit set (JMP32 compare)"),
    (E / IP(dst="239.1.1.2") / UDP(dport=5000) / PAY, PASS, "other group"),
    (E / ARP(pdst="10.9.0.1"), REDIRECT, "ARP for our address"),
    (E / ARP(pdst="10.9.0.2"), PASS, "ARP for someone else"),
    (E / IP(dst="10.9.0.1") / ICMP() / PAY, REDIRECT, "ping to us"),
    (E / IP(dst="10.9.0.2") / ICMP() / PAY, PASS, "ping to someone else"),
    (E / IP(dst="10.9.0.1") / TCP(dport=80), REDIRECT, "TCP to us"),
    (E / IP(dst="224.0.0.1", proto=2) / (b"\x11\x64\xee\x9b" + b"\0" * 4), REDIRECT, "IGMP query"),
    (E / IP(dst="10.9.0.2") / TCP(dport=80), PASS, "TCP to someone else"),
    (E / IP(dst="10.9.0.1", options=b"\x01\x01\x01\x01") / UDP(dport=14310) / PAY, PASS, "IP options"),
    (E / IP(dst="10.9.0.1", flags="MF") / UDP(dport=14310) / PAY, PASS, "first fragment"),
    (E / IP(dst="10.9.0.1", frag=100) / UDP(dport=14310) / PAY, PASS, "later fragment"),
    (E / Dot1Q(vlan=5) / IP(dst="10.9.0.1") / UDP(dport=14310) / PAY, PASS, "VLAN tagged"),
    (Ether(dst="02:00:00:00:00:01", type=0x86DD) / (b"\0" * 60), PASS, "IPv6"),
]


@pytest.mark.parametrize("frame,want,why", CASES, ids=[c[2] for c in CASES])
def test_filter_decisions(run, frame, want, why):
    prog = run(udp_ports=[14310, 14311], groups=["239.1.1.1", "239.1.1.200"], ip="10.9.0.1")
    assert prog(frame) == want, why


def test_short_frames_pass_and_never_read_past_the_end(run):
    prog = run(udp_ports=[14310], ip="10.9.0.1")
    full = raw(E / IP(dst="10.9.0.1") / UDP(dport=14310) / PAY)
    for n in range(14, 42):                 # the verifier proved the bounds; the kernel agrees at run time
        assert prog(full[:n]) == PASS
    arp = raw(E / ARP(pdst="10.9.0.1"))
    assert prog(arp[:41]) == PASS and prog(arp) == REDIRECT


def test_empty_config_redirects_everything(run):
    prog = run()
    assert prog(E / IP(dst="1.2.3.4") / UDP(dport=9) / PAY) == REDIRECT
    assert prog(E / ARP(pdst="1.2.3.4")) == REDIRECT


def test_bad_filter_arguments_rejected():
    with pytest.raises(ValueError, match="out of range"):
        build_filter(0, udp_ports=[70000])
    with pytest.raises(ValueError, match="not an IPv4 multicast"):
        build_filter(0, groups=["10.0.0.1"])


def test_verifier_text_reaches_the_error():
    require(os.geteuid() == 0, "root privileges (bpf)")
    a = Asm()
    a.ldx(4, 2, 1, 0)          # r2 = data, then read it without a bounds check: the verifier must refuse
    a.ldx(1, 0, 2, 0)
    a.exit()
    with pytest.raises(bpf.BpfError) as e:
        bpf.prog_load_xdp(a.assemble())
    assert "invalid access to packet" in str(e.value) or "R2" in str(e.value)

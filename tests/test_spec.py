import pytest

from tickwire.drivers.port import open_port
from tickwire.drivers.spec import SpecError, parse_spec


def test_parse():
    assert parse_spec("memif:socket=/run/x.sock,role=server,id=3") == (
        "memif", {"socket": "/run/x.sock", "role": "server", "id": "3"})
    assert parse_spec("pci:0000:00:04.0,driver=e1000e") == ("pci", {"": "0000:00:04.0", "driver": "e1000e"})


@pytest.mark.parametrize("spec, message", [
    ("memif", "expected SCHEME"),
    ("Memif:x=1", "expected SCHEME"),
    ("memif:id=1,id=2", "given twice"),
    ("nosuch:x=1", "no driver named 'nosuch'"),
    # modules of tickwire.drivers that are not drivers (review s9 item 11a)
    ("counters:x=1", "no driver named 'counters'"),
    ("spec:x=1", "no driver named 'spec'"),
    ("macswap:x=1", "no driver named 'macswap'"),
    ("memif:role=boss", "expected one of client, server"),
    ("memif:id=abc", "not a valid integer"),
    ("memif:rsize=20", "out of range"),
    ("memif:sockte=/x", "unknown argument(s) sockte"),
    # a 6.4 GB region: memif descriptor offsets are u32 (review s9 item 6)
    ("memif:socket=/nonexistent/x.sock,queues=3,rsize=14,bsize=65535", "descriptor offsets are 32-bit"),
])
def test_bad_specs_name_the_problem(spec, message):
    with pytest.raises(SpecError, match=message.replace("(", r"\(").replace(")", r"\)")):
        open_port(spec)


def test_largest_region_under_4_gib_is_accepted():
    from tickwire.drivers.memif.port import MemifConfig
    from tickwire.drivers.spec import SpecArgs
    cfg = MemifConfig(SpecArgs("memif", {"queues": "1", "rsize": "14", "bsize": "65535"}))
    assert cfg.region_bytes() <= 2**32

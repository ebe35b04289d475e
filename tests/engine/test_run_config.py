"""`tickwire run --config`: a bad value or an unknown key in the file is one clear error
naming where it is, before anything is built or compiled."""

import pytest

from tickwire.cli.run import load_config

GOOD = """
duration = 5
[transport]
port = "socket"
[engine]
secids = [1001, 1002]
stamps = 1024
[risk]
order_rate = 100
[[risk.instruments]]
max_qty = 10
tick = 250000000
"""


def _load(tmp_path, text):
    p = tmp_path / "run.toml"
    p.write_text(text)
    return load_config(str(p))


def test_a_good_file_loads(tmp_path):
    duration, tc, ec = _load(tmp_path, GOOD)
    assert duration == 5 and tc.port == "socket" and ec.secids == [1001, 1002] and ec.stamps == 1024


@pytest.mark.parametrize("edit,message", [
    (("stamps = 1024", "stamps = 0"), "engine.stamps"),
    (("stamps = 1024", "keepalive_ms = -1"), "engine.keepalive_ms"),
    (("secids = [1001, 1002]", "secids = [1001, 1001]"), "engine.secids"),
    (("stamps = 1024", "stampz = 1"), "unknown keys ['stampz']"),
    (('port = "socket"', 'port = "socket"\nudp_ports = [1, 2]'), "three each"),
    (('port = "socket"', 'port = "socket"\noe_port = 70000'), "ports must be 1-65535"),
    (('port = "socket"', 'port = "socket"\nvenue_ip = "10.77.0.300"'), "10.77.0.300"),
    (('port = "socket"', 'port = "socket"\ngroups = [1, 2, 3]'), "written as strings"),
    (('port = "socket"', 'port = "memif:socket=/tmp/x.sock"\ngroups = ["10.1.1.1", "239.1.1.2", "239.1.1.3"]'),
     "multicast groups"),
    (("order_rate = 100", "order_rat = 100"), "[risk]"),
    (("duration = 5", "duration = -1"), "duration"),
])
def test_bad_values_are_one_clear_error(tmp_path, edit, message):
    with pytest.raises(ValueError) as e:
        _load(tmp_path, GOOD.replace(*edit))
    assert message in str(e.value)

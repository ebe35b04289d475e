"""Numbers on the port tools' command lines are checked before anything opens: a burst
of 0 made send/capture spin forever, a negative count or rate meant nothing."""

import pytest

from tickwire.cli import build_parser


@pytest.mark.parametrize("argv", [
    ["send", "--port", "pcap:out=/dev/null", "--pcap", "x.pcap", "--burst", "0"],
    ["send", "--port", "pcap:out=/dev/null", "--pcap", "x.pcap", "--loop", "0"],
    ["send", "--port", "pcap:out=/dev/null", "--pcap", "x.pcap", "--rate", "-5"],
    ["send", "--port", "pcap:out=/dev/null", "--pcap", "x.pcap", "--rate", "nan"],
    ["capture", "--port", "pcap:in=x.pcap", "--out", "y.pcap", "--count", "-1"],
    ["capture", "--port", "pcap:in=x.pcap", "--out", "y.pcap", "--burst", "zero"],
    ["echo", "--port", "pcap:in=x.pcap", "--duration", "inf"],
    ["echo", "--port", "pcap:in=x.pcap", "--pool", "0"],
    ["demo", "--rate", "0"],
    ["demo", "--duration", "-1"],
    ["demo", "--cpu", "4096"],
    ["demo", "--impair-a", "1,2"],
    ["sim", "--impair-b", "1,2,x"],
    ["bench", "feed", "--repeat", "0"],
    ["bench", "tick-to-trade", "--duration", "0"],
    ["bench", "tick-to-trade", "--cpu", "-2"],
    ["bench", "udp-echo", "--count", "0"],
    ["bench", "wire", "--frames", "-1"],
    ["bench", "memif", "--seconds", "0"],
    ["bench", "memif", "--samples", "0"],
])
def test_bad_numbers_are_refused_with_the_option_named(argv, capsys):
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args(argv)
    assert e.value.code == 2
    assert f"argument {argv[-2]}" in capsys.readouterr().err


def test_good_numbers_pass():
    a = build_parser().parse_args(["send", "--port", "pcap:out=/dev/null", "--pcap", "x.pcap", "--burst", "1",
                                   "--loop", "3", "--rate", "1e6"])
    assert (a.burst, a.loop, a.rate) == (1, 3, 1e6)


def test_good_demo_options_pass():
    a = build_parser().parse_args(["demo", "--rate", "500", "--duration", "2", "--impair-a", "1000,0,5"])
    assert (a.rate, a.duration, a.impair_a) == (500.0, 2.0, "1000,0,5")


def test_tick_to_trade_cpu_minus_one_means_no_pinning():
    assert build_parser().parse_args(["bench", "tick-to-trade", "--cpu", "-1"]).cpu == -1

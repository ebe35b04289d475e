"""`tickwire run --config FILE.toml` against `tickwire sim` over kernel sockets: the engine
alone, configured from a file, trades with the venue."""

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

CONFIG = """
duration = 4
[transport]
port = "socket"
ip = "{ip}"
venue_ip = "{venue}"
groups = {groups}
oe_port = {oe}
udp_ports = [{a}, {b}, {s}]
[engine]
secids = [1001, 1002]
strategy = "market_maker"
[engine.strategy_params]
instr = 0
tick = 250000000
half_spread = 1
[risk]
order_rate = 2000
order_burst = 200
message_rate = 5000
message_burst = 500
[[risk.instruments]]
max_qty = 10
max_notional = 100000000000000
collar = 10000000000
position_limit = 20
tick = 250000000
"""


def _run_against_sim(tmp_path, ip, venue, groups, sim_ns=(), engine_ns=()):
    """`tickwire sim --port socket` and `tickwire run` (each optionally inside a network
    namespace): the engine, configured from a file, must establish the session, take the
    feeds and send orders that the venue acknowledges."""
    import random
    oe = random.randint(30000, 39000)
    a = random.randint(41000, 49000)
    cfg = tmp_path / "engine.toml"
    cfg.write_text(CONFIG.format(oe=oe, a=a, b=a + 1, s=a + 2, ip=ip, venue=venue, groups=json.dumps(groups)))
    sim = subprocess.Popen([*sim_ns, sys.executable, "-m", "tickwire.cli", "sim", "--port", "socket",
                            "--duration", "30", "--ip", venue, "--groups", ",".join(groups),
                            "--oe-port", str(oe), "--udp-ports", f"{a},{a + 1},{a + 2}", "--json"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "ready" in sim.stderr.readline()
        p = subprocess.run([*engine_ns, sys.executable, "-m", "tickwire.cli", "run", "--config", str(cfg), "--json"],
                           capture_output=True, text=True, timeout=1500)
        assert p.returncode == 0, p.stderr[-2000:]
        out = json.loads(p.stdout.strip().splitlines()[-1])
        assert out["session"]["state"] == "established", (out["session"], out["engine"], out["risk_rejects"])
        assert out["orders"]["sent_new"] > 0 and out["orders"]["bad_exec"] == 0
        assert out["feed"]["packets"] > 0
        assert out["feed"]["duplicates"] > 0        # every packet goes out on A and on B: both arrived
    finally:
        sim.kill()
        sim.wait()


def test_run_config_against_sim(tmp_path):
    _run_against_sim(tmp_path, "127.0.0.1", "127.0.0.1", ["127.0.0.1"] * 3)


def test_run_kernel_sockets_reach_a_venue_address_and_multicast_groups(tmp_path):
    """Socket mode against a venue in another network namespace: the order session goes to
    ``venue_ip`` and the feeds arrive as multicast, joined on the interface owning ``ip``
    (the venue listens on its veth address only, so loopback cannot stand in for it)."""
    from tickwire.bench._veth import VethPair
    with VethPair() as v:
        v.a("ip", "addr", "add", f"{v.A_IP}/24", "dev", v.dev_a)
        _run_against_sim(tmp_path, f"{v.A_IP}/24", v.B_IP, ["239.77.9.1", "239.77.9.2", "239.77.9.3"],
                         sim_ns=v.cmd(v.ns_b, []), engine_ns=v.cmd(v.ns_a, []))


def test_run_rejects_unknown_config_keys(tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[transprt]\nport = 'socket'\n")
    p = subprocess.run([sys.executable, "-m", "tickwire.cli", "run", "--config", str(cfg)], capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 2 and "unknown" in p.stderr

"""Two tickwire TCP endpoints over memif (shared memory): `tcp-echo` as the memif server,
`tcp-send` as the memif client, megabytes echoed back exactly."""

import json
import os
import subprocess
import sys
import tempfile

import pytest

pytestmark = pytest.mark.peer


def tw(*args):
    return subprocess.Popen([sys.executable, "-m", "tickwire.cli", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_two_tickwire_endpoints_over_memif():
    with tempfile.TemporaryDirectory() as d:
        sock = os.path.join(d, "tcp.sock")
        echo = tw("tcp-echo", "--port", f"memif:socket={sock},role=server", "--ip", "10.79.0.1",
                  "--listen", 9300, "--count", 1, "--json")
        try:
            line = echo.stderr.readline()
            assert "listening" in line, line + echo.stderr.read()
            send = tw("tcp-send", "--port", f"memif:socket={sock},role=client", "--ip", "10.79.0.2",
                      "--connect", "10.79.0.1:9300", "--random", 2_000_000, "--json")
            out, err = send.communicate(timeout=120)
            assert send.returncode == 0, err
            r = json.loads(out.splitlines()[-1])
            assert r["received"] == r["sent"] == 2_000_000
            assert r["received_sha256"] == r["sent_sha256"] and r["eof"]
            e = json.loads(echo.communicate(timeout=30)[0].splitlines()[-1])
            assert e["echoed_bytes"] == 2_000_000 and e["connections"] == 1
        finally:
            for p in (echo,):
                if p.poll() is None:
                    p.kill()
                    p.wait()

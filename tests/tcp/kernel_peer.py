"""The Linux kernel's TCP as the peer: run inside namespace B by the tests.

    kernel_peer.py serve PORT NBYTES SEED
    kernel_peer.py connect HOST PORT NBYTES SEED
    kernel_peer.py echo-client HOST PORT NBYTES SEED   (send, shut down writing, read the echo to EOF)
    kernel_peer.py echo-server PORT                     (echo one connection until EOF)

Sends NBYTES of seeded random data while reading everything the other side sends
until EOF, then closes and prints one JSON line: what it received (length and
SHA-256), whether it saw EOF, and any error (ECONNRESET is what an RST causes).
"""

import hashlib
import json
import random
import socket
import sys
import threading


def payload(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


def session(sock: socket.socket, nbytes: int, seed: int) -> dict:
    out = {"received": 0, "sha256": "", "eof": False, "error": "", "sent": 0}
    h = hashlib.sha256()
    data = payload(nbytes, seed)

    def sender():
        try:
            sock.sendall(data)
            out["sent"] = len(data)
        except OSError as e:
            out["send_error"] = type(e).__name__

    # with nothing to send there is no sender thread: a send() racing the reader would
    # consume the socket's pending error (ECONNRESET is reported once)
    t = threading.Thread(target=sender) if data else None
    if t:
        t.start()
    try:
        while True:
            chunk = sock.recv(1 << 16)
            if not chunk:
                out["eof"] = True
                break
            h.update(chunk)
            out["received"] += len(chunk)
    except ConnectionResetError:
        out["error"] = "ECONNRESET"
    except OSError as e:
        out["error"] = type(e).__name__
    if t:
        t.join(timeout=30)
    if out.get("send_error") == "ConnectionResetError" and not out["error"]:
        out["error"] = "ECONNRESET"          # the sender thread saw it first
    out["sha256"] = h.hexdigest()
    sock.close()
    return out


def echo_client(host, port, nbytes, seed):
    s = socket.create_connection((host, port), timeout=30)
    data = payload(nbytes, seed)
    out = {"sent": 0, "echo_ok": False, "eof": False, "error": ""}

    def sender():
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        out["sent"] = len(data)

    t = threading.Thread(target=sender)
    t.start()
    got = bytearray()
    try:
        while True:
            chunk = s.recv(1 << 16)
            if not chunk:
                out["eof"] = True
                break
            got += chunk
    except OSError as e:
        out["error"] = type(e).__name__
    t.join(30)
    out["received"] = len(got)
    out["echo_ok"] = bytes(got) == data
    print(json.dumps(out), flush=True)


def echo_server(port):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("0.0.0.0", port))
    ls.listen(1)
    print(json.dumps({"listening": port}), flush=True)
    s, _ = ls.accept()
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    n = 0
    while True:
        d = s.recv(1 << 16)
        if not d:
            break
        s.sendall(d)
        n += len(d)
    s.close()
    print(json.dumps({"echoed": n}), flush=True)


def main(argv):
    mode = argv[1]
    if mode == "echo-client":
        return echo_client(argv[2], int(argv[3]), int(argv[4]), int(argv[5]))
    if mode == "echo-server":
        return echo_server(int(argv[2]))
    if mode == "serve":
        port, nbytes, seed = int(argv[2]), int(argv[3]), int(argv[4])
        ls = socket.socket()
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("0.0.0.0", port))
        ls.listen(8)
        print(json.dumps({"listening": port}), flush=True)
        ls.settimeout(60)
        s, _ = ls.accept()
    else:
        host, port, nbytes, seed = argv[2], int(argv[3]), int(argv[4]), int(argv[5])
        s = socket.create_connection((host, port), timeout=30)
    s.settimeout(60)
    print(json.dumps(session(s, nbytes, seed)), flush=True)


if __name__ == "__main__":
    main(sys.argv)

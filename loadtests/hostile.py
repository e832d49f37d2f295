"""An honest client's feed latency while the hostile-network attacks run, against unloaded.

    python -m loadtests.hostile --data data/demo [--requests 1000]

Starts `python -m app` on the embedded data (API keys set, the default deadlines), then for
each attack: opens it, lets it settle, sends `--requests` feed requests one after another
from an honest client (keep-alive), and reports their p50 and p99 beside the unloaded ones
(measured before and after the attacks; the better of the two is the reference). The attacks
(docs/reliability.md):

- `slow-unauthenticated`: 300 connections send POST /v1/events headers without a key and one
  byte of a 1,000-byte body, then nothing;
- `slow-keyed`: the same 100 times with a valid key (each held to the body deadline);
- `big-headers`: another process sends 1 MB header lines, one connection after another;
- `idle-and-slowloris`: 500 connections that send nothing and 50 that send a header byte a
  second.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from loadtests.overload import embedded_service
from scripts.stats import percentile

KEY = "hostile-bench-key"


def _latencies(url: str, count: int) -> list[float]:
    out = []
    with httpx.Client(base_url=url, timeout=10) as client:
        for n in range(count):
            started = time.perf_counter()
            response = client.get(f"/v1/users/user-{n % 500 + 1}/recommendations")
            out.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.text
    return out


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def _slow_posts(url: str, count: int, key: str | None) -> Callable[[], list[socket.socket]]:
    def open_them() -> list[socket.socket]:
        authorization = f"Authorization: Bearer {key}\r\n" if key else ""
        request = (
            "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"{authorization}Content-Length: 1000\r\n\r\n{{"
        ).encode()
        sockets = []
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", _port(url)))
            sock.sendall(request)
            sockets.append(sock)
        return sockets

    return open_them


def _send_big_headers(port: int, stopped: Any) -> None:
    """1 MB header lines, one connection after another, until `stopped` is set."""
    line = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 1_000_000 + b"\r\n\r\n"
    while not stopped.is_set():
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(line)
            s.recv(1024)


def _attack(url: str, name: str, count: int) -> tuple[list[float], str]:
    stop = threading.Event()
    stopped = multiprocessing.Event()
    sockets: list[socket.socket] = []
    threads: list[threading.Thread] = []
    attacker: multiprocessing.Process | None = None

    def slowloris(group: list[socket.socket]) -> None:
        while not stop.is_set():
            for sock in group:
                with contextlib.suppress(OSError):
                    sock.send(b"a")
            stop.wait(1.0)

    if name == "slow-unauthenticated":
        sockets = _slow_posts(url, 300, None)()
    elif name == "slow-keyed":
        sockets = _slow_posts(url, 100, KEY)()
    elif name == "big-headers":  # a process of its own: the measuring client keeps its GIL
        attacker = multiprocessing.Process(
            target=_send_big_headers, args=(_port(url), stopped), daemon=True
        )
    elif name == "idle-and-slowloris":
        sockets = [socket.create_connection(("127.0.0.1", _port(url))) for _ in range(500)]
        slow = [socket.create_connection(("127.0.0.1", _port(url))) for _ in range(50)]
        for sock in slow:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        sockets += slow
        threads = [threading.Thread(target=slowloris, args=(slow,), daemon=True)]
    for thread in threads:
        thread.start()
    if attacker is not None:
        attacker.start()
    time.sleep(0.5)
    try:
        return _latencies(url, count), name
    finally:
        stop.set()
        stopped.set()
        if attacker is not None:
            attacker.join(timeout=10)
        for sock in sockets:
            sock.close()
        for thread in threads:
            thread.join(timeout=10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("data/demo"))
    parser.add_argument("--requests", type=int, default=1000)
    args = parser.parse_args(argv)
    with embedded_service(args.data, [f"RECS_API_KEYS={KEY}"]) as (url, _):
        _latencies(url, 200)  # warm: every user's first read
        before = _latencies(url, args.requests)
        runs = [
            _attack(url, name, args.requests)
            for name in ("slow-unauthenticated", "slow-keyed", "big-headers", "idle-and-slowloris")
        ]
        after = _latencies(url, args.requests)

    reference = min(percentile(before, 99), percentile(after, 99))
    print(f"{'run':<22} {'p50 ms':>8} {'p99 ms':>8} {'p99 / unloaded':>15}")
    for values, name in [(before, "unloaded (before)"), *runs, (after, "unloaded (after)")]:
        p50, p99 = percentile(values, 50), percentile(values, 99)
        print(f"{name:<22} {p50:8.2f} {p99:8.2f} {p99 / reference:15.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

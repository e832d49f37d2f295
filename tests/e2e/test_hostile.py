"""A hostile network, against `python -m app` (embedded data, API keys set): cheap attacks
must not take capacity from honest clients, and each is answered or cut off in bounded time.

The server's deadlines are shortened here (2 s) so the tests wait little; the defaults are
10 s (docs/reliability.md). Waits poll for the condition with generous bounds.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from app.offline.demo import generate_demo
from tests.support import ServiceProcess, wait_for

pytestmark = pytest.mark.e2e

KEY = "hostile-test-key"
DEADLINE_S = 2.0


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    root: Path = tmp_path_factory.mktemp("hostile")
    generate_demo(root / "demo", items=500, users=100, seed=3)
    process = ServiceProcess(
        env={
            "RECS_BACKEND": "embedded",
            "RECS_EMBEDDED_DATA_DIR": str(root / "demo"),
            "RECS_API_KEYS": KEY,
            "RECS_HEADER_TIMEOUT_S": str(DEADLINE_S),
            "RECS_BODY_TIMEOUT_S": str(DEADLINE_S),
            "RECS_KEEP_ALIVE_TIMEOUT_S": str(DEADLINE_S),
            "RECS_LOG_LEVEL": "error",
        },
        log=root / "service.log",
    )
    process.start()
    yield process
    process.stop()


def connect(service: ServiceProcess) -> socket.socket:
    return socket.create_connection(("127.0.0.1", service.port), timeout=10)


def answer(sock: socket.socket) -> tuple[int, dict[str, object]]:
    """Status and JSON body of one response read off a raw socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return int(head.split(b" ")[1]), orjson.loads(body)


def closed_by_server(sock: socket.socket) -> bool:
    sock.settimeout(0.05)
    try:
        return sock.recv(65536) == b""
    except TimeoutError:
        return False
    except OSError:
        return True


def honest_answers(service: ServiceProcess) -> tuple[int, int]:
    """An honest client's feed and event write, with a fresh connection each."""
    with httpx.Client(base_url=service.url, timeout=10) as client:
        read = client.get("/v1/users/user-1/recommendations", params={"limit": 5})
        write = client.post(
            "/v1/events",
            headers={"Authorization": f"Bearer {KEY}"},
            json={"events": [{"event_id": f"e-{time.time_ns()}", "user_id": "u", "item_id":
                              "item-1", "event_type": "view", "ts_ms": time.time_ns() // 10**6}]},
        )  # fmt: skip
    return read.status_code, write.status_code


def slow_posts(service: ServiceProcess, count: int, key: str | None) -> list[socket.socket]:
    """Connections that send an events request's headers and 1 byte of a 1,000-byte body."""
    authorization = f"Authorization: Bearer {key}\r\n" if key else ""
    request = (
        "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"{authorization}Content-Length: 1000\r\n\r\n{{"
    ).encode()
    sockets = []
    for _ in range(count):
        sock = connect(service)
        sock.sendall(request)
        sockets.append(sock)
    return sockets


def test_unauthenticated_slow_bodies_are_refused_at_once_and_take_no_slot(
    service: ServiceProcess,
) -> None:
    sockets = slow_posts(service, 300, key=None)  # more than RECS_MAX_IN_FLIGHT (256)
    try:
        status, body = answer(sockets[0])
        assert status == 401 and body["error"]["code"] == "unauthorized"  # type: ignore[index]
        assert honest_answers(service) == (200, 200)
    finally:
        for sock in sockets:
            sock.close()


def test_keyed_slow_bodies_are_cut_at_their_deadline_and_never_starve_reads(
    service: ServiceProcess,
) -> None:
    sockets = slow_posts(service, 100, key=KEY)  # more than RECS_MAX_IN_FLIGHT_WRITES (64)
    try:
        read, _ = honest_answers(service)
        assert read == 200
        status, body = answer(sockets[0])  # waits for the body deadline
        assert status == 408 and body["error"]["code"] == "request_timeout"  # type: ignore[index]
        wait_for(lambda: honest_answers(service) == (200, 200), timeout_s=30)
    finally:
        for sock in sockets:
            sock.close()


def test_oversized_headers_are_a_431_and_the_service_stays_responsive(
    service: ServiceProcess,
) -> None:
    for request in (
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 1_000_000 + b"\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-Many: 1\r\n" * 20_000 + b"\r\n",
        b"GET /" + b"p" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    ):
        with connect(service) as sock:
            # The server may answer and close before the rest is sent.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                sock.sendall(request)
            status, body = answer(sock)
            assert status == 431, request[:40]
            assert body["error"]["code"] == "headers_too_large"  # type: ignore[index]
    with httpx.Client(base_url=service.url, timeout=10) as client:
        assert client.get("/healthz").status_code == 200


def test_a_large_body_arriving_with_its_headers_is_not_counted_as_headers(
    service: ServiceProcess,
) -> None:
    """The header bound counts the request line and headers only, though one read may hold
    them and a body far larger than the bound."""
    now = time.time_ns() // 10**6
    events = [
        {"event_id": f"big-{n}-{now}-{'x' * 36}", "user_id": "u", "item_id": f"item-{n % 50 + 1}",
         "event_type": "view", "ts_ms": now}
        for n in range(400)
    ]  # fmt: skip
    body = json.dumps({"events": events}).encode()
    assert len(body) > 32_768  # RECS_MAX_HEADER_BYTES
    request = (
        b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"Authorization: Bearer {KEY}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    with connect(service) as sock:
        sock.sendall(request)
        status, answer_body = answer(sock)
    assert status == 200, answer_body
    assert len(answer_body["accepted"]) == 400  # type: ignore[arg-type]


def test_a_request_the_parser_refuses_gets_a_json_400(service: ServiceProcess) -> None:
    with connect(service) as sock:
        sock.sendall(b"G(T / HTTP/1.1\r\nHost: x\r\n\r\n")
        status, body = answer(sock)
    assert status == 400
    assert body["error"]["code"] == "invalid_request"  # type: ignore[index]


def test_idle_and_slowloris_connections_are_closed_at_the_header_deadline(
    service: ServiceProcess,
) -> None:
    idle = [connect(service) for _ in range(200)]
    slow = [connect(service) for _ in range(20)]
    started = time.monotonic()
    header = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 1000
    try:
        sent = 0
        while time.monotonic() - started < 20 and not all(map(closed_by_server, idle)):
            for sock in slow:  # one byte per connection per round, about 4 a second
                with contextlib.suppress(OSError):
                    sock.send(header[sent : sent + 1])
            sent += 1
            time.sleep(0.25)
        wait_for(lambda: all(map(closed_by_server, idle + slow)), timeout_s=20)
        assert time.monotonic() - started >= DEADLINE_S * 0.9  # not before the deadline
        assert honest_answers(service) == (200, 200)
    finally:
        for sock in idle + slow:
            sock.close()


def test_a_keep_alive_connection_idle_past_its_timeout_is_closed(service: ServiceProcess) -> None:
    with connect(service) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert answer(sock)[0] == 200
        wait_for(lambda: closed_by_server(sock), timeout_s=20)

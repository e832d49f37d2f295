"""app.server: admission at arrival, on the real protocol class over a fake transport."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import uvicorn
from uvicorn.server import ServerState

from app.api.admission import QueueDelayGuard
from app.server import ArrivalAdmission, ConnectionLimits, guarded_protocol


class Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written = b""
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += bytes(data)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 8000) if name in ("sockname", "peername") else default

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


class App:
    """Answers 200 and records what the protocol put in each request's state."""

    def __init__(self) -> None:
        self.states: list[dict[str, Any]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.states.append(dict(scope["state"]))
        headers = [(b"content-length", b"2")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"{}"})


def overloaded(waiting: int) -> QueueDelayGuard:
    """A guard in an overload: each request waiting ahead costs the loop 1 ms."""
    guard = QueueDelayGuard(target_s=0.01, interval_s=0.1, max_wait_s=0.25)
    guard.overloaded, guard.cost_s, guard.waiting = True, 0.001, waiting
    guard._window_end = guard._cost_window_end = float("inf")  # no window closes in a test
    return guard


def connection(guard: QueueDelayGuard) -> tuple[Any, Transport, App, list[int]]:
    app = App()
    shed: list[int] = []
    protocol_class = guarded_protocol(
        ConnectionLimits(), ArrivalAdmission(guard, lambda: shed.append(1))
    )
    config = uvicorn.Config(app, lifespan="off", log_config=None)
    protocol = protocol_class(config=config, server_state=ServerState(), app_state={})
    transport = Transport()
    protocol.connection_made(transport)
    return protocol, transport, app, shed


def responses(written: bytes) -> list[tuple[int, dict[bytes, bytes], bytes]]:
    found = []
    while written:
        head, _, rest = written.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        headers = dict(line.lower().split(b": ", 1) for line in lines[1:])
        length = int(headers[b"content-length"])
        found.append((int(lines[0].split(b" ")[1]), headers, rest[:length]))
        written = rest[length:]
    return found


async def test_a_read_predicted_to_wait_past_the_target_gets_a_503_before_any_task() -> None:
    guard = overloaded(waiting=20)  # 20 ms of work ahead, the target is 10 ms
    protocol, transport, app, shed = connection(guard)

    protocol.data_received(b"GET /v1/popular HTTP/1.1\r\nhost: x\r\nx-request-id: r-1\r\n\r\n")

    [(status, headers, body)] = responses(transport.written)  # written at once
    assert status == 503 and headers[b"retry-after"] == b"1" and headers[b"x-request-id"] == b"r-1"
    assert orjson.loads(body)["error"]["code"] == "overloaded"
    assert not protocol.tasks and not transport.closed  # no task; the connection stays
    assert shed == [1] and guard.waiting == 20 and guard.shed == 1

    # The same connection carries the next request; probes are never refused.
    protocol.data_received(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
    await asyncio.gather(*protocol.tasks)
    assert [r[0] for r in responses(transport.written)] == [503, 200]
    assert app.states[0].get("admitted_at_arrival") is None  # not counted in `waiting`


async def test_a_write_is_refused_first_and_its_body_is_dropped() -> None:
    guard = overloaded(waiting=6)  # 6 ms ahead: a read would pass, a write (5 ms) not
    protocol, transport, app, _ = connection(guard)

    protocol.data_received(
        b"POST /v1/events HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n{}"
        b"GET /v1/popular HTTP/1.1\r\nhost: x\r\n\r\n"
    )
    await asyncio.gather(*protocol.tasks)

    assert [r[0] for r in responses(transport.written)] == [503, 200]
    assert app.states == [{"arrived_at": app.states[0]["arrived_at"], "admitted_at_arrival": True}]
    assert guard.waiting == 7  # the admitted read waits for the middleware's start()


async def test_an_admitted_request_is_marked_for_the_middleware() -> None:
    guard = QueueDelayGuard(target_s=0.01, interval_s=0.1, max_wait_s=0.25)  # not overloaded
    protocol, transport, app, shed = connection(guard)

    protocol.data_received(b"GET /v1/popular HTTP/1.1\r\nhost: x\r\n\r\n")
    await asyncio.gather(*protocol.tasks)

    assert [r[0] for r in responses(transport.written)] == [200]
    assert app.states[0]["admitted_at_arrival"] is True and guard.waiting == 1 and not shed


async def test_a_connection_that_asked_to_close_is_closed_after_the_503() -> None:
    protocol, transport, _, _ = connection(overloaded(waiting=20))
    protocol.data_received(b"GET /v1/popular HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
    [(status, headers, _)] = responses(transport.written)
    assert status == 503 and headers[b"connection"] == b"close" and transport.closed

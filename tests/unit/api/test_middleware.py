"""app.api.middleware: admission by queueing delay, as a client of the service sees it."""

from __future__ import annotations

import time
from collections.abc import MutableMapping
from typing import Any

import orjson

from app.api.admission import QueueDelayGuard
from app.api.auth import Keys
from app.api.middleware import KeyPolicy, Lifecycle, RequestMiddleware
from app.observability.metrics import Metrics

KEY = "k"


async def _ok(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


def middleware(lifecycle: Lifecycle, metrics: Metrics) -> RequestMiddleware:
    return RequestMiddleware(
        _ok,
        metrics=metrics,
        lifecycle=lifecycle,
        keys=KeyPolicy(Keys([KEY]), reads=False),
        max_in_flight=10,
        max_in_flight_writes=10,
        max_body_bytes=1000,
        access_log=False,
    )


async def call(
    app: RequestMiddleware, method: str, path: str, queued_s: float, *, at_arrival: bool = False
) -> Any:
    state: dict[str, Any] = {"arrived_at": time.monotonic() - queued_s}
    if at_arrival:
        state["admitted_at_arrival"] = True
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "headers": [(b"authorization", f"Bearer {KEY}".encode())],
        "state": state,
    }
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = sent[0]
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return start["status"], dict(start["headers"]), orjson.loads(body)


async def test_requests_that_queued_too_long_get_a_fast_503_probes_do_not() -> None:
    metrics = Metrics()
    lifecycle = Lifecycle(
        admission=QueueDelayGuard(target_s=0.005, interval_s=0.1, max_wait_s=0.25)
    )
    app = middleware(lifecycle, metrics)

    assert (await call(app, "GET", "/v1/popular", 0.0))[0] == 200
    status, headers, body = await call(app, "GET", "/v1/popular", 0.5)  # past the deadline
    assert status == 503 and body["error"]["code"] == "overloaded"
    assert headers[b"retry-after"] == b"1"
    assert (await call(app, "GET", "/healthz", 0.5))[0] == 200  # probes are exempt
    assert (
        metrics.registry.get_sample_value("recs_requests_rejected_total", {"reason": "shed"}) == 1.0
    )
    assert lifecycle.admission is not None and lifecycle.admission.shedding(time.monotonic())


async def test_without_admission_a_long_queue_is_served() -> None:
    app = middleware(Lifecycle(admission=None), Metrics())
    assert (await call(app, "GET", "/v1/popular", 0.5))[0] == 200
    assert (await call(app, "POST", "/v1/events", 0.5))[0] == 200


async def test_a_request_admitted_at_arrival_leaves_the_waiting_count_when_it_starts() -> None:
    guard = QueueDelayGuard(target_s=0.005, interval_s=0.1, max_wait_s=0.25)
    app = middleware(Lifecycle(admission=guard), Metrics())
    assert guard.arrive(time.monotonic(), 0.0) and guard.arrive(time.monotonic(), 0.0)
    assert (await call(app, "GET", "/v1/popular", 0.0, at_arrival=True))[0] == 200
    assert (await call(app, "GET", "/v1/popular", 0.0))[0] == 200  # not counted at arrival
    assert guard.waiting == 1

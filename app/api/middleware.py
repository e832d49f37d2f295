"""One pure-ASGI middleware for what every request needs before and after the route.

- a request id, taken from `X-Request-ID` (when sane) or made up, set on the response and on
  every log line of the request;
- a bound on requests in flight: beyond `RECS_MAX_IN_FLIGHT` a fast 503 with Retry-After,
  not an unbounded queue that turns overload into timeouts for everyone;
- while draining (SIGTERM received), new requests still finish, but /readyz says 503;
- one latency observation per request, labelled with the route template;
- a body size limit (413, JSON like every error), declared or chunked;
- an access log line, only when `RECS_ACCESS_LOG` is on (it costs throughput).

Health, readiness and metrics are exempt from the in-flight bound: probes must answer under
overload, or Kubernetes restarts a pod that is merely busy.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from dataclasses import dataclass

import orjson
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.observability.logging import request_id
from app.observability.metrics import Metrics

access = logging.getLogger("app.access")

_SANE_ID = re.compile(rb"[A-Za-z0-9._:\-]{1,128}")
_EXEMPT = frozenset({"/healthz", "/readyz", "/metrics"})
_OVERLOADED = orjson.dumps(
    {"error": {"code": "overloaded", "message": "too many requests in flight; retry shortly"}}
)
_TOO_LARGE = orjson.dumps(
    {"error": {"code": "body_too_large", "message": "the request body exceeds the limit"}}
)


@dataclass(slots=True)
class Lifecycle:
    """What the process is doing: serving, or draining before exit."""

    draining: bool = False
    in_flight: int = 0


class RequestMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: Metrics,
        lifecycle: Lifecycle,
        max_in_flight: int,
        max_body_bytes: int,
        access_log: bool,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.metrics = metrics
        self.lifecycle = lifecycle
        self.max_in_flight = max_in_flight
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        rid = _request_id(scope)
        rid_header = (b"x-request-id", rid.encode())
        lifecycle = self.lifecycle
        path: str = scope["path"]
        counted = path not in _EXEMPT
        if counted and lifecycle.in_flight >= self.max_in_flight:
            self.metrics.rejected.labels("overloaded").inc()
            await _respond(send, 503, _OVERLOADED, [rid_header, (b"retry-after", b"1")])
            self.metrics.observe_request("overloaded", scope["method"], 503, 0.0)
            return

        if _declared_length(scope) > self.max_body_bytes:
            # A declared oversize body is refused before a byte of it is read.
            await _respond(send, 413, _TOO_LARGE, [rid_header])
            self.metrics.observe_request("too_large", scope["method"], 413, 0.0)
            return
        received = 0
        limit = self.max_body_bytes

        async def receive_within_limit() -> Message:
            # A chunked body is counted as it arrives; FastAPI passes this HTTPException
            # through body parsing, and the error handlers answer it as JSON.
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise HTTPException(413, "the request body exceeds the limit")
            return message

        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), rid_header]
            await send(message)

        token = request_id.set(rid)
        if counted:
            lifecycle.in_flight += 1
        try:
            await self.app(scope, receive_within_limit, send_with_id)
        finally:
            if counted:
                lifecycle.in_flight -= 1
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            self.metrics.observe_request(template, scope["method"], status, elapsed)
            if self.access_log:
                access.info(
                    "request",
                    extra={
                        "method": scope["method"],
                        "path": path,
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 3),
                    },
                )
            request_id.reset(token)


def _declared_length(scope: Scope) -> int:
    headers: list[tuple[bytes, bytes]] = scope["headers"]
    for name, value in headers:
        if name == b"content-length":
            return int(value) if value.isdigit() else 0
    return 0


def _request_id(scope: Scope) -> str:
    headers: list[tuple[bytes, bytes]] = scope["headers"]
    for name, value in headers:
        if name == b"x-request-id" and _SANE_ID.fullmatch(value):
            return value.decode()
    return uuid.uuid4().hex


async def _respond(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})

"""One pure-ASGI middleware for what every request needs before and after the route.

In order, each step cheap and before the next:

- a request id, taken from `X-Request-ID` (when sane) or made up, set on the response and on
  every log line of the request;
- the API key, where one is required, judged from the headers alone: a caller without one
  gets its 401 before taking a slot or having a byte of its body read;
- admission by queueing delay (`app.api.admission`): a request that waited too long between
  its arrival and its turn is refused with a fast 503 and Retry-After, writes first;
- bounds on requests in flight, reads and writes apart (`RECS_MAX_IN_FLIGHT`,
  `RECS_MAX_IN_FLIGHT_WRITES`): beyond them a fast 503 with Retry-After, not an unbounded
  queue that turns overload into timeouts for everyone, and a flood of one kind never
  starves the other;
- while draining (SIGTERM received), new requests still finish, but /readyz says 503;
- a body size limit (413, JSON like every error), declared or chunked;
- one latency observation per request, labelled with the route template and a known method;
- one access log line, only when `RECS_ACCESS_LOG` is on (it costs throughput): method, path
  without its query string (which may carry a key), status and duration.

Health, readiness and metrics are exempt from the bounds: probes must answer under
overload, or Kubernetes restarts a pod that is merely busy.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.admission import QueueDelayGuard
from app.api.auth import Keys
from app.observability.logging import request_id
from app.observability.metrics import Metrics

access = logging.getLogger("app.access")

_SANE_ID = re.compile(rb"[A-Za-z0-9._:\-]{1,128}")
EXEMPT_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
# Methods the service knows; any other is counted as OTHER, so metrics stay bounded.
_METHODS = frozenset({"GET", "POST", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE"})
_OVERLOADED = orjson.dumps(
    {"error": {"code": "overloaded", "message": "too many requests in flight; retry shortly"}}
)
SHED_BODY = orjson.dumps(
    {"error": {"code": "overloaded", "message": "requests are queueing; retry shortly"}}
)
_TOO_LARGE = orjson.dumps(
    {"error": {"code": "body_too_large", "message": "the request body exceeds the limit"}}
)


@dataclass(slots=True)
class Lifecycle:
    """What the process is doing: serving, or draining before exit; requests in flight."""

    draining: bool = False
    in_flight: int = 0
    writes_in_flight: int = 0
    admission: QueueDelayGuard | None = None  # None: no admission by queueing delay


@dataclass(frozen=True, slots=True)
class KeyPolicy:
    """Which requests need an API key: writes always, reads when configured."""

    keys: Keys
    reads: bool

    def applies(self, method: str, path: str) -> bool:
        if path in EXEMPT_PATHS or not path.startswith("/v1/"):
            return False
        return method != "GET" or self.reads


class RequestMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: Metrics,
        lifecycle: Lifecycle,
        keys: KeyPolicy,
        max_in_flight: int,
        max_in_flight_writes: int,
        max_body_bytes: int,
        access_log: bool,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.metrics = metrics
        self.lifecycle = lifecycle
        self.keys = keys
        self.max_in_flight = max_in_flight
        self.max_in_flight_writes = max_in_flight_writes
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        rid = request_id_of(scope["headers"])
        rid_header = (b"x-request-id", rid.encode())
        token = request_id.set(rid)
        try:
            await self._handle(scope, receive, send, rid_header, started)
        finally:
            request_id.reset(token)

    async def _handle(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        rid_header: tuple[bytes, bytes],
        started: float,
    ) -> None:
        lifecycle = self.lifecycle
        path: str = scope["path"]
        method = scope["method"] if scope["method"] in _METHODS else "OTHER"
        state = scope.get("state", {})
        if state.get("admitted_at_arrival") and lifecycle.admission is not None:
            lifecycle.admission.start()

        if self.keys.applies(method, path):
            verdict = self.keys.keys.verdict(_header(scope, b"authorization"))
            if verdict is not None:
                status, code, message = verdict
                headers = [rid_header]
                if status == 401:
                    headers.append((b"www-authenticate", b"Bearer"))
                await _respond(send, status, _error(code, message), headers)
                self._done("unauthorized", method, path, status, started)
                return

        write = method == "POST"
        counted = path not in EXEMPT_PATHS
        guard = lifecycle.admission
        arrived_at = state.get("arrived_at")  # stamped by app.server
        if counted and guard is not None and arrived_at is not None:
            now = time.monotonic()
            if not guard.admit(now - arrived_at, now, write=write):
                self.metrics.rejected.labels("shed").inc()
                await _respond(send, 503, SHED_BODY, [rid_header, (b"retry-after", b"1")])
                self._done("shed", method, path, 503, started)
                return
        if counted and (
            lifecycle.writes_in_flight >= self.max_in_flight_writes
            if write
            else lifecycle.in_flight >= self.max_in_flight
        ):
            self.metrics.rejected.labels("overloaded").inc()
            await _respond(send, 503, _OVERLOADED, [rid_header, (b"retry-after", b"1")])
            self._done("overloaded", method, path, 503, started)
            return

        if _declared_length(scope) > self.max_body_bytes:
            # A declared oversize body is refused before a byte of it is read.
            await _respond(send, 413, _TOO_LARGE, [rid_header])
            self._done("too_large", method, path, 413, started)
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

        if counted:
            if write:
                lifecycle.writes_in_flight += 1
            else:
                lifecycle.in_flight += 1
        try:
            await self.app(scope, receive_within_limit, send_with_id)
        except ClientDisconnect:
            status = 499  # the client left (or its body timed out): nobody to answer
        finally:
            if counted:
                if write:
                    lifecycle.writes_in_flight -= 1
                else:
                    lifecycle.in_flight -= 1
            route = scope.get("route")
            self._done(getattr(route, "path", "unmatched"), method, path, status, started)

    def _done(self, template: str, method: str, path: str, status: int, started: float) -> None:
        """One latency observation and, when on, the request's one access line."""
        elapsed = time.perf_counter() - started
        self.metrics.observe_request(template, method, status, elapsed)
        if self.access_log:
            access.info(
                "request",
                extra={
                    "method": method,
                    "path": path,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 3),
                },
            )


def _error(code: str, message: str) -> bytes:
    return orjson.dumps({"error": {"code": code, "message": message}})


def _header(scope: Scope, wanted: bytes) -> bytes | None:
    headers: list[tuple[bytes, bytes]] = scope["headers"]
    for name, value in headers:
        if name == wanted:
            return value
    return None


def _declared_length(scope: Scope) -> int:
    headers: list[tuple[bytes, bytes]] = scope["headers"]
    for name, value in headers:
        if name == b"content-length":
            return int(value) if value.isdigit() else 0
    return 0


def request_id_of(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """The client's X-Request-ID when it is sane, else a new one."""
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

"""The HTTP server's protocol: uvicorn's httptools protocol with bounds for a hostile network.

uvicorn bounds neither the time a client may take to send its headers or its body nor the
size of its headers: a connection that sends nothing, or one byte a second, or a 60 MB
header line (whose parsing costs grow with the square of its size), holds a socket and the
event loop's time for as long as the client likes. This subclass adds, per connection:

- **header deadline**: from the connection's start, and from each request's first byte, the
  headers must be complete within `RECS_HEADER_TIMEOUT_S`, or the connection is closed
  (idle connections and slowloris);
- **header size**: more than `RECS_MAX_HEADER_BYTES` before the headers end, or more than
  `RECS_MAX_HEADERS` header lines, is a 431 and the connection closes, before the parser
  has buffered more;
- **body deadline**: a request's body must arrive within `RECS_BODY_TIMEOUT_S` of its
  headers, or the answer is a 408 and the connection closes (the app sees a disconnect);
- **keep-alive**: an idle connection between requests closes after
  `RECS_KEEP_ALIVE_TIMEOUT_S` (uvicorn's own timer);
- **errors as JSON**: a request the parser refuses gets the service's JSON error body, not
  uvicorn's plain text;
- **arrival time**: when a request's headers are complete the protocol records the loop's
  time in `scope["state"]["arrived_at"]`, so the app can see how long a request queued;
- **admission at arrival**: with admission control on, a request the guard predicts would
  queue past its target (`QueueDelayGuard.arrive`) is answered 503 here, keeping the
  connection, before a task or any app code exists for it; probes are never refused.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

import httptools
import orjson
from uvicorn._types import ASGI3Application
from uvicorn.protocols.http.httptools_impl import (
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)

from app.api.admission import QueueDelayGuard
from app.api.middleware import EXEMPT_PATHS, SHED_BODY, request_id_of


@dataclass(frozen=True, slots=True)
class ArrivalAdmission:
    """The app's admission guard, asked as each request arrives; `on_shed` counts refusals."""

    guard: QueueDelayGuard
    on_shed: Callable[[], object]


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    header_timeout_s: float = 10.0
    body_timeout_s: float = 10.0
    max_header_bytes: int = 32 * 1024
    max_headers: int = 100


def error_body(code: str, message: str) -> bytes:
    return orjson.dumps({"error": {"code": code, "message": message}})


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """See the module doc. `limits` is set once per server (`guarded_protocol`)."""

    limits: ClassVar[ConnectionLimits] = ConnectionLimits()
    admission: ClassVar[ArrivalAdmission | None] = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._in_headers = True
        self._header_bytes = 0
        self._header_lines = 0
        self._tail = b""  # the last bytes of header data: a "\r\n\r\n" may span two reads

    # --- deadlines -------------------------------------------------------------------
    def _arm(self, seconds: float, on_expiry: Any) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, on_expiry)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _headers_too_slow(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.transport.close()  # nothing was asked yet: no answer owed

    def _body_too_slow(self) -> None:
        self._deadline = None
        if self.cycle is not None and not self.cycle.response_started:
            self._answer(408, "request_timeout", "the request body did not arrive in time")
        elif not self.transport.is_closing():
            self.transport.close()

    # --- protocol ----------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.limits.header_timeout_s, self._headers_too_slow)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._in_headers:
            # Only the bytes up to the blank line count: the same read may carry the body.
            seen = self._tail + data
            end = seen.find(b"\r\n\r\n")
            self._header_bytes += len(data) if end < 0 else max(0, end + 4 - len(self._tail))
            self._tail = seen[-3:]
            if self._header_bytes > self.limits.max_header_bytes:
                self._refuse_headers("the request line and headers exceed the limit")
                return
        super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if not self._in_headers:  # a pipelined or keep-alive request: its own header budget
            self._in_headers = True
            self._header_bytes = 0
            self._tail = b""
            self._arm(self.limits.header_timeout_s, self._headers_too_slow)
        self._header_lines = 0

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_lines += 1
        if self._header_lines > self.limits.max_headers:
            # Raised inside the parser's callback: httptools stops and data_received answers.
            raise _TooManyHeaders
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_headers = False
        self._disarm()
        self.scope["state"]["arrived_at"] = time.monotonic()
        super().on_headers_complete()
        refused = self.cycle is not None and self.cycle.response_complete
        if not refused and self.parser is not None and _has_body(self.scope["headers"]):
            self._arm(self.limits.body_timeout_s, self._body_too_slow)

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: ASGI3Application) -> None:
        admission = self.admission
        scope = cycle.scope
        if admission is not None and scope["path"] not in EXEMPT_PATHS:
            now, cpu_s = time.monotonic(), time.thread_time()
            if not admission.guard.arrive(now, cpu_s, write=scope["method"] == "POST"):
                admission.on_shed()
                self._shed(cycle)
                return
            scope["state"]["admitted_at_arrival"] = True  # the middleware calls guard.start()
        super()._start_asgi_task(cycle, app)

    def send_400_response(self, msg: str) -> None:
        if self._header_lines > self.limits.max_headers:
            self._refuse_headers(f"more than {self.limits.max_headers} header lines")
            return
        self._answer(400, "invalid_request", "the request is not valid HTTP/1.1")

    # --- answers -----------------------------------------------------------------------
    def _refuse_headers(self, message: str) -> None:
        self._answer(431, "headers_too_large", message)

    def _shed(self, cycle: RequestResponseCycle) -> None:
        """503 with Retry-After, written at once; the connection stays open when it may."""
        body = b"" if cycle.scope["method"] == "HEAD" else SHED_BODY
        extra = [
            b"retry-after: 1",
            b"x-request-id: " + request_id_of(cycle.scope["headers"]).encode(),
        ]
        if not cycle.keep_alive:
            extra.append(b"connection: close")
        self.transport.write(self._json_head(503, len(SHED_BODY), extra) + body)
        # The cycle is answered: uvicorn drops the rest of its body and starts the next one.
        cycle.response_started = cycle.response_complete = True
        if not cycle.keep_alive:
            self.transport.close()
        self.on_response_complete()

    def _answer(self, status: int, code: str, message: str) -> None:
        self._disarm()
        body = error_body(code, message)
        if not self.transport.is_closing():
            head = self._json_head(status, len(body), [b"connection: close"])
            self.transport.write(head + body)
            self.transport.close()

    def _json_head(self, status: int, length: int, extra: list[bytes]) -> bytes:
        """Status line, the server's default headers, a JSON body's type and length, `extra`."""
        head = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        head += [b"content-type: application/json\r\ncontent-length: ", str(length).encode()]
        for line in extra:
            head += [b"\r\n", line]
        head.append(b"\r\n\r\n")
        return b"".join(head)


class _TooManyHeaders(httptools.HttpParserError):
    """Too many header lines; raised from a parser callback to stop parsing."""


def _has_body(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if name == b"content-length":
            return value.strip() not in (b"0", b"")
        if name == b"transfer-encoding":
            return True
    return False


def guarded_protocol(
    limits: ConnectionLimits, admission: ArrivalAdmission | None = None
) -> type[GuardedHttpToolsProtocol]:
    """The protocol class for one server, with its limits and, when on, admission at arrival."""
    return type(
        "GuardedProtocol", (GuardedHttpToolsProtocol,), {"limits": limits, "admission": admission}
    )

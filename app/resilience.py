"""Circuit breakers: stop calling a dependency that keeps failing, probe it now and then.

    closed --(N failures in a row)--> open --(reset_s passed)--> half-open
    half-open: one probe call at a time; success -> closed, failure -> open again

While open, calls fail at once with `CircuitOpen`, so a dead or frozen store costs a request
nothing: the recommender answers from caches and popular lists (marked in `degraded`), and
the event writer answers 503. Timeouts count as failures: a node that accepts connections
but never answers (the nasty case) opens the breaker as surely as one that is down.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Final, ParamSpec, TypeVar

from app.observability.metrics import Metrics

P = ParamSpec("P")
R = TypeVar("R")

CLOSED: Final = "closed"
OPEN: Final = "open"
HALF_OPEN: Final = "half_open"


class CircuitOpen(RuntimeError):
    """The dependency's breaker is open: the call was not made."""


class CircuitBreaker:
    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int,
        reset_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self._threshold = failure_threshold
        self._reset_s = reset_s
        self._clock = clock
        self.state = CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probing = False

    def allow(self) -> bool:
        if self.state == CLOSED:
            return True
        if self.state == OPEN and self._clock() - self._opened_at >= self._reset_s:
            self.state = HALF_OPEN
        if self.state == HALF_OPEN and not self._probing:
            self._probing = True
            return True
        return False

    def record_success(self) -> None:
        self.state = CLOSED
        self._failures = 0
        self._probing = False

    def record_failure(self) -> None:
        self._failures += 1
        if self.state == HALF_OPEN or self._failures >= self._threshold:
            self.state = OPEN
            self._opened_at = self._clock()
        self._probing = False


def protect(
    call: Callable[P, Awaitable[R]],
    *,
    breaker: CircuitBreaker,
    metrics: Metrics,
    dependency: str,
    operation: str,
) -> Callable[P, Awaitable[R]]:
    """`call` behind `breaker`, with latency and failures recorded in `metrics`."""
    timed = metrics.timed(dependency, operation, call)
    refused = metrics.dependency_errors.labels(dependency, operation, "circuit_open")

    async def protected(*args: P.args, **kwargs: P.kwargs) -> R:
        if not breaker.allow():
            refused.inc()
            raise CircuitOpen(dependency)
        try:
            result = await timed(*args, **kwargs)
        except (Exception, asyncio.CancelledError):
            # Cancelled: the caller's deadline passed before the dependency answered.
            breaker.record_failure()
            raise
        breaker.record_success()
        return result

    return protected

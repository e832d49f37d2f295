import asyncio

import pytest

from app.observability.metrics import Metrics
from app.resilience import CircuitBreaker, CircuitOpen, protect


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def breaker(clock: Clock) -> CircuitBreaker:
    return CircuitBreaker("scylla", failure_threshold=3, reset_s=1.0, clock=clock)


def test_opens_after_consecutive_failures_only() -> None:
    b = breaker(Clock())
    b.record_failure()
    b.record_failure()
    b.record_success()  # a success resets the count
    b.record_failure()
    b.record_failure()
    assert b.state == "closed" and b.allow()
    b.record_failure()
    assert b.state == "open" and not b.allow()


def test_half_open_lets_one_probe_through_then_closes_or_reopens() -> None:
    clock = Clock()
    b = breaker(clock)
    for _ in range(3):
        b.record_failure()
    clock.now = 0.9
    assert not b.allow()
    clock.now = 1.0
    assert b.allow()  # the probe
    assert not b.allow()  # only one at a time
    b.record_failure()
    assert b.state == "open" and not b.allow()
    clock.now = 2.1
    assert b.allow()
    b.record_success()
    assert b.state == "closed" and b.allow() and b.allow()


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return value or 0.0


async def test_protect_fails_fast_when_open_and_counts_everything() -> None:
    metrics = Metrics()
    clock = Clock()
    b = breaker(clock)
    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        raise ConnectionError("down")

    guarded = protect(flaky, breaker=b, metrics=metrics, dependency="scylla", operation="read")
    for _ in range(3):
        with pytest.raises(ConnectionError):
            await guarded()
    with pytest.raises(CircuitOpen):
        await guarded()
    assert calls == 3
    labels = {"dependency": "scylla", "operation": "read"}
    assert sample(metrics, "recs_dependency_errors_total", **labels, kind="error") == 3
    assert sample(metrics, "recs_dependency_errors_total", **labels, kind="circuit_open") == 1
    assert sample(metrics, "recs_dependency_duration_seconds_count", **labels) == 3


async def test_a_call_cut_by_its_deadline_counts_as_a_failure() -> None:
    metrics = Metrics()
    b = CircuitBreaker("dynamodb", failure_threshold=1, reset_s=5)

    async def frozen() -> None:
        await asyncio.sleep(10)

    guarded = protect(frozen, breaker=b, metrics=metrics, dependency="dynamodb", operation="q")
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01):
            await guarded()
    assert b.state == "open"
    labels = {"dependency": "dynamodb", "operation": "q", "kind": "timeout"}
    assert sample(metrics, "recs_dependency_errors_total", **labels) == 1

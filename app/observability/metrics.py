"""Prometheus metrics, cheap enough for the hot path.

Per request: one histogram observation (route template, method, status) through a cached
child, no label lookups. Per dependency call: one observation and, on failure, one counter.
Everything else (thread pool, caches, model versions, shard connections) is read only when
/metrics is scraped. Each app has its own registry, so tests can build many apps.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any, ParamSpec, TypeVar

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

P = ParamSpec("P")
R = TypeVar("R")

# Latency buckets in seconds: fine where the service lives (sub-millisecond to 50 ms).
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075,
    0.1, 0.25, 0.5, 1.0, 2.5,
)  # fmt: skip
LAG_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0)
POOL_BUCKETS = (0, 1, 2, 4, 8, 16, 32, 64)
GC_BUCKETS = (0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Histogram(
            "recs_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template, method and status.",
            ("route", "method", "status"),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.dependency_latency = Histogram(
            "recs_dependency_duration_seconds",
            "Time of one call to a dependency (a Scylla hop, a DynamoDB call, a catalog call).",
            ("dependency", "operation"),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.dependency_errors = Counter(
            "recs_dependency_errors_total",
            "Failed dependency calls, by kind (timeout, error, circuit_open).",
            ("dependency", "operation", "kind"),
            registry=self.registry,
        )
        self.loop_lag = Histogram(
            "recs_event_loop_lag_seconds",
            "How late the event loop ran a timer: time the loop was blocked or saturated.",
            buckets=LAG_BUCKETS,
            registry=self.registry,
        )
        self.gc_pauses = Histogram(
            "recs_gc_pause_seconds",
            "Duration of one garbage collection, by generation.",
            ("generation",),
            buckets=GC_BUCKETS,
            registry=self.registry,
        )
        self.pool_busy = Histogram(
            "recs_cql_pool_busy_threads",
            "Busy threads of the CQL pool, seen by each call as it is submitted.",
            buckets=POOL_BUCKETS,
            registry=self.registry,
        )
        self.pool_queue = Histogram(
            "recs_cql_pool_queue_depth",
            "Calls already waiting for a CQL pool thread, seen by each call as it is submitted.",
            buckets=POOL_BUCKETS,
            registry=self.registry,
        )
        self.rejected = Counter(
            "recs_requests_rejected_total",
            "Requests refused before any work, by reason: overloaded (in flight), shed (queued).",
            ("reason",),
            registry=self.registry,
        )
        self._request_children: dict[tuple[str, str, int], Any] = {}
        self._gc_started = 0.0

    # --- requests ----------------------------------------------------------------------
    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        child = self._request_children.get(key)
        if child is None:
            child = self.requests.labels(route, method, str(status))
            self._request_children[key] = child
        child.observe(seconds)

    # --- dependencies --------------------------------------------------------------------
    def timed(
        self, dependency: str, operation: str, call: Callable[P, Awaitable[R]]
    ) -> Callable[P, Awaitable[R]]:
        """`call` with its latency and failures recorded."""
        latency = self.dependency_latency.labels(dependency, operation)
        timeouts = self.dependency_errors.labels(dependency, operation, "timeout")
        errors = self.dependency_errors.labels(dependency, operation, "error")

        async def timed_call(*args: P.args, **kwargs: P.kwargs) -> R:
            started = time.perf_counter()
            try:
                return await call(*args, **kwargs)
            except (TimeoutError, asyncio.CancelledError):
                timeouts.inc()
                raise
            except Exception:
                errors.inc()
                raise
            finally:
                latency.observe(time.perf_counter() - started)

        return timed_call

    def observe_pool(self, busy: int, queued: int) -> None:
        self.pool_busy.observe(busy)
        self.pool_queue.observe(queued)

    # --- runtime probes --------------------------------------------------------------------
    async def sample_loop_lag(self, interval_s: float = 0.05) -> None:
        """Sleep-drift sampler: a timer that fires late measures a blocked or busy loop."""
        loop = asyncio.get_running_loop()
        observe = self.loop_lag.observe
        while True:
            started = loop.time()
            await asyncio.sleep(interval_s)
            observe(max(0.0, loop.time() - started - interval_s))

    def watch_gc(self) -> Callable[[], None]:
        """Record every collection's pause by generation; returns the undo function."""
        children = [self.gc_pauses.labels(str(generation)) for generation in range(3)]

        def on_gc(phase: str, info: dict[str, int]) -> None:
            if phase == "start":
                self._gc_started = time.perf_counter()
            else:
                children[info["generation"]].observe(time.perf_counter() - self._gc_started)

        gc.callbacks.append(on_gc)
        return lambda: gc.callbacks.remove(on_gc)

    def add_collector(self, collector: Collector) -> None:
        self.registry.register(collector)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class StateCollector(Collector):
    """Read at scrape time: pool, caches, model versions, shard connections, in-flight."""

    def __init__(self, read: Callable[[], Iterable[Metric]]) -> None:
        self._read = read

    def collect(self) -> Iterator[Metric]:
        yield from self._read()

    def describe(self) -> list[Metric]:
        return []  # families vary with what the backend built


def gauge(name: str, documentation: str, labels: dict[str, str], value: float) -> Metric:
    family = GaugeMetricFamily(name, documentation, labels=list(labels))
    family.add_metric(list(labels.values()), value)
    return family


def counter(name: str, documentation: str, labels: dict[str, str], value: float) -> Metric:
    family = CounterMetricFamily(name, documentation, labels=list(labels))
    family.add_metric(list(labels.values()), value)
    return family

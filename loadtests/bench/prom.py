"""The service's /metrics before and after a run, and the difference (`Delta`): counts, sums
and quantiles estimated as Prometheus' `histogram_quantile` does (linear inside a bucket).
"""

from __future__ import annotations

import math
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

Key = tuple[str, frozenset[tuple[str, str]]]


@dataclass(frozen=True)
class Snapshot:
    samples: Mapping[Key, float]

    @classmethod
    def scrape(cls, base_url: str, timeout_s: float = 10) -> Snapshot:
        with urllib.request.urlopen(f"{base_url}/metrics", timeout=timeout_s) as response:
            return cls.parse(response.read().decode())

    @classmethod
    def parse(cls, text: str) -> Snapshot:
        samples: dict[Key, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
        return cls(samples)

    def __sub__(self, before: Snapshot) -> Delta:
        keys = set(self.samples) | set(before.samples)
        return Delta(
            {key: self.samples.get(key, 0.0) - before.samples.get(key, 0.0) for key in keys}
        )


@dataclass(frozen=True)
class HistogramDelta:
    buckets: tuple[tuple[float, float], ...]  # (upper edge, cumulative count), sorted
    count: float
    total: float

    @property
    def mean(self) -> float | None:
        return self.total / self.count if self.count else None

    def quantile(self, q: float) -> float | None:
        """Prometheus' histogram_quantile: linear interpolation inside the bucket."""
        if not self.count:
            return None
        rank = q * self.count
        lower_edge, lower_count = 0.0, 0.0
        for edge, cumulative in self.buckets:
            if cumulative >= rank:
                if math.isinf(edge):
                    return lower_edge  # above the last finite edge: the edge is all we know
                if cumulative == lower_count:
                    return edge
                return lower_edge + (edge - lower_edge) * (rank - lower_count) / (
                    cumulative - lower_count
                )
            lower_edge, lower_count = edge, cumulative
        return lower_edge

    @property
    def max_le(self) -> float | None:
        """The smallest bucket edge at or above every observation (inf: above the last)."""
        if not self.count:
            return None
        for edge, cumulative in self.buckets:
            if cumulative >= self.count:
                return edge
        return math.inf

    def summary(self) -> dict[str, float | None]:
        """Count, sum and mean, p50, p99 and `max_le`, in the histogram's unit."""
        return {
            "count": self.count,
            "sum": self.total,
            "mean": self.mean,
            "p50": self.quantile(0.5),
            "p99": self.quantile(0.99),
            "max_le": self.max_le,
        }


@dataclass(frozen=True)
class Delta:
    samples: Mapping[Key, float]

    def value(self, name: str, **labels: str) -> float:
        """Sum of the samples named `name` whose labels include `labels`."""
        return sum(v for (n, ls), v in self.samples.items() if n == name and _has(ls, labels))

    def label_values(self, name: str, label: str) -> list[str]:
        values = {dict(ls).get(label) for (n, ls) in self.samples if n == name}
        return sorted(v for v in values if v is not None)

    def histogram(self, name: str, **labels: str) -> HistogramDelta:
        buckets: dict[float, float] = {}
        for (sample, ls), value in self.samples.items():
            if sample == f"{name}_bucket" and _has(ls, labels):
                edge = float(dict(ls)["le"])
                buckets[edge] = buckets.get(edge, 0.0) + value
        return HistogramDelta(
            tuple(sorted(buckets.items())),
            self.value(f"{name}_count", **labels),
            self.value(f"{name}_sum", **labels),
        )


def _has(labels: Iterable[tuple[str, str]], wanted: Mapping[str, str]) -> bool:
    have = dict(labels)
    return all(have.get(k) == v for k, v in wanted.items())


@dataclass(frozen=True)
class RunMetrics:
    """What the report shows of one run's /metrics delta."""

    loop_lag: HistogramDelta
    gc: dict[str, HistogramDelta]  # by generation
    dependencies: dict[str, HistogramDelta]  # "dependency/operation"
    dependency_failures: dict[str, float]  # "dependency/kind"
    cache_hit_ratio: dict[str, float | None]
    cache_lookups: dict[str, float]  # keys looked up (hits + misses), by cache
    cql_hops: float
    server_requests: dict[str, HistogramDelta]  # the service's own latency, by route

    @classmethod
    def of(cls, delta: Delta) -> RunMetrics:
        gc = {
            generation: delta.histogram("recs_gc_pause_seconds", generation=generation)
            for generation in ("0", "1", "2")
        }
        dependencies = {}
        for name in delta.label_values("recs_dependency_duration_seconds_count", "dependency"):
            for operation in delta.label_values(
                "recs_dependency_duration_seconds_count", "operation"
            ):
                histogram = delta.histogram(
                    "recs_dependency_duration_seconds", dependency=name, operation=operation
                )
                if histogram.count:
                    dependencies[f"{name}/{operation}"] = histogram
        failures = {}
        for name in delta.label_values("recs_dependency_errors_total", "dependency"):
            for kind in ("timeout", "error", "circuit_open"):
                count = delta.value("recs_dependency_errors_total", dependency=name, kind=kind)
                if count:
                    failures[f"{name}/{kind}"] = count
        ratios: dict[str, float | None] = {}
        lookups: dict[str, float] = {}
        for cache in delta.label_values("recs_cache_hits_total", "cache"):
            hits = delta.value("recs_cache_hits_total", cache=cache)
            misses = delta.value("recs_cache_misses_total", cache=cache)
            ratios[cache] = hits / (hits + misses) if hits + misses else None
            lookups[cache] = hits + misses
        routes = {}
        for route in delta.label_values("recs_http_request_duration_seconds_count", "route"):
            histogram = delta.histogram("recs_http_request_duration_seconds", route=route)
            if histogram.count:
                routes[route] = histogram
        return cls(
            loop_lag=delta.histogram("recs_event_loop_lag_seconds"),
            gc=gc,
            dependencies=dependencies,
            dependency_failures=failures,
            cache_hit_ratio=ratios,
            cache_lookups=lookups,
            cql_hops=delta.value("recs_cql_pool_hops_total"),
            server_requests=routes,
        )

    @property
    def failed_calls(self) -> float:
        return sum(self.dependency_failures.values())

    def summary(self) -> dict[str, Any]:
        """Plain data for results.json (and so for the report); histograms in seconds."""
        return {
            "loop_lag": self.loop_lag.summary(),
            "gc": {g: h.summary() for g, h in self.gc.items()},
            "dependencies": {k: h.summary() for k, h in self.dependencies.items()},
            "dependency_failures": self.dependency_failures,
            "cache_hit_ratio": self.cache_hit_ratio,
            "cache_lookups": self.cache_lookups,
            "cql_hops": self.cql_hops,
        }

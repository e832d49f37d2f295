"""vegeta attacks (closed loop, each request once, or open loop at a constant rate) and their
results. Open loop: requests leave on schedule whatever the answers, so a stall shows in every
request due during it. Percentiles are nearest-rank over every latency (`scripts.stats`).
"""

from __future__ import annotations

import bisect
import csv
import math
import os
import statistics
import subprocess
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scripts import stats

REQUEST_TIMEOUT_S = 5
# What vegeta records, once, when a `-lazy` attack reaches the end of its targets.
NO_MORE_TARGETS = "no targets to attack"
# Latency histogram edges in ms (the last bucket is "above the last edge").
HISTOGRAM_EDGES_MS = (0.5, 1, 1.5, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 50, 100, 250)


@dataclass(frozen=True)
class Attack:
    targets: Path
    duration_s: float
    rate: float | None = None  # requests per second; None: closed loop
    workers: int = 8
    max_workers: int | None = None  # open loop: None is vegeta's default (unbounded)
    once: bool = False  # stop at the end of the targets file (closed loop only)

    @classmethod
    def closed(cls, targets: Path, workers: int, duration_s: float) -> Attack:
        return cls(targets, duration_s, None, workers)

    @classmethod
    def each_once(cls, targets: Path, workers: int, max_duration_s: float) -> Attack:
        return cls(targets, max_duration_s, None, workers, once=True)

    @classmethod
    def constant(
        cls, targets: Path, rate: float, duration_s: float, max_workers: int | None = None
    ) -> Attack:
        return cls(targets, duration_s, rate, 16, max_workers)

    def argv(self, vegeta: Path, output: Path) -> list[str]:
        argv = [
            str(vegeta),
            "attack",
            "-format=json",
            f"-targets={self.targets}",
            f"-duration={self.duration_s:g}s",
            f"-timeout={REQUEST_TIMEOUT_S}s",
            "-max-body=0",
            f"-output={output}",
        ]
        if self.rate is None:
            argv += ["-rate=0", f"-workers={self.workers}", f"-max-workers={self.workers}"]
            if self.once:
                argv.append("-lazy")
        else:
            # Tenths of a request per second: low rates (naive variants) stay exact enough.
            argv += [f"-rate={max(1, round(self.rate * 10))}/10s", f"-workers={self.workers}"]
            if self.max_workers is not None:
                argv.append(f"-max-workers={self.max_workers}")
        return argv


@dataclass
class Result:
    """One attack's outcome, from every request vegeta sent."""

    attack: Attack
    requests: int
    statuses: dict[str, int]
    errors: dict[str, int]
    latencies_ms: list[float] = field(repr=False)  # sorted, successful (2xx) requests only
    wall_s: float
    per_second_ok: list[int] = field(repr=False)

    @property
    def ok(self) -> int:
        return len(self.latencies_ms)

    @property
    def failed(self) -> int:
        return self.requests - self.ok

    @property
    def served(self) -> float:
        """Successful answers per second: of the attack's duration (open loop), or the median
        of the whole seconds (closed loop, the first and last, partial, dropped): robust to a
        neighbour's burst on a shared box."""
        if self.attack.rate is not None:
            return self.ok / self.attack.duration_s if self.attack.duration_s else 0.0
        seconds = self.per_second_ok[1:-1] or self.per_second_ok
        return float(statistics.median(seconds)) if seconds else 0.0

    def percentile(self, q: float) -> float | None:
        """Percentile `q` (nearest rank, 0-100) of the successful latencies, in ms; None
        without any."""
        return stats.percentile(self.latencies_ms, q) if self.latencies_ms else None

    @property
    def max_ms(self) -> float | None:
        return self.latencies_ms[-1] if self.latencies_ms else None

    def histogram(self, edges: Sequence[float] = HISTOGRAM_EDGES_MS) -> list[int]:
        """Counts per latency bucket: (0, e0], (e0, e1], ..., (e_last, inf)."""
        counts = [0] * (len(edges) + 1)
        for latency in self.latencies_ms:
            counts[bisect.bisect_left(edges, latency)] += 1
        return counts

    def summary(self) -> dict[str, Any]:
        return {
            "rate": self.attack.rate,
            "duration_s": self.attack.duration_s,
            "requests": self.requests,
            "ok": self.ok,
            "failed": self.failed,
            "statuses": self.statuses,
            "errors": self.errors,
            "wall_s": round(self.wall_s, 3),
            "served": self.served,
            **{f"p{q:g}_ms": self.percentile(q) for q in (50, 95, 99, 99.9)},
            "max_ms": self.max_ms,
            "histogram": self.histogram(),
        }


def attack_env() -> dict[str, str]:
    """vegeta on one core at most (GOMAXPROCS=1): on a 2-core box shared with the server and
    the stack, the load generator must not take both cores in its bursts."""
    return {**os.environ, "GOMAXPROCS": "1"}


class VegetaError(RuntimeError):
    pass


def run(vegeta: Path, attack: Attack, work_dir: Path, name: str) -> Result:
    """Run one attack; its raw results stay in `work_dir/name.bin` (gob) for inspection."""
    work_dir.mkdir(parents=True, exist_ok=True)
    raw = work_dir / f"{name}.bin"
    attack_run = subprocess.run(
        attack.argv(vegeta, raw),
        env=attack_env(),
        capture_output=True,
        text=True,
        timeout=attack.duration_s + REQUEST_TIMEOUT_S + 60,
    )
    if attack_run.returncode != 0:
        raise VegetaError(f"vegeta attack failed ({attack_run.returncode}): {attack_run.stderr}")
    encoded = subprocess.run(
        [str(vegeta), "encode", "--to", "csv", str(raw)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if encoded.returncode != 0:
        raise VegetaError(f"vegeta encode failed: {encoded.stderr}")
    return parse_csv(encoded.stdout.splitlines(), attack)


def parse_csv(lines: Sequence[str], attack: Attack) -> Result:
    """vegeta's CSV: timestamp ns, code, latency ns, bytes out, bytes in, error, body, ..."""
    statuses: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    latencies: list[float] = []
    ok_at: list[int] = []
    first = math.inf
    last = 0.0
    requests = 0
    for row in csv.reader(lines):
        if not row:
            continue
        requests += 1
        started_ns = int(row[0])
        code = row[1]
        latency_ns = int(row[2])
        statuses[code] += 1
        first = min(first, started_ns)
        last = max(last, started_ns + latency_ns)
        if code.startswith("2") and not row[5]:
            latencies.append(latency_ns / 1e6)
            ok_at.append(started_ns + latency_ns)
        elif row[5]:
            errors[_short(row[5])] += 1
    latencies.sort()
    wall_s = (last - first) / 1e9 if requests else 0.0
    per_second: list[int] = []
    if ok_at:
        buckets = Counter(int((done - first) // 1_000_000_000) for done in ok_at)
        per_second = [buckets.get(second, 0) for second in range(max(buckets) + 1)]
    return Result(attack, requests, dict(statuses), dict(errors), latencies, wall_s, per_second)


def _short(error: str) -> str:
    for marker in ("connection refused", "timeout", "EOF", "reset by peer"):
        if marker in error:
            return marker
    return error[:80]

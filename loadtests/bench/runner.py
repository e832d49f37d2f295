"""`python -m loadtests.bench`: the benchmark, from a ready stack to docs/benchmark.md.

    python -m loadtests.bench [--quick] [--only NAME,...] [--out docs/benchmark.md]
        [--data data/demo] [--skip-load] [--no-stack-up] [--scale F] [--set RECS_X=V ...]

Steps: describe the machine; make sure the stack is up and the demo loaded; then each
selected section (see `plan`): the micro-benchmarks, the product (floor and endpoints, each:
warm-up, saturation, then 50 % and 70 % of it, open loop), the profile, the ablations. Every
server variant runs on a free port and is stopped at the end of its section. Raw results
(vegeta's, py-spy's, the servers' logs, a JSON of every number) go to reports/bench/<time>/;
the Markdown report to `--out`.

Saturation is the knee of an open-loop rate ramp: a short closed-loop probe (4 workers)
estimates the capacity X; a light step at 25 % of X gives the unloaded median and p95
latencies; then constant-rate steps from 60 % of X grow by 30 % while the server sustains them
(serves at least 97 % of the offered rate, HTTP failures at most 0.1 %, dependency failures on
at most 1 % of answers, median and p95 latencies at most twice the light step's plus 2 ms:
`KneeLimits`), and more steps narrow the gap between the last sustained rate and the first that
was not until they are within 15 % (at most `Durations.ramp_refinements` steps). The knee is
the last sustained step's served rate. Why not simply closed-loop max throughput: on this box
the service serves more per second with many requests in flight (it batches reads and writes)
than it can sustain on a fixed schedule, so 70 % of a closed-loop maximum is already past the
open-loop knee; and past the dependencies' timeouts, breakers open and degraded answers
(cheaper) inflate a closed-loop number.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import pickle
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from loadtests.bench import environment, machine, micro, plan, prom, vegeta, workload
from loadtests.bench import profile as profiling
from loadtests.bench.plan import Ablation, Durations
from loadtests.bench.processes import BenchServer, CpuTimes, CpuUse
from loadtests.bench.variants import PRODUCT, Variant

REPO = Path(__file__).resolve().parents[2]
API_KEY = "bench-key"

DEFAULT_OUT = REPO / "docs" / "benchmark.md"
QUICK_OUT = REPO / "reports" / "bench-quick.md"


def _cache_bin(name: str) -> Path:
    cache = Path(os.environ.get("RECS_CACHE_DIR") or Path.home() / ".cache" / "recs")
    return cache / "bin" / name


# --- one measurement ---------------------------------------------------------------------------


@dataclass
class Measurement:
    variant: str
    endpoint: str
    kind: str  # "saturation" | "fixed" | "profile"
    label: str
    result: vegeta.Result
    cpu: CpuUse
    metrics: prom.RunMetrics | None
    load_before: float
    load_after: float
    # The file drawn for the endpoint and the line of it the attack started at (it sent a
    # rotation: `workload.TargetStream`). Defaults: runs pickled before these were recorded.
    targets: Path | None = None
    targets_from: int = 0

    @property
    def degraded_share(self) -> float | None:
        """Failed dependency calls (timeouts, errors, open breakers) per answer: an upper
        bound of the share of degraded answers (None when the variant has no metrics)."""
        if self.metrics is None or not self.result.ok:
            return None
        if not self.metrics.dependencies and not self.metrics.dependency_failures:
            return None
        return self.metrics.failed_dependency_calls / self.result.ok

    @property
    def http_failure_share(self) -> float:
        return self.result.failed / self.result.requests if self.result.requests else 1.0

    @property
    def clean(self) -> bool:
        degraded = self.degraded_share or 0.0
        return (
            self.result.ok > 0
            and self.http_failure_share <= plan.MAX_HTTP_FAILURE_SHARE
            and degraded <= plan.MAX_DEGRADED_SHARE
        )

    @property
    def cpu_us_per_request(self) -> float | None:
        return self.cpu.per_request_us(self.result.requests)

    def to_json(self) -> dict[str, object]:
        metrics = self.metrics
        return {
            "variant": self.variant,
            "endpoint": self.endpoint,
            "kind": self.kind,
            "label": self.label,
            "result": self.result.summary(),
            "cpu": {
                "wall_s": self.cpu.wall_s,
                "main_s": self.cpu.main_s,
                "threads_s": self.cpu.threads_s,
                "box_busy": self.cpu.box_busy,
                "main_wait_share": self.cpu.main_wait_share,
                "us_per_request": self.cpu_us_per_request,
            },
            "degraded_share": self.degraded_share,
            "clean": self.clean,
            "load": [self.load_before, self.load_after],
            "targets": {
                "file": None if self.targets is None else str(self.targets),
                "from": self.targets_from,
            },
            "metrics": None if metrics is None else _metrics_json(metrics),
        }


def _metrics_json(metrics: prom.RunMetrics) -> dict[str, object]:
    def hist(h: prom.HistogramDelta) -> dict[str, object]:
        return {
            "count": h.count,
            "sum": h.total,
            "p50": h.quantile(0.5),
            "p99": h.quantile(0.99),
            "max_le": h.max_le,
            "buckets": h.per_bucket(),
        }

    return {
        "loop_lag": hist(metrics.loop_lag),
        "gc": {g: hist(h) for g, h in metrics.gc.items()},
        "dependencies": {k: hist(h) for k, h in metrics.dependencies.items()},
        "dependency_failures": metrics.dependency_failures,
        "cache_hit_ratio": metrics.cache_hit_ratio,
        "cql_hops": metrics.cql_hops,
        "server_requests": {k: hist(h) for k, h in metrics.server_requests.items()},
    }


@dataclass
class Saturation:
    probe: Measurement  # closed loop, PROBE_WORKERS
    points: list[Measurement]  # the ramp's steps, in order
    best: Measurement  # the last sustained step (the knee)
    sustained: bool
    repeats: list[Measurement] = field(default_factory=list)  # more closed-loop probes
    first_attempt: Saturation | None = None  # a disturbed ramp measured again (product only)

    @property
    def throughput(self) -> float:
        """The knee: the served rate of the highest sustained step (answers per second)."""
        result = self.best.result
        return result.ok / result.attack.duration_s if result.attack.duration_s else 0.0

    @property
    def closed_loop(self) -> float:
        """Closed-loop throughput with PROBE_WORKERS in flight (median over the probes)."""
        return statistics.median(m.result.median_per_second for m in [self.probe, *self.repeats])

    @property
    def clean(self) -> bool:
        return self.sustained


@dataclass
class EndpointRuns:
    endpoint: str
    saturation: Saturation
    fixed: dict[str, Measurement] = field(default_factory=dict)  # label -> run
    retried: dict[str, Measurement] = field(default_factory=dict)  # first, disturbed attempts


@dataclass
class AblationRuns:
    ablation: Ablation
    # endpoint -> variant name -> runs (fixed: {"common": ...})
    runs: dict[str, dict[str, EndpointRuns]] = field(default_factory=dict)
    common_rate: dict[str, float] = field(default_factory=dict)
    started_s: dict[str, float] = field(default_factory=dict)


@dataclass
class BenchRun:
    command: str
    started: dt.datetime
    options: dict[str, object]
    durations: Durations
    machine: dict[str, object]
    load_start: tuple[float, float, float]
    load_end: tuple[float, float, float] = (0.0, 0.0, 0.0)
    finished: dt.datetime | None = None
    dataset: str = ""
    data_status: str = ""
    stack: str = ""
    work_dir: Path = Path()
    product: dict[str, EndpointRuns] = field(default_factory=dict)
    profile: profiling.Profile | None = None
    profile_rate: float | None = None
    micro: dict[str, Any] = field(default_factory=dict)  # "scylla": micro.summarize's rows
    ablations: list[AblationRuns] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    servers: list[dict[str, object]] = field(default_factory=list)


# --- the bench ---------------------------------------------------------------------------------


class Bench:
    def __init__(
        self,
        run: BenchRun,
        *,
        durations: Durations,
        env: dict[str, str],
        dataset: workload.Dataset,
        vegeta_bin: Path,
        py_spy: Path,
        verbose: bool = True,
    ) -> None:
        self.run = run
        self.durations = durations
        self.env = env
        self.dataset = dataset
        self.vegeta = vegeta_bin
        self.py_spy = py_spy
        self.verbose = verbose
        self.now_ms = int(time.time() * 1000)
        self._servers = 0
        self._streams: dict[Path, workload.TargetStream] = {}

    def say(self, message: str) -> None:
        if self.verbose:
            stamp = dt.datetime.now().strftime("%H:%M:%S")
            print(f"[{stamp}] {message}", flush=True)

    # --- servers --------------------------------------------------------------------------
    @contextmanager
    def server(self, variant: Variant) -> Iterator[tuple[BenchServer, dict[str, Path]]]:
        self._servers += 1
        slug = f"{self._servers:02d}-" + "".join(
            c if c.isalnum() else "-" for c in variant.name
        ).strip("-")
        server = BenchServer(variant, self.env, self.run.work_dir / "servers" / f"{slug}.log")
        try:
            server.start()
            self.run.servers.append(
                {
                    "variant": variant.name,
                    "port": server.port,
                    "pid": server.pid,
                    "started_s": server.started_s,
                    "log": str(server.log),
                    "argv": server.argv()[1:],
                }
            )
            self.say(f"server {variant.name!r} ready on :{server.port} in {server.started_s:.1f} s")
            targets = workload.write_targets(
                self.dataset,
                server.url,
                self.run.work_dir / "targets" / slug,
                api_key=API_KEY,
                now_ms=self.now_ms,
            )
            yield server, targets
        finally:
            server.stop()

    # --- measurements ---------------------------------------------------------------------
    def measure(
        self,
        server: BenchServer,
        variant: Variant,
        endpoint: str,
        attack: vegeta.Attack,
        kind: str,
        label: str,
    ) -> Measurement:
        if not server.alive():
            raise RuntimeError(f"server {variant.name!r} died; see {server.log}")
        name = f"{variant.name}-{endpoint}-{kind}-{label}".replace(" ", "_").replace("%", "pct")
        load_before = os.getloadavg()[0]
        before = prom.Snapshot.scrape(server.url)
        stream = self._stream(attack.targets)
        started_at = stream.position
        attack = replace(attack, targets=stream.next_file())
        cpu_before = CpuTimes.read(server.pid)
        result = vegeta.run(self.vegeta, attack, self.run.work_dir / "vegeta", _slug(name))
        cpu = CpuTimes.read(server.pid) - cpu_before
        stream.advance(result.requests)
        after = prom.Snapshot.scrape(server.url)
        measurement = Measurement(
            variant.name,
            endpoint,
            kind,
            label,
            result,
            cpu,
            prom.RunMetrics.of(after - before),
            load_before,
            os.getloadavg()[0],
            stream.path,
            started_at,
        )
        if attack.rate is None:
            served = f"{result.median_per_second:.0f} req/s (median of each second)"
        else:
            served = f"served {result.ok / attack.duration_s:.0f} req/s"
        self.say(
            f"  {variant.name} {endpoint} {label}: {served}, "
            f"p50 {_ms(result.percentile(50))} p99 {_ms(result.percentile(99))}, "
            f"{result.failed} failed, degraded≤{_pct(measurement.degraded_share)}, "
            f"cpu {measurement.cpu_us_per_request or 0:.0f} µs/req, "
            f"loop {cpu.main_share:.0%}, box {cpu.box_busy:.0%}"
        )
        return measurement

    def _stream(self, targets: Path) -> workload.TargetStream:
        """Every attack on a targets file goes on where the last one stopped (`workload`)."""
        if targets not in self._streams:
            self._streams[targets] = workload.TargetStream(targets)
        return self._streams[targets]

    def warm_up(
        self, server: BenchServer, variant: Variant, targets: Path, what: str = "warm-up"
    ) -> None:
        if self.durations.warmup_s <= 0:
            return
        attack = vegeta.Attack.each_once(
            workload.distinct_requests(targets), plan.WARMUP_WORKERS, self.durations.warmup_s
        )
        result = vegeta.run(self.vegeta, attack, self.run.work_dir / "vegeta", "warmup")
        finished = vegeta.NO_MORE_TARGETS in result.errors
        self.say(
            f"  {variant.name} {targets.stem}: {what}, {result.ok} answers in "
            f"{result.wall_s:.1f} s{'' if finished else ' (stopped at the cap)'}"
        )
        if not finished:
            self.run.problems.append(
                f"{variant.name} {targets.stem}: the {what} stopped at its cap "
                f"({self.durations.warmup_s:g} s) before it sent every distinct request"
            )

    def saturate(
        self,
        server: BenchServer,
        variant: Variant,
        endpoint: str,
        targets: Path,
    ) -> Saturation:
        """The knee of an open-loop ramp (see the module's doc)."""
        d = self.durations
        probe = self.measure(
            server,
            variant,
            endpoint,
            vegeta.Attack.closed(targets, plan.PROBE_WORKERS, d.probe_s),
            "probe",
            f"closed loop, {plan.PROBE_WORKERS} workers",
        )
        points: list[Measurement] = []

        def step(rate: float) -> Measurement:
            attack = vegeta.Attack.constant(
                targets, rate, d.ramp_step_s, max_workers=plan.OPEN_LOOP_MAX_WORKERS
            )
            point = self.measure(server, variant, endpoint, attack, "ramp", f"{rate:.0f} req/s")
            points.append(point)
            return point

        def settle() -> None:
            time.sleep(d.settle_s)

        estimate = probe.result.median_per_second
        baseline = step(max(1.0, plan.BASELINE_SHARE * estimate))
        downs = 0
        while not _served(baseline) and downs < 3 and _rate(baseline) > 1.0:
            settle()
            baseline = step(max(1.0, _rate(baseline) / 2))
            downs += 1
        if not _served(baseline):
            self.run.problems.append(
                f"{variant.name} {endpoint}: not even {_rate(baseline):.0f} req/s was "
                "sustained; the saturation shown is that rate, not a knee"
            )
            return Saturation(probe, points, baseline, sustained=False)
        limit = KneeLimits.above(baseline.result)
        best = baseline
        failed: Measurement | None = None
        # Jump from the light load to most of the estimate, then climb, then narrow the gap
        # between the last sustained step and the first that was not.
        jump = step(max(plan.RAMP_START * estimate, _rate(baseline) * plan.RAMP_FACTOR))
        if _sustained(jump, limit):
            best = jump
            for _ in range(d.ramp_max_steps):
                point = step(_rate(best) * plan.RAMP_FACTOR)
                if not _sustained(point, limit):
                    failed = point
                    break
                best = point
        else:
            failed = jump
        refinements = 0
        while (
            failed is not None
            and _rate(failed) > plan.KNEE_PRECISION * _rate(best)
            and refinements < d.ramp_refinements
        ):
            settle()
            middle = step((_rate(best) * _rate(failed)) ** 0.5)
            if _sustained(middle, limit):
                best = middle
            else:
                failed = middle
            refinements += 1
        settle()
        return Saturation(probe, points, best, sustained=True)

    def endpoint_runs(
        self,
        server: BenchServer,
        variant: Variant,
        endpoint: str,
        targets: Path,
        fractions: Sequence[float],
        fixed_s: float,
    ) -> EndpointRuns:
        self.warm_up(server, variant, targets)
        saturation = self.saturate_once_more_if_disturbed(server, variant, endpoint, targets)
        runs = EndpointRuns(endpoint, saturation)
        for fraction in fractions:
            rate = fraction * saturation.throughput
            if rate < 1:
                continue
            label = f"{fraction:.0%}"
            attack = vegeta.Attack.constant(
                targets, rate, fixed_s, max_workers=plan.OPEN_LOOP_MAX_WORKERS
            )
            run = self.measure(server, variant, endpoint, attack, "fixed", label)
            if _disturbed(run):
                self.run.problems.append(
                    f"{variant.name} {endpoint} at {label}: {_disturbance(run)}; measured "
                    f"again after {plan.RETRY_PAUSE_S:g} s (the first attempt is in "
                    "results.json)"
                )
                runs.retried[label] = run
                time.sleep(plan.RETRY_PAUSE_S)
                run = self.measure(server, variant, endpoint, attack, "fixed", label)
            runs.fixed[label] = run
        return runs

    def saturate_once_more_if_disturbed(
        self, server: BenchServer, variant: Variant, endpoint: str, targets: Path
    ) -> Saturation:
        """The product's own saturation, measured again once when its ramp failed early on
        dependency failures (a knee under half the closed-loop probe's throughput): on this
        shared box that is another engineer's test freezing DynamoDB Local or Cassandra, not
        the service."""
        saturation = self.saturate(server, variant, endpoint, targets)
        early = saturation.throughput < plan.RETRY_KNEE_SHARE * saturation.closed_loop
        if not early or not any(_disturbed(m) for m in saturation.points):
            return saturation
        self.run.problems.append(
            f"{variant.name} {endpoint}: the ramp stopped at {saturation.throughput:.0f} req/s "
            "on dependency failures, under half of the closed-loop probe; measured again after "
            f"{plan.RETRY_PAUSE_S:g} s (the first ramp is in results.json)"
        )
        time.sleep(plan.RETRY_PAUSE_S)
        again = self.saturate(server, variant, endpoint, targets)
        again.first_attempt = saturation
        return again

    # --- sections -------------------------------------------------------------------------
    def product(self, endpoints: Sequence[str], with_profile: bool) -> None:
        with self.server(PRODUCT) as (server, targets):
            for endpoint in endpoints:
                self.say(f"product: {endpoint}")
                self.run.product[endpoint] = self.endpoint_runs(
                    server,
                    PRODUCT,
                    endpoint,
                    targets[endpoint],
                    plan.LOAD_FRACTIONS,
                    self.durations.fixed_s,
                )
            if with_profile:
                self.profile(server, targets["feed"])

    def profile(self, server: BenchServer, targets: Path) -> None:
        feed = self.run.product.get("feed")
        if feed is None:
            self.warm_up(server, PRODUCT, targets)
            feed = EndpointRuns("feed", self.saturate(server, PRODUCT, "feed", targets))
            self.run.product.setdefault("feed", feed)
        rate = 0.7 * feed.saturation.throughput
        self.run.profile_rate = rate
        duration = self.durations.profile_s
        self.say(f"profile: py-spy on the feed at {rate:.0f} req/s for {duration:g} s")
        stream = self._stream(targets)
        attack = vegeta.Attack.constant(
            stream.next_file(), rate, duration + 2, max_workers=plan.OPEN_LOOP_MAX_WORKERS
        )
        # Its results are not read: the stream moves on by what the attack was due to send.
        stream.advance(round(rate * (duration + 2)))
        out = self.run.work_dir / "profile-feed.txt"
        raw = self.run.work_dir / "vegeta" / "profile.bin"
        load = subprocess.Popen(
            attack.argv(self.vegeta, raw), env=vegeta.attack_env(), stderr=subprocess.DEVNULL
        )
        try:
            time.sleep(1)
            command, path = profiling.record(self.py_spy, server.pid, duration, out)
        finally:
            load.wait(timeout=duration + 30)
        self.run.profile = profiling.analyse(path, command)

    def ablation(self, ablation: Ablation) -> None:
        self.say(f"ablation {ablation.name}: {ablation.title}")
        runs = AblationRuns(ablation)
        self.run.ablations.append(runs)
        with contextlib.ExitStack() as stack:
            servers = [stack.enter_context(self.server(v)) for v in ablation.variants]
            for variant, (server, _) in zip(ablation.variants, servers, strict=True):
                runs.started_s[variant.name] = server.started_s
            for endpoint in ablation.endpoints:
                by_variant: dict[str, EndpointRuns] = {}
                runs.runs[endpoint] = by_variant
                for variant, (server, targets) in zip(ablation.variants, servers, strict=True):
                    self.warm_up(server, variant, targets[endpoint])
                    saturation = self.saturate(server, variant, endpoint, targets[endpoint])
                    by_variant[variant.name] = EndpointRuns(endpoint, saturation)
                for repeat in range(ablation.closed_loop_repeats):
                    order = list(zip(ablation.variants, servers, strict=True))
                    if repeat % 2 == 0:
                        order.reverse()
                    for variant, (server, targets) in order:
                        attack = vegeta.Attack.closed(
                            targets[endpoint], plan.PROBE_WORKERS, self.durations.probe_s
                        )
                        by_variant[variant.name].saturation.repeats.append(
                            self.measure(
                                server,
                                variant,
                                endpoint,
                                attack,
                                "probe",
                                f"closed loop, {plan.PROBE_WORKERS} workers, repeat {repeat + 1}",
                            )
                        )
                if not ablation.fixed:
                    continue
                common = 0.7 * min(r.saturation.throughput for r in by_variant.values())
                runs.common_rate[endpoint] = common
                base = self.durations.ablation_fixed_s
                wanted = ablation.min_fixed_requests / max(common, 1e-9)
                duration = max(base, min(ablation.max_fixed_factor * base, wanted))
                for variant, (server, targets) in zip(ablation.variants, servers, strict=True):
                    # Warmed again right before its run: the variants are measured one after
                    # the other, and without it the first one's catalog entries had expired
                    # while the others ramped (the 07:39 run of 2026-12-02: 0.48 catalog calls
                    # per feed request for the product, 0.06 for the last variant).
                    self.warm_up(server, variant, targets[endpoint], "warm-up again")
                    attack = vegeta.Attack.constant(
                        targets[endpoint],
                        common,
                        duration,
                        max_workers=plan.OPEN_LOOP_MAX_WORKERS,
                    )
                    by_variant[variant.name].fixed["common"] = self.measure(
                        server, variant, endpoint, attack, "fixed", f"{common:.0f} req/s"
                    )

    def micro(self) -> None:
        d = self.durations
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("RECS_")}, **self.env}
        sizes = [f"--users={self.dataset.users}", f"--items={self.dataset.items}"]
        counts = {
            "scylla": d.scylla_reps,
            "dynamodb": d.dynamodb_calls,
            "catalog": d.catalog_calls,
            "serialization": d.serialization_loops,
        }
        for what, count in counts.items():
            self.say(f"micro: {what}")
            out = self.run.work_dir / f"micro-{what}.json"
            argv = [what, f"--calls={count}", *sizes, f"--out={out}"]
            done = subprocess.run(
                [sys.executable, "-m", "loadtests.bench.micro", *argv],
                cwd=REPO,
                env=env,
                capture_output=True,
                text=True,
                timeout=900,
            )
            if done.returncode != 0:
                self.run.problems.append(f"micro {what} failed: {done.stdout[-1500:]}")
                continue
            self.run.micro[what] = micro.summarize(json.loads(out.read_text()))


def _rate(measurement: Measurement) -> float:
    return measurement.result.attack.rate or 0.0


def _served(m: Measurement) -> bool:
    """Served on time: the offered rate answered (97 %), no failures, not degraded."""
    result = m.result
    offered = _rate(m) * result.attack.duration_s
    return (
        offered > 0
        and result.ok >= plan.MIN_SERVED_SHARE * offered
        and m.http_failure_share <= plan.MAX_HTTP_FAILURE_SHARE
        and (m.degraded_share or 0.0) <= plan.MAX_DEGRADED_SHARE
    )


def _disturbed(m: Measurement) -> bool:
    """Failures beyond what load explains: HTTP failures or degraded answers over 5 %."""
    return (
        m.http_failure_share > plan.DISTURBED_SHARE
        or (m.degraded_share or 0.0) > plan.DISTURBED_SHARE
    )


def _disturbance(m: Measurement) -> str:
    return (
        f"{m.result.failed} HTTP failures and dependency failures on "
        f"{(m.degraded_share or 0.0):.1%} of answers (box CPU {m.cpu.box_busy:.0%} busy)"
    )


@dataclass(frozen=True)
class KneeLimits:
    """How long a ramp step's median and p95 may get and the step still count as sustained:
    the light step's, each at most KNEE_FACTOR times as long plus KNEE_SLACK_MS.

    The p95 and not the p99: a step of a few seconds holds a few thousand answers, and 1 %
    of them is one stall of the shared box; 5 % is a queue that lasted."""

    p50_ms: float
    p95_ms: float

    @classmethod
    def above(cls, light: vegeta.Result) -> KneeLimits:
        return cls(_limit(light.percentile(50)), _limit(light.percentile(95)))

    def allow(self, result: vegeta.Result) -> bool:
        p50, p95 = result.percentile(50), result.percentile(95)
        return p50 is not None and p95 is not None and p50 <= self.p50_ms and p95 <= self.p95_ms


def _limit(light_ms: float | None) -> float:
    light = light_ms or 0.0
    return max(plan.KNEE_FACTOR * light, light + plan.KNEE_SLACK_MS)


def _sustained(m: Measurement, limits: KneeLimits) -> bool:
    return _served(m) and limits.allow(m.result)


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in text)[:120]


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


# --- command line ------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m loadtests.bench",
        description="Open-loop benchmark of the service against the local stack "
        "(docs/benchmark.md is its report).",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny durations, and without --only just the floor, feed and similar (a smoke run)",
    )
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated sections: "
        + ", ".join(plan.SECTIONS)
        + " (default: all; with --quick: "
        + ", ".join(plan.QUICK_SECTIONS)
        + ")",
    )
    parser.add_argument(
        "--out",
        type=Path,
        help=f"the Markdown report (default {DEFAULT_OUT.relative_to(REPO)}; with --quick "
        f"{QUICK_OUT.relative_to(REPO)}, so a smoke run never replaces the real report)",
    )
    parser.add_argument("--data", type=Path, default=REPO / "data" / "demo", help="demo folder")
    parser.add_argument(
        "--skip-load", action="store_true", help="do not check or load the data into the stack"
    )
    parser.add_argument(
        "--no-stack-up", action="store_true", help="fail when the stack is down (do not start it)"
    )
    parser.add_argument(
        "--scale", type=float, default=1.0, help="multiply every duration (e.g. 0.5, 2)"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="RECS_X=VALUE",
        help="a setting for every server variant (e.g. another keyspace); repeatable",
    )
    parser.add_argument("--work-dir", type=Path, help="raw results (default reports/bench/<time>)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.add_argument(
        "--render",
        type=Path,
        metavar="RUN_PICKLE",
        help="only write the report again from a finished run (its work dir's run.pickle)",
    )
    args = parser.parse_args(argv)
    sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(sections) - set(plan.SECTIONS))
    if unknown:
        parser.error(f"unknown sections {unknown}; known: {', '.join(plan.SECTIONS)}")
    if args.out is None:
        args.out = QUICK_OUT if args.quick else DEFAULT_OUT
    default = plan.QUICK_SECTIONS if args.quick else plan.SECTIONS
    args.sections = sections or list(default)
    for setting in args.set:
        name, sep, _ = setting.partition("=")
        if not sep or not name.startswith("RECS_"):
            parser.error(f"--set {setting!r}: expected RECS_NAME=VALUE")
    return args


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    from loadtests.bench import report

    # SIGTERM (and SIGINT, even when a non-interactive shell started us with it ignored) end
    # the run through the `finally`s: every server started is stopped, the report written.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    args = parse_args(argv)
    if args.render:
        with args.render.open("rb") as saved:
            finished: BenchRun = pickle.load(saved)  # our own file, written by a run
        args.out.write_text(report.markdown(finished))
        print(f"report: {args.out} (from {args.render})")
        return 0
    durations = plan.QUICK if args.quick else plan.FULL
    if args.scale != 1.0:
        durations = durations.scaled(args.scale)
    started = dt.datetime.now(dt.UTC)
    work_dir = args.work_dir or REPO / "reports" / "bench" / started.strftime("%Y%m%dT%H%M%SZ")
    work_dir.mkdir(parents=True, exist_ok=True)
    command = "python -m loadtests.bench" + (
        " " + shlex.join(argv if argv is not None else sys.argv[1:])
        if (argv if argv is not None else sys.argv[1:])
        else ""
    )
    run = BenchRun(
        command=command,
        started=started,
        options={"sections": args.sections, "quick": args.quick, "scale": args.scale},
        durations=durations,
        machine=machine.describe(),
        load_start=machine.load_average(),
        work_dir=work_dir,
    )

    def say(message: str) -> None:
        if not args.quiet:
            print(f"[{dt.datetime.now():%H:%M:%S}] {message}", flush=True)

    vegeta_bin = _cache_bin("vegeta")
    if not vegeta_bin.is_file():
        print(f"vegeta not found at {vegeta_bin}: run `bash scripts/tools.sh`", file=sys.stderr)
        return 2
    py_spy = Path(sys.executable).parent / "py-spy"
    if "profile" in args.sections and not (py_spy.is_file() or shutil.which("py-spy")):
        print("py-spy not found: `make install` (bench group)", file=sys.stderr)
        return 2
    try:
        env = environment.ensure_stack(start=not args.no_stack_up, say=say)
        run.stack = "Cassandra 5 (ScyllaDB stand-in), DynamoDB Local, reference catalog service"
        run.data_status = environment.ensure_data(args.data, env, load=not args.skip_load, say=say)
    except environment.SetupError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    dataset = workload.Dataset.from_dir(args.data)
    run.dataset = dataset.describe()
    server_env = {
        **env,
        "RECS_BACKEND": "remote",
        "RECS_API_KEYS": API_KEY,
        "RECS_SHUTDOWN_GRACE_S": "2",
        **dict(setting.split("=", 1) for setting in args.set),
    }
    bench = Bench(
        run,
        durations=durations,
        env=server_env,
        dataset=dataset,
        vegeta_bin=vegeta_bin,
        py_spy=py_spy,
        verbose=not args.quiet,
    )
    sections = args.sections
    try:
        if "micro" in sections:
            bench.micro()
        endpoints = [e for e in plan.PRODUCT_ENDPOINTS if e in sections]
        if endpoints or "profile" in sections:
            bench.product(endpoints, with_profile="profile" in sections)
        for ablation in plan.ABLATIONS:
            if ablation.name in sections:
                bench.ablation(ablation)
    finally:
        run.load_end = machine.load_average()
        run.finished = dt.datetime.now(dt.UTC)
        (work_dir / "results.json").write_text(json.dumps(report.to_json(run), indent=1))
        with (work_dir / "run.pickle").open("wb") as out:
            pickle.dump(run, out)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(report.markdown(run))
        say(f"report: {args.out} (raw results in {work_dir})")
    return 0

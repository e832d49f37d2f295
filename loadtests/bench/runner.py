"""`python -m loadtests.bench`: the benchmark, from a ready stack to docs/benchmark.md.

The stack runs and holds the demo before it starts (`make bench` sees to both); it is never
started, loaded or stopped here.

Each selected section (`plan`) runs on servers started on free ports and stopped at its end:
the micro-benchmarks, the product's endpoints (warm-up, the knee, then 50 % and 70 % of it,
open loop), the profile, the ablations. Raw output and `results.json` go to
reports/bench/<time>/, the report rendered from it (`report`) to `--out`.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import json
import os
import shlex
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from loadtests.bench import machine, micro, plan, prom, report, vegeta, workload
from loadtests.bench import profile as profiling
from loadtests.bench.plan import Ablation, Durations
from loadtests.bench.processes import BenchServer, CpuTimes, CpuUse
from loadtests.bench.variants import PRODUCT, Variant
from scripts import procs, stack, tools

REPO = Path(__file__).resolve().parents[2]
API_KEY = "bench-key"

DEFAULT_OUT = REPO / "docs" / "benchmark.md"
QUICK_OUT = REPO / "reports" / "bench-quick.md"


# --- what a run measured -----------------------------------------------------------------------


@dataclass
class Measurement:
    kind: str  # "probe" | "ramp" | "fixed"
    label: str
    result: vegeta.Result
    cpu: CpuUse
    metrics: prom.RunMetrics
    load_before: float
    # The targets file and the line of it the attack started at (`workload.TargetStream`).
    targets: Path | None = None
    targets_from: int = 0

    @property
    def degraded_share(self) -> float | None:
        """Failed dependency calls (timeouts, errors, open breakers) per answer: an upper
        bound of the share of degraded answers (None without dependency metrics)."""
        if not self.result.ok or not (
            self.metrics.dependencies or self.metrics.dependency_failures
        ):
            return None
        return self.metrics.failed_calls / self.result.ok

    @property
    def http_failure_share(self) -> float:
        return self.result.failed / self.result.requests if self.result.requests else 1.0

    @property
    def cpu_us_per_request(self) -> float | None:
        return self.cpu.per_request_us(self.result.requests)

    def summary(self) -> dict[str, Any]:
        cpu = self.cpu
        return {
            "label": self.label,
            "kind": self.kind,
            **self.result.summary(),
            "cpu": {
                "us_per_request": self.cpu_us_per_request,
                "main_share": cpu.main_share,
                "main_wait_share": cpu.main_wait_share,
                "box_busy": cpu.box_busy,
            },
            "degraded_share": self.degraded_share,
            "load": self.load_before,
            "targets": {"file": self.targets and str(self.targets), "from": self.targets_from},
            "metrics": self.metrics.summary(),
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
        return self.best.result.served

    @property
    def closed_loop(self) -> float:
        """Closed-loop throughput with PROBE_WORKERS in flight (median over the probes)."""
        return statistics.median(m.result.served for m in [self.probe, *self.repeats])


@dataclass
class EndpointRuns:
    endpoint: str
    saturation: Saturation
    fixed: dict[str, Measurement] = field(default_factory=dict)  # label -> run
    retried: dict[str, Measurement] = field(default_factory=dict)  # first, disturbed attempts

    def summary(self) -> dict[str, Any]:
        s = self.saturation
        return {
            "saturation": s.throughput,
            "sustained": s.sustained,
            "closed_loop": s.closed_loop,
            "probe": s.probe.summary(),
            "probe_repeats": [m.summary() for m in s.repeats],
            "ramp": [m.summary() for m in s.points],
            "knee_step": s.points.index(s.best) if s.best in s.points else None,
            "fixed": {label: m.summary() for label, m in self.fixed.items()},
            "disturbed_fixed": {label: m.summary() for label, m in self.retried.items()},
            "disturbed_ramp": s.first_attempt and [m.summary() for m in s.first_attempt.points],
        }


@dataclass
class AblationRuns:
    ablation: Ablation
    # endpoint -> variant name -> runs (the common load's run is fixed["common"])
    runs: dict[str, dict[str, EndpointRuns]] = field(default_factory=dict)
    common_rate: dict[str, float] = field(default_factory=dict)
    started_s: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        a = self.ablation
        return {
            "name": a.name,
            "title": a.title,
            "what": a.what,
            "histograms": a.histograms,
            "variants": [
                {"name": v.name, "differs": v.summary(), "started_s": self.started_s.get(v.name)}
                for v in a.variants
            ],
            "common_rate": self.common_rate,
            "runs": {
                endpoint: {name: runs.summary() for name, runs in by_variant.items()}
                for endpoint, by_variant in self.runs.items()
            },
        }


@dataclass
class BenchRun:
    command: str
    started: dt.datetime
    durations: Durations
    machine: dict[str, object]
    load_start: tuple[float, float, float]
    options: dict[str, object] = field(default_factory=dict)  # what was asked for
    load_end: tuple[float, float, float] = (0.0, 0.0, 0.0)
    finished: dt.datetime | None = None
    dataset: str = ""
    work_dir: Path = Path()
    product: dict[str, EndpointRuns] = field(default_factory=dict)
    profile: profiling.Profile | None = None
    profile_rate: float | None = None
    micro: dict[str, Any] = field(default_factory=dict)  # "scylla", "dynamodb", ...
    ablations: list[AblationRuns] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    servers: list[dict[str, object]] = field(default_factory=list)

    def results(self) -> dict[str, Any]:
        """Every number of the run as plain data: results.json, and what the report shows."""
        took = (self.finished - self.started).total_seconds() / 60 if self.finished else 0.0
        return {
            "command": self.command,
            "options": self.options,
            "started": self.started.isoformat(),
            "minutes": took,
            "machine": self.machine,
            "load_start": self.load_start,
            "load_end": self.load_end,
            "dataset": self.dataset,
            "work_dir": _relative(self.work_dir),
            "durations": dataclasses.asdict(self.durations),
            "plan": {k: v for k, v in vars(plan).items() if k.isupper() and _number(v)},
            "histogram_edges_ms": vegeta.HISTOGRAM_EDGES_MS,
            "product": {e: runs.summary() for e, runs in self.product.items()},
            "ablations": [a.summary() for a in self.ablations],
            "micro": self.micro,
            "profile": self.profile
            and {**dataclasses.asdict(self.profile), "rate": self.profile_rate},
            "problems": self.problems,
            "servers": self.servers,
        }


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _relative(path: Path) -> str:
    with contextlib.suppress(ValueError):
        return str(path.resolve().relative_to(REPO))
    return str(path)


# --- the bench ---------------------------------------------------------------------------------


class Bench:
    def __init__(
        self,
        run: BenchRun,
        *,
        env: dict[str, str],
        dataset: workload.Dataset,
        vegeta_bin: Path,
        verbose: bool = True,
    ) -> None:
        self.run, self.durations, self.env, self.dataset = run, run.durations, env, dataset
        self.vegeta, self.verbose = vegeta_bin, verbose
        self.now_ms = int(time.time() * 1000)
        self._servers = 0
        self._streams: dict[Path, workload.TargetStream] = {}

    def say(self, message: str) -> None:
        if self.verbose:
            _say(message)

    @contextmanager
    def server(self, variant: Variant) -> Iterator[tuple[BenchServer, dict[str, Path]]]:
        self._servers += 1
        slug = f"{self._servers:02d}-{_slug(variant.name)}"
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
        load_before = os.getloadavg()[0]
        before = prom.Snapshot.scrape(server.url)
        stream = self._stream(attack.targets)
        started_at = stream.position
        attack = replace(attack, targets=stream.next_file())
        cpu_before = CpuTimes.read(server.pid)
        name = _slug(f"{variant.name}-{endpoint}-{kind}-{label}")
        result = vegeta.run(self.vegeta, attack, self.run.work_dir / "vegeta", name)
        cpu = CpuTimes.read(server.pid) - cpu_before
        stream.advance(result.requests)
        metrics = prom.RunMetrics.of(prom.Snapshot.scrape(server.url) - before)
        m = Measurement(kind, label, result, cpu, metrics, load_before, stream.path, started_at)
        self.say(
            f"  {variant.name} {endpoint} {label}: served {result.served:.0f} req/s, "
            f"p50 {report.ms(result.percentile(50))} p99 {report.ms(result.percentile(99))} ms, "
            f"{result.failed} failed, degraded ≤ {report.pct(m.degraded_share)}, "
            f"cpu {m.cpu_us_per_request or 0:.0f} µs/req, "
            f"loop {cpu.main_share:.0%}, box {cpu.box_busy:.0%}"
        )
        return m

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
        self, server: BenchServer, variant: Variant, endpoint: str, targets: Path
    ) -> Saturation:
        """A closed-loop probe estimates the capacity X, a light step (BASELINE_SHARE of X)
        gives the unloaded latencies, steps from RAMP_START of X grow while sustained
        (`_sustained`), then the gap to the first unsustained step is narrowed. The knee is
        the last sustained step's served rate, not the closed-loop maximum: with many requests
        in flight the service batches its reads, and degraded answers past the timeouts are
        cheaper."""
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
            attack = _open_loop(targets, rate, d.ramp_step_s)
            label = f"{rate:.0f} req/s"
            points.append(self.measure(server, variant, endpoint, attack, "ramp", label))
            return points[-1]

        estimate = probe.result.served
        baseline = step(max(1.0, plan.BASELINE_SHARE * estimate))
        for _ in range(3):
            if _served(baseline) or _rate(baseline) <= 1.0:
                break
            time.sleep(d.settle_s)
            baseline = step(max(1.0, _rate(baseline) / 2))
        if not _served(baseline):
            self.run.problems.append(
                f"{variant.name} {endpoint}: not even {_rate(baseline):.0f} req/s was "
                "sustained; the saturation shown is that rate, not a knee"
            )
            return Saturation(probe, points, baseline, sustained=False)
        limits = KneeLimits.above(baseline.result)
        best, failed = baseline, None
        # Jump from the light load to most of the estimate, then climb, then narrow the gap
        # between the last sustained step and the first that was not.
        jump = step(max(plan.RAMP_START * estimate, _rate(baseline) * plan.RAMP_FACTOR))
        if _sustained(jump, limits):
            best = jump
            for _ in range(d.ramp_max_steps):
                point = step(_rate(best) * plan.RAMP_FACTOR)
                if not _sustained(point, limits):
                    failed = point
                    break
                best = point
        else:
            failed = jump
        for _ in range(d.ramp_refinements):
            if failed is None or _rate(failed) <= plan.KNEE_PRECISION * _rate(best):
                break
            time.sleep(d.settle_s)
            middle = step((_rate(best) * _rate(failed)) ** 0.5)
            if _sustained(middle, limits):
                best = middle
            else:
                failed = middle
        time.sleep(d.settle_s)
        return Saturation(probe, points, best, sustained=True)

    def endpoint_runs(
        self,
        server: BenchServer,
        variant: Variant,
        endpoint: str,
        targets: Path,
        fractions: Sequence[float] = plan.LOAD_FRACTIONS,
        fixed_s: float | None = None,
    ) -> EndpointRuns:
        """Its knee, then 50 % and 70 % of it. A run disturbed by another job on the shared
        stack (`_disturbed`) is measured once more; the first attempt stays in results.json."""
        self.warm_up(server, variant, targets)
        saturation = self.saturate(server, variant, endpoint, targets)
        if saturation.throughput < plan.RETRY_KNEE_SHARE * saturation.closed_loop and any(
            _disturbed(m) for m in saturation.points
        ):
            self._retry(f"{variant.name} {endpoint}: the ramp stopped on dependency failures")
            first, saturation = saturation, self.saturate(server, variant, endpoint, targets)
            saturation.first_attempt = first
        runs = EndpointRuns(endpoint, saturation)
        for fraction in fractions:
            rate = fraction * saturation.throughput
            if rate < 1:
                continue
            label = f"{fraction:.0%}"
            attack = _open_loop(targets, rate, fixed_s or self.durations.fixed_s)
            run = self.measure(server, variant, endpoint, attack, "fixed", label)
            if _disturbed(run):
                self._retry(
                    f"{variant.name} {endpoint} at {label}: {run.result.failed} HTTP failures, "
                    f"dependency failures on {report.pct(run.degraded_share)} of answers"
                )
                runs.retried[label] = run
                run = self.measure(server, variant, endpoint, attack, "fixed", label)
            runs.fixed[label] = run
        return runs

    def _retry(self, problem: str) -> None:
        self.run.problems.append(f"{problem}; measured again after {plan.RETRY_PAUSE_S:g} s")
        time.sleep(plan.RETRY_PAUSE_S)

    # --- sections -------------------------------------------------------------------------
    def product(self, endpoints: Sequence[str], with_profile: bool) -> None:
        with self.server(PRODUCT) as (server, targets):
            for endpoint in endpoints:
                self.say(f"product: {endpoint}")
                self.run.product[endpoint] = self.endpoint_runs(
                    server, PRODUCT, endpoint, targets[endpoint]
                )
            if with_profile:
                self.profile(server, targets["feed"])

    def profile(self, server: BenchServer, targets: Path) -> None:
        feed = self.run.product.get("feed")
        if feed is None:
            self.warm_up(server, PRODUCT, targets)
            feed = EndpointRuns("feed", self.saturate(server, PRODUCT, "feed", targets))
            self.run.product["feed"] = feed
        rate = 0.7 * feed.saturation.throughput
        self.run.profile_rate = rate
        duration = self.durations.profile_s
        self.say(f"profile: py-spy on the feed at {rate:.0f} req/s for {duration:g} s")
        stream = self._stream(targets)
        attack = _open_loop(stream.next_file(), rate, duration + 2)
        # Its results are not read: the stream moves on by what the attack was due to send.
        stream.advance(round(rate * (duration + 2)))
        raw = self.run.work_dir / "vegeta" / "profile.bin"
        load = subprocess.Popen(
            attack.argv(self.vegeta, raw), env=vegeta.attack_env(), stderr=subprocess.DEVNULL
        )
        try:
            time.sleep(1)
            out = self.run.work_dir / "profile-feed.txt"
            py_spy = tools.require("py-spy")
            command, path = profiling.record(py_spy, server.pid, duration, out)
        finally:
            load.wait(timeout=duration + 30)
        self.run.profile = profiling.analyse(path, command)

    def ablation(self, ablation: Ablation) -> None:
        """Every variant started, each one's knee, then all at 70 % of the smallest knee, each
        warmed up again right before its run so no variant's cache entries aged meanwhile."""
        self.say(f"ablation {ablation.name}: {ablation.title}")
        runs = AblationRuns(ablation)
        self.run.ablations.append(runs)
        with contextlib.ExitStack() as started:
            servers = [(v, *started.enter_context(self.server(v))) for v in ablation.variants]
            for variant, server, _ in servers:
                runs.started_s[variant.name] = server.started_s
            for endpoint in ablation.endpoints:
                by_variant: dict[str, EndpointRuns] = {}
                runs.runs[endpoint] = by_variant
                for variant, server, targets in servers:
                    self.warm_up(server, variant, targets[endpoint])
                    saturation = self.saturate(server, variant, endpoint, targets[endpoint])
                    by_variant[variant.name] = EndpointRuns(endpoint, saturation)
                for repeat in range(ablation.closed_loop_repeats):  # variants alternating
                    for variant, server, targets in servers[:: -1 if repeat % 2 == 0 else 1]:
                        attack = vegeta.Attack.closed(
                            targets[endpoint], plan.PROBE_WORKERS, self.durations.probe_s
                        )
                        by_variant[variant.name].saturation.repeats.append(
                            self.measure(
                                server, variant, endpoint, attack, "probe", f"repeat {repeat + 1}"
                            )
                        )
                common = 0.7 * min(r.saturation.throughput for r in by_variant.values())
                runs.common_rate[endpoint] = common
                base = self.durations.ablation_fixed_s
                wanted = ablation.min_fixed_requests / max(common, 1e-9)
                duration = max(base, min(ablation.max_fixed_factor * base, wanted))
                for variant, server, targets in servers:
                    self.warm_up(server, variant, targets[endpoint], "warm-up again")
                    attack = _open_loop(targets[endpoint], common, duration)
                    by_variant[variant.name].fixed["common"] = self.measure(
                        server, variant, endpoint, attack, "fixed", f"{common:.0f} req/s"
                    )

    def micro(self) -> None:
        d = self.durations
        env = {**procs.env_without_settings(), **self.env}
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


class SetupError(RuntimeError):
    """The stack or the data is not there: `make bench` provides both."""


def open_bench(
    run: BenchRun, data: Path, settings: Mapping[str, str], *, verbose: bool = True
) -> Bench:
    """A bench against the running local stack, with the demo in `data` loaded in it, and
    `settings` (`RECS_*`) for every server it starts."""
    down = [s.server for s in stack.status() if s.pid is None or not s.ready]
    if down:
        raise SetupError(f"the local stack is not up ({', '.join(down)} down): run `make stack-up`")
    if not (data / "manifest.json").is_file():
        raise SetupError(f"no demo in {data}: run `make bench`, or `recs demo ensure` and load")
    dataset = workload.Dataset.from_dir(data)
    run.dataset = dataset.describe()
    env = {
        **stack.client_env(),
        "RECS_BACKEND": "remote",
        "RECS_API_KEYS": API_KEY,
        "RECS_CURSOR_SECRET": "bench-cursor-secret",
        "RECS_SHUTDOWN_GRACE_S": "2",
        **settings,
    }
    return Bench(run, env=env, dataset=dataset, vegeta_bin=tools.require("vegeta"), verbose=verbose)


# --- the knee ----------------------------------------------------------------------------------


def _open_loop(targets: Path, rate: float, seconds: float) -> vegeta.Attack:
    return vegeta.Attack.constant(targets, rate, seconds, max_workers=plan.OPEN_LOOP_MAX_WORKERS)


def _rate(m: Measurement) -> float:
    return m.result.attack.rate or 0.0


def _served(m: Measurement) -> bool:
    """Served on time: the offered rate answered (97 %), no failures, not degraded."""
    offered = _rate(m) * m.result.attack.duration_s
    return (
        offered > 0
        and m.result.ok >= plan.MIN_SERVED_SHARE * offered
        and m.http_failure_share <= plan.MAX_HTTP_FAILURE_SHARE
        and (m.degraded_share or 0.0) <= plan.MAX_DEGRADED_SHARE
    )


def _disturbed(m: Measurement) -> bool:
    """Failures beyond what load explains: HTTP failures or degraded answers over 5 %."""
    return (
        m.http_failure_share > plan.DISTURBED_SHARE
        or (m.degraded_share or 0.0) > plan.DISTURBED_SHARE
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
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in text).strip("-")[:120]


def _say(message: str) -> None:
    print(f"[{dt.datetime.now():%H:%M:%S}] {message}", flush=True)


# --- command line ------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m loadtests.bench",
        description="Open-loop benchmark of the service against the local stack.",
    )
    add = parser.add_argument
    add("--quick", action="store_true", help="tiny durations; without --only: floor,feed,similar")
    add("--only", default="", help=f"comma-separated sections of: {', '.join(plan.SECTIONS)}")
    add("--out", type=Path, help="the report (docs/benchmark.md; --quick: reports/bench-quick.md)")
    add("--data", type=Path, default=REPO / "data" / "demo", help="the demo, loaded in the stack")
    add("--set", action="append", default=[], metavar="RECS_X=V", help="a setting for every server")
    add("--work-dir", type=Path, help="raw results (default reports/bench/<time>)")
    add("--render", type=Path, metavar="RESULTS_JSON", help="only render a run's report again")
    args = parser.parse_args(argv)
    sections = [s.strip() for s in args.only.split(",") if s.strip()]
    if unknown := sorted(set(sections) - set(plan.SECTIONS)):
        parser.error(f"unknown sections {unknown}; known: {', '.join(plan.SECTIONS)}")
    args.sections = sections or list(plan.QUICK_SECTIONS if args.quick else plan.SECTIONS)
    # A smoke run never replaces the real report.
    args.out = args.out or (QUICK_OUT if args.quick else DEFAULT_OUT)
    for setting in args.set:
        if not setting.startswith("RECS_") or "=" not in setting:
            parser.error(f"--set {setting!r}: expected RECS_NAME=VALUE")
    return args


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.render:
        report.write(json.loads(args.render.read_text()), args.out)
        print(f"report: {args.out} (from {args.render})")
        return 0
    # SIGTERM (and SIGINT, even when a non-interactive shell started us with it ignored) end
    # the run through the `finally`s: every server started is stopped, the report written.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    started = dt.datetime.now(dt.UTC)
    work_dir = args.work_dir or REPO / "reports" / "bench" / started.strftime("%Y%m%dT%H%M%SZ")
    work_dir.mkdir(parents=True, exist_ok=True)
    given = list(sys.argv[1:] if argv is None else argv)
    run = BenchRun(
        command=shlex.join(["python", "-m", "loadtests.bench", *given]),
        started=started,
        options={"sections": args.sections, "quick": args.quick},
        durations=plan.QUICK if args.quick else plan.FULL,
        machine=machine.describe(),
        load_start=os.getloadavg(),
        work_dir=work_dir,
    )
    try:
        if "profile" in args.sections:
            tools.require("py-spy")
        bench = open_bench(run, args.data, dict(setting.split("=", 1) for setting in args.set))
    except (SetupError, tools.ToolMissing) as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    try:
        if "micro" in args.sections:
            bench.micro()
        endpoints = [e for e in plan.PRODUCT_ENDPOINTS if e in args.sections]
        if endpoints or "profile" in args.sections:
            bench.product(endpoints, with_profile="profile" in args.sections)
        for ablation in plan.ABLATIONS:
            if ablation.name in args.sections:
                bench.ablation(ablation)
    finally:
        run.load_end = os.getloadavg()
        run.finished = dt.datetime.now(dt.UTC)
        results = run.results()
        (work_dir / "results.json").write_text(json.dumps(results, indent=1))
        report.write(results, args.out)
        _say(f"report: {args.out} (raw results in {work_dir})")
    return 0

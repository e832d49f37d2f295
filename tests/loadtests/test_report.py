"""docs/benchmark.md rendered from a made-up run whose verdicts are known in advance: the
numbers go through `BenchRun.results()` (what results.json holds) into the template."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import pytest

from loadtests.bench import plan, prom, report, vegeta
from loadtests.bench.micro import summarize
from loadtests.bench.processes import CpuUse
from loadtests.bench.profile import Profile
from loadtests.bench.runner import (
    AblationRuns,
    BenchRun,
    EndpointRuns,
    Measurement,
    Saturation,
)
from loadtests.bench.variants import NAIVE, PRODUCT

GC = (PRODUCT, PRODUCT.with_env("default GC", {"RECS_GC_THRESHOLDS": "700,10,10"}))


def histogram(count: float, seconds: float) -> prom.HistogramDelta:
    return prom.HistogramDelta(((seconds, count), (math.inf, count)), count, count * seconds)


def metrics(requests: int) -> prom.RunMetrics:
    return prom.RunMetrics(
        loop_lag=histogram(200, 0.001),
        gc={"0": histogram(requests / 10, 0.0002), "1": histogram(3, 0.001), "2": histogram(0, 0)},
        dependencies={"scylla/neighbours": histogram(requests, 0.002)},
        dependency_failures={},
        cache_hit_ratio={"neighbours": 0.9, "catalog": None},
        cache_lookups={"neighbours": requests * 20.0, "catalog": 0.0},
        cql_hops=requests / 2,
        server_requests={"/v1/users/{user_id}/recommendations": histogram(requests, 0.003)},
    )


def run_at(rate: float | None, latency_ms: float, label: str, kind: str = "fixed") -> Measurement:
    """A run of 10 s at `rate` (None: closed loop) whose answers all took `latency_ms`."""
    requests = round((rate or 100.0) * 10)
    attack = vegeta.Attack(Path("feed.jsonl"), 10.0, rate)
    result = vegeta.Result(
        attack, requests, {"200": requests}, {}, [latency_ms] * requests, 10.0, [100] * 10
    )
    cpu = CpuUse(10.0, 5.0, 6.0, 12.0, 20.0, 0.1)
    return Measurement(kind, label, result, cpu, metrics(requests), 0.5)


def endpoint(knee: float, p99_ms: float, common: bool = False) -> EndpointRuns:
    """An endpoint whose ramp stopped past `knee` and whose fixed runs took `p99_ms`."""
    ramp = [run_at(knee * 0.25, 1.0, "light", "ramp"), run_at(knee, 1.5, "knee", "ramp")]
    ramp.append(run_at(knee * 1.3, 50.0, "past", "ramp"))
    saturation = Saturation(run_at(None, 1.0, "probe", "probe"), ramp, ramp[1], sustained=True)
    runs = EndpointRuns("feed", saturation)
    fractions = {"common": 0.7} if common else {"50%": 0.5, "70%": 0.7}
    for label, fraction in fractions.items():
        runs.fixed[label] = run_at(knee * fraction, p99_ms, label)
    return runs


def bench_run(**product: EndpointRuns) -> BenchRun:
    started = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)
    machine = {
        "cpu_model": "test CPU",
        "cores": 2,
        "memory_gib": 24.0,
        "kernel": "Linux",
        "python": "3.11",
        "packages": {"fastapi": "1"},
        "vegeta": "v12",
        "git": "abc",
        "app_changes": [],
    }
    return BenchRun(
        command="python -m loadtests.bench",
        started=started,
        durations=plan.QUICK,
        machine=machine,
        load_start=(0.1, 0.2, 0.3),
        finished=started + dt.timedelta(minutes=3),
        product=dict(product),
    )


def verdict_lines(run: BenchRun) -> list[str]:
    page = report.render(json.loads(json.dumps(run.results())))  # as read back from the file
    verdicts = ("- **PASS** ", "- **MISS** ", "- **NOT MEASURED** ")
    return [line for line in page.splitlines() if line.startswith(verdicts)]


def test_a_p99_under_its_target_passes_and_one_over_it_misses() -> None:
    run = bench_run(floor=endpoint(1000, 1.0), feed=endpoint(200, 9.5), similar=endpoint(600, 6.0))
    lines = verdict_lines(run)
    assert lines[0] == (
        "- **PASS** feed: p99 ≤ 10 ms at 70 % of its saturation: p99 9.5 ms at 140 req/s "
        "(70 % of 200)"
    )
    assert lines[1] == (
        "- **MISS** similar: p99 ≤ 5 ms at 70 % of its saturation: p99 6.0 ms at 420 req/s "
        "(70 % of 600)"
    )
    # 600 of the floor's 1,000 answers per second.
    assert lines[-1].startswith(
        "- **PASS** similar (warm cache): ≥ 50 % of the framework floor's throughput: "
        "600 vs 1,000 req/s = 60 %"
    )


def test_similar_under_half_of_the_floor_misses() -> None:
    lines = verdict_lines(bench_run(floor=endpoint(1000, 1.0), similar=endpoint(400, 2.0)))
    assert lines[-1].startswith("- **MISS** similar (warm cache)")


def test_the_naive_baseline_targets_compare_knees_and_p99s_at_one_load() -> None:
    naive = AblationRuns(next(a for a in plan.ABLATIONS if a.name == "naive"))
    naive.runs["feed"] = {
        "product": endpoint(200, 2.0, common=True),
        "naive": endpoint(40, 10.0, common=True),
    }
    run = bench_run()
    run.ablations.append(naive)
    lines = verdict_lines(run)
    assert lines[0].startswith("- **NOT MEASURED** feed: p99 ≤ 10 ms")
    assert lines[2] == (
        "- **PASS** feed: the product ≥ 4× the naive baseline's saturation throughput: "
        "200 vs 40 req/s: 5.00×"
    )
    assert lines[3].startswith("- **PASS** feed: the product's p99 ≤ 1/4 of the naive")
    naive.runs["feed"]["naive"] = endpoint(100, 4.0, common=True)
    assert [line[:10] for line in verdict_lines(run)[2:4]] == ["- **MISS**"] * 2


def sample() -> BenchRun:
    """A run with every section of the report."""
    run = bench_run(floor=endpoint(1000, 1.0), feed=endpoint(200, 9.5), similar=endpoint(600, 6))
    run.problems.append("feed at 70%: measured again")
    gc = AblationRuns(next(a for a in plan.ABLATIONS if a.name == "gc"))
    gc.runs["feed"] = {v.name: endpoint(200 - i, 3.0 + i, True) for i, v in enumerate(GC)}
    gc.common_rate["feed"] = 140.0
    gc.started_s = {v.name: 2.0 for v in gc.ablation.variants}
    naive = AblationRuns(next(a for a in plan.ABLATIONS if a.name == "naive"))
    naive.runs["feed"] = {PRODUCT.name: endpoint(200, 2, True), NAIVE.name: endpoint(40, 10, True)}
    run.ablations += [gc, naive]
    case = {"params": {"keys": 10, "strategy": "in-100"}, "extra_info": {"cpu_s": [0.001]}}
    stats = {"rounds": 3, "min": 0.001, "median": 0.002, "mean": 0.002, "data": [0.001, 0.002]}
    run.micro["scylla"] = summarize({"benchmarks": [{**case, "stats": stats}]})
    run.profile = Profile(10, [("f (app/x.py)", 4)], [], [("app: ranking", 6)], "py-spy", "raw")
    return run


def test_every_section_renders(tmp_path: Path) -> None:
    run = sample()
    out = tmp_path / "benchmark.md"
    report.write(json.loads(json.dumps(run.results())), out)
    page = out.read_text()
    for heading in (
        "## Targets",
        "## Machine and setup",
        "## The product, per endpoint",
        "### personalized feed (`GET /v1/users/{id}/recommendations?limit=20`)",
        "### Event-loop lag and GC pauses per run",
        "## Ablations",
        "### gc: Tuned GC (7000,20,20 + freeze) vs CPython's defaults (700,10,10)",
        "### naive: The product vs the naive baseline",
        "## Micro-benchmarks",
        "## Profile of the feed under load",
    ):
        assert f"\n{heading}\n" in page, heading
    assert "| ramp (knee) | 200 | 200 | 1.5 |" in page
    assert "| keys 10, strategy in-100 | 3 | 1 | 1,000 | 2,000 | 2,000 | 1,000 |" in page
    assert "- feed at 70%: measured again" in page


@pytest.mark.parametrize("verdict", ["PASS", "MISS"])
def test_render_flag_writes_the_report_again_from_results_json(
    tmp_path: Path, verdict: str
) -> None:
    from loadtests.bench.runner import main

    p99 = 9.0 if verdict == "PASS" else 11.0
    results = tmp_path / "results.json"
    results.write_text(json.dumps(bench_run(feed=endpoint(200, p99)).results()))
    assert main(["--render", str(results), "--out", str(tmp_path / "b.md")]) == 0
    assert f"- **{verdict}** feed: p99 ≤ 10 ms" in (tmp_path / "b.md").read_text()

"""docs/benchmark.md from a `BenchRun`: machine, method, targets, tables; and its JSON twin."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loadtests.bench import plan, vegeta
from loadtests.bench import profile as profiling
from loadtests.bench.prom import HistogramDelta

if TYPE_CHECKING:
    from loadtests.bench.runner import AblationRuns, BenchRun, EndpointRuns, Measurement

REPO = Path(__file__).resolve().parents[2]
ENDPOINT_TITLES = {
    "floor": "framework floor (`GET /bench/floor`)",
    "feed": "personalized feed (`GET /v1/users/{id}/recommendations?limit=20`)",
    "similar": "similar items (`GET /v1/items/{id}/similar?limit=12`)",
    "popular": "popular (`GET /v1/popular?limit=20`, 40 % category, 30 % region)",
    "events": "events (`POST /v1/events`, one event)",
}


# --- formatting --------------------------------------------------------------------------------


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], align: str = "") -> str:
    align = align or "l" + "r" * (len(headers) - 1)
    marks = {"l": "---", "r": "---:", "c": ":---:"}
    lines = [
        "| " + " | ".join(headers) + " |",
        "| " + " | ".join(marks[a] for a in align) + " |",
    ]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def ms(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    if math.isinf(value):
        return "> last bucket"
    if value < 1 and digits == 1:
        return f"{value:.2f}"
    return f"{value:.{digits}f}"


def sec_ms(value: float | None) -> str:
    """A duration in seconds, shown in ms."""
    return "-" if value is None else ms(value * 1000)


def rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def pct(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value * 100:.{digits}f} %"


def ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}×"


def _div(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


# --- targets -----------------------------------------------------------------------------------


def verdicts(run: BenchRun) -> list[tuple[str, str, str]]:
    """(target, what was measured, PASS / MISS / NOT MEASURED)."""
    out: list[tuple[str, str, str]] = []

    def p99_target(endpoint: str, limit_ms: float) -> None:
        name = f"{endpoint}: p99 ≤ {limit_ms:g} ms at 70 % of its saturation"
        runs = run.product.get(endpoint)
        fixed = runs.fixed.get("70%") if runs else None
        if runs is None or fixed is None:
            out.append((name, "not measured in this run", "NOT MEASURED"))
            return
        p99 = fixed.result.percentile(99)
        measured = (
            f"p99 {ms(p99)} ms at {rate(fixed.result.attack.rate)} req/s "
            f"(70 % of {rate(runs.saturation.throughput)})" + _caveats(fixed)
        )
        out.append((name, measured, "PASS" if p99 is not None and p99 <= limit_ms else "MISS"))

    p99_target("feed", 10)
    p99_target("similar", 5)

    naive = next((a for a in run.ablations if a.ablation.name == "naive"), None)
    by_variant = naive.runs.get("feed") if naive else None
    name_x = "feed: the product ≥ 4× the naive baseline's saturation throughput"
    name_p = "feed: the product's p99 ≤ 1/4 of the naive baseline's, at the baseline's 70 % load"
    if not by_variant or "product" not in by_variant or "naive" not in by_variant:
        out.append((name_x, "not measured in this run", "NOT MEASURED"))
        out.append((name_p, "not measured in this run", "NOT MEASURED"))
    else:
        product, baseline = by_variant["product"], by_variant["naive"]
        speedup = _div(product.saturation.throughput, baseline.saturation.throughput)
        out.append(
            (
                name_x,
                f"{rate(product.saturation.throughput)} vs {rate(baseline.saturation.throughput)}"
                f" req/s: {ratio(speedup)}",
                "PASS" if speedup is not None and speedup >= 4 else "MISS",
            )
        )
        p_fixed, b_fixed = product.fixed.get("common"), baseline.fixed.get("common")
        if p_fixed is None or b_fixed is None:
            out.append((name_p, "not measured", "NOT MEASURED"))
        else:
            p99, b99 = p_fixed.result.percentile(99), b_fixed.result.percentile(99)
            share = _div(p99, b99)
            out.append(
                (
                    name_p,
                    f"at {rate(p_fixed.result.attack.rate)} req/s: p99 {ms(p99)} vs {ms(b99)} ms"
                    f" = {ratio(share)}" + _caveats(p_fixed) + _caveats(b_fixed, "baseline"),
                    "PASS" if share is not None and share <= 0.25 else "MISS",
                )
            )

    floor, similar = run.product.get("floor"), run.product.get("similar")
    name_f = "similar (warm cache): ≥ 50 % of the framework floor's throughput"
    if floor is None or similar is None:
        out.append((name_f, "not measured in this run", "NOT MEASURED"))
    else:
        share = _div(similar.saturation.throughput, floor.saturation.throughput)
        hit = _hit_ratio(similar.saturation.best, "neighbours")
        out.append(
            (
                name_f,
                f"{rate(similar.saturation.throughput)} vs {rate(floor.saturation.throughput)} "
                f"req/s = {pct(share, 0)} (neighbour cache hit ratio during the run {pct(hit)})",
                "PASS" if share is not None and share >= 0.5 else "MISS",
            )
        )
    return out


def _hit_ratio(measurement: Measurement, cache: str) -> float | None:
    if measurement.metrics is None:
        return None
    return measurement.metrics.cache_hit_ratio.get(cache)


def _caveats(measurement: Measurement, who: str = "") -> str:
    notes = []
    result = measurement.result
    if result.attack.rate and result.throughput < 0.97 * result.attack.rate:
        notes.append(f"served {rate(result.throughput)} of {rate(result.attack.rate)} req/s")
    if result.failed:
        notes.append(f"{result.failed} HTTP failures")
    degraded = measurement.degraded_share
    if degraded:
        notes.append(f"dependency failures on ≤ {pct(degraded)} of answers")
    if not notes:
        return ""
    return f" ({who + ': ' if who else ''}{'; '.join(notes)})"


# --- sections ----------------------------------------------------------------------------------


def _header(run: BenchRun) -> list[str]:
    m = run.machine
    took = (run.finished - run.started).total_seconds() / 60 if run.finished else 0
    d = run.durations
    packages = ", ".join(f"{k} {v}" for k, v in dict(m["packages"]).items())  # type: ignore[call-overload]
    changes = m.get("app_changes") or []
    app_state = (
        "no uncommitted changes in app/"
        if not changes
        else f"{len(changes)} uncommitted changes in app/: "  # type: ignore[arg-type]
        + ", ".join(f"`{c}`" for c in changes)  # type: ignore[union-attr]
    )
    load = " / ".join(f"{x:.2f}" for x in run.load_start)
    load_end = " / ".join(f"{x:.2f}" for x in run.load_end)
    return [
        "# Benchmark report",
        "",
        "Generated by the benchmark harness (`loadtests/bench/`); do not edit by hand, run it "
        "again. What the numbers mean and why the hot path is built this way: "
        "[performance.md](performance.md).",
        "",
        f"- Command: `{run.command}` (from the repository root, with `.venv/bin/python`)",
        f"- Date: {run.started:%Y-%m-%d %H:%M} UTC, took {took:.1f} min",
        f"- Raw results: `{_relative(run.work_dir)}` (vegeta output, py-spy stacks, server "
        "logs, `results.json`)",
        "",
        "## Machine and setup",
        "",
        table(
            ["", ""],
            [
                ["CPU", f"{m['cpu_model']}, {m['cores']} cores"],
                ["Memory", f"{m['memory_gib']} GiB"],
                ["Kernel", m["kernel"]],
                ["Python", m["python"]],
                ["Load average at start (1 / 5 / 15 min)", load],
                ["Load average at end", load_end],
                ["Code", f"`{m['git']}`, {app_state}"],
                [
                    "On the same box",
                    f"{run.stack}, vegeta (load generator), other engineers' jobs",
                ],
                ["Dataset", f"{run.dataset}; {run.data_status}"],
                ["vegeta", m["vegeta"]],
                ["Packages", packages],
                [
                    "Durations",
                    f"warm-up at most {d.warmup_s:g} s, closed-loop probe {d.probe_s:g} s, ramp "
                    f"steps {d.ramp_step_s:g} s, fixed-rate runs {d.fixed_s:g} s (ablations "
                    f"{d.ablation_fixed_s:g} s, longer for slow variants: about "
                    "400 requests, at most 3×; naive: 600, at most 20×), profile "
                    f"{d.profile_s:g} s",
                ],
            ],
            "ll",
        ),
        "",
        "## Method",
        "",
        "- Each server is `python -m app`'s own `main()` (same app factory, middleware, "
        "uvicorn with uvloop and httptools, one process) started by "
        "`python -m loadtests.bench.server` on a free port, with the remote backend and the "
        "stack's settings (`scripts/stack.py env`), plus one route, `GET /bench/floor`, "
        "answering a pre-serialized 20-item page: the framework floor. Ablation variants swap "
        "one piece of the product in that process (`loadtests/bench/pieces.py`).",
        "- Requests: vegeta target files drawn once from a fixed seed, ids Zipf-skewed "
        "(s = 1.1) over the demo's users and items like the Locust suite "
        "(`loadtests/bench/workload.py`). Each endpoint is warmed up before it is measured: "
        f"every distinct request of its file once ({plan.WARMUP_WORKERS} workers, at most "
        f"{d.warmup_s:g} s), so the caches hold what the measurements will ask for, as in a "
        "service that has been running (a timed warm-up of 3 s, as earlier reports had, left "
        "most of it cold). The measured attacks on a file are one stream: each goes on where "
        "the last one stopped, so a ramp step sends what comes next, as the fixed-rate runs "
        "do, not the requests the step before it sent (vegeta alone would start each attack "
        "at the file's head).",
        "- **Saturation** is the knee of an open-loop rate ramp. A closed-loop probe "
        f"(`-rate=0 -max-workers={plan.PROBE_WORKERS}`, {d.probe_s:g} s) estimates the "
        f"capacity X; a light constant-rate step at {plan.BASELINE_SHARE:.0%} of X gives the "
        f"unloaded median and p95 latencies; then constant-rate steps of {d.ramp_step_s:g} s from "
        f"{plan.RAMP_START:.0%} of X grow by {plan.RAMP_FACTOR - 1:.0%} while the server "
        f"sustains them: it answers at least {plan.MIN_SERVED_SHARE:.0%} of the offered "
        f"requests successfully, HTTP failures stay under {plan.MAX_HTTP_FAILURE_SHARE:.1%}, "
        f"dependency failures under {plan.MAX_DEGRADED_SHARE:.0%} of answers (each is a "
        "degraded answer: a timeout or an open breaker), and its median and p95 latencies at "
        f"most {plan.KNEE_FACTOR:g}× the light step's (+{plan.KNEE_SLACK_MS:g} ms). More "
        "steps narrow the gap between the last sustained rate and the first that was not "
        f"until they are within {plan.KNEE_PRECISION - 1:.0%} of each other (at most "
        f"{d.ramp_refinements}). The saturation is the served rate of the last sustained step: "
        "the highest load at which queueing in the event loop shows in neither the median "
        "nor the p95 (the median alone let through steps whose p95 was past 100 ms). Why not "
        "the closed-loop maximum (also shown): with many requests in flight the service "
        "batches its reads and writes and serves more per second than it can sustain on a fixed "
        "schedule, so 70 % of a closed-loop maximum was already past the knee on this box "
        "(a first version of this harness measured it that way: its 70 % runs collapsed); "
        "and past the dependencies' timeouts, breakers open and degraded answers, cheaper "
        "than real ones, inflate a closed-loop number.",
        "- **Latency**: open-loop constant rate (`-rate=R`: vegeta adds workers when all are "
        f"busy, up to {plan.OPEN_LOOP_MAX_WORKERS} in flight, so stalls are not hidden) at 50 "
        f"% and 70 % of that saturation, {d.fixed_s:g} s each. Percentiles are nearest-rank "
        "over every successful request, measured by vegeta (client side). vegeta runs with "
        "GOMAXPROCS=1, so it takes at most one of the two cores. `served req/s` in the "
        "tables: successful answers per second of the attack (closed loop: the median of "
        "the per-second counts).",
        "- **Per run**, from the server's /metrics scraped before and after: event-loop lag "
        "(`recs_event_loop_lag_seconds`, a 50 ms sleep-drift sampler) and GC pauses "
        "(`recs_gc_pause_seconds{generation}`), dependency latencies, dependency failures "
        "(timeouts, errors, open breakers: each degrades an answer), cache hit ratios; "
        "quantiles of these histograms are interpolated inside buckets like Prometheus' "
        "`histogram_quantile`. From /proc: the server's CPU time per request (all threads) "
        "and its main thread's (the event loop's) share of a core, the share of the run the "
        "main thread was runnable but waited for a core (schedstat's run delay: the other "
        "processes on the box taking the CPU from it), and how busy the whole box was.",
        "- Ablations run their variants side by side (all started, measured one after the "
        "other): each one's saturation, then all at the same offered load, 70 % of the "
        "smallest saturation among them, each warmed up again right before its run (so "
        "that no variant's cache entries aged while the others were measured). Ratios in "
        "the text are from one run: read them with the box's noise in mind (load average, "
        "box CPU busy and loop lag are in every table); CPU time per request is the "
        "steadiest number.",
    ]


def _relative(path: str | Path) -> str:
    try:
        return str(Path(path).relative_to(REPO))
    except ValueError:
        return str(path)


def _targets(run: BenchRun) -> list[str]:
    lines = ["", "## Targets", ""]
    for name, measured, result in verdicts(run):
        lines.append(f"- **{result}** {name}: {measured}")
    if run.problems:
        lines += ["", "Problems during the run:", ""]
        lines += [f"- {problem}" for problem in run.problems]
    return lines


def _run_row(m: Measurement, label: str | None = None) -> list[object]:
    r = m.result
    offered = "closed loop" if r.attack.rate is None else rate(r.attack.rate)
    served = r.median_per_second if r.attack.rate is None else r.ok / r.attack.duration_s
    lag = m.metrics.loop_lag if m.metrics else None
    return [
        label or m.label,
        offered,
        rate(served),
        ms(r.percentile(50)),
        ms(r.percentile(95)),
        ms(r.percentile(99)),
        ms(r.percentile(99.9)),
        ms(r.max_ms),
        f"{r.failed}" if r.failed else "0",
        pct(m.degraded_share, 2) if m.degraded_share is not None else "n/a",
        rate(m.cpu_us_per_request),
        pct(m.cpu.main_share, 0),
        pct(m.cpu.main_wait_share, 1) if m.cpu.main_wait_share is not None else "-",
        pct(m.cpu.box_busy, 0),
        sec_ms(lag.quantile(0.99)) if lag else "-",
        f"{m.load_before:.1f}",
    ]


RUN_HEADERS = [
    "run",
    "offered req/s",
    "served req/s",
    "p50 ms",
    "p95 ms",
    "p99 ms",
    "p99.9 ms",
    "max ms",
    "HTTP failures",
    "dep. failures / answer",
    "server CPU µs/req",
    "loop thread CPU",
    "loop thread waiting for a core",
    "box CPU busy",
    "loop lag p99 ms",
    "load 1m",
]


def _product(run: BenchRun) -> list[str]:
    if not run.product:
        return []
    floor = run.product.get("floor")
    floor_sat = floor.saturation.throughput if floor else None
    lines = [
        "",
        "## The product, per endpoint",
        "",
        "Saturation, then p50 / p95 / p99 (ms) at 50 % and 70 % of it; ratios to the "
        "framework floor (throughput: endpoint over floor; latency: endpoint minus floor at "
        "the same fraction of each one's own saturation).",
        "",
    ]
    rows = []
    for endpoint, runs in run.product.items():
        sat = runs.saturation.throughput
        row: list[object] = [
            endpoint,
            rate(sat) + ("" if runs.saturation.clean else " (no knee found)"),
            rate(runs.saturation.closed_loop),
            pct(_div(sat, floor_sat), 0) if endpoint != "floor" else "100 %",
        ]
        for label in ("50%", "70%"):
            fixed = runs.fixed.get(label)
            if fixed is None:
                row.append("-")
                continue
            r = fixed.result
            row.append(f"{ms(r.percentile(50))} / {ms(r.percentile(95))} / {ms(r.percentile(99))}")
        seventy = runs.fixed.get("70%")
        floor_seventy = floor.fixed.get("70%") if floor else None
        extra = None
        if seventy and floor_seventy and endpoint != "floor":
            a, b = seventy.result.percentile(50), floor_seventy.result.percentile(50)
            extra = None if a is None or b is None else a - b
        row.append(ms(extra) if endpoint != "floor" else "-")
        row.append(rate(seventy.cpu_us_per_request) if seventy else "-")
        rows.append(row)
    lines.append(
        table(
            [
                "endpoint",
                "saturation req/s (knee)",
                f"closed loop, {plan.PROBE_WORKERS} workers",
                "of floor",
                "at 50 %: p50 / p95 / p99",
                "at 70 %: p50 / p95 / p99",
                "p50 above floor at 70 %",
                "CPU µs/req at 70 %",
            ],
            rows,
        )
    )
    for endpoint, runs in run.product.items():
        lines += ["", f"### {ENDPOINT_TITLES.get(endpoint, endpoint)}", ""]
        sat = runs.saturation
        ms_rows = [_run_row(sat.probe, "probe, closed loop")]
        ms_rows += [_run_row(m, f"ramp{' (knee)' if m is sat.best else ''}") for m in sat.points]
        ms_rows += [_run_row(m, f"{m.label} of saturation") for m in runs.fixed.values()]
        lines.append(table(RUN_HEADERS, ms_rows))
        seventy = runs.fixed.get("70%")
        if seventy and seventy.metrics:
            lines += ["", _dependency_line(seventy)]
    lines += _runtime_table(run)
    return lines


def _dependency_line(m: Measurement) -> str:
    metrics = m.metrics
    assert metrics is not None
    requests = max(1, m.result.requests)
    parts = []
    for name, h in sorted(metrics.dependencies.items()):
        parts.append(
            f"{name} p50 {sec_ms(h.quantile(0.5))} / p99 {sec_ms(h.quantile(0.99))} ms, "
            f"{h.count / requests:.2f} calls per request"
        )
    caches = ", ".join(
        f"{name} {pct(ratio_)} of {metrics.cache_lookups.get(name, 0) / requests:.0f} keys "
        "per request"
        for name, ratio_ in metrics.cache_hit_ratio.items()
        if ratio_ is not None
    )
    failures = ", ".join(f"{k} {v:,.0f}" for k, v in metrics.dependency_failures.items())
    text = f"At 70 %, dependency calls (server side): {'; '.join(parts) or 'none'}."
    if caches:
        text += f" Cache hits: {caches}."
    if failures:
        text += f" Dependency failures: {failures}."
    if metrics.cql_hops:
        text += f" CQL pool hops: {metrics.cql_hops / requests:.2f} per request."
    return text


def _gc_cells(metrics: Any) -> list[object]:
    if metrics is None:
        return ["-"] * 4
    counts = " / ".join(f"{metrics.gc[g].count:,.0f}" for g in ("0", "1", "2"))
    total = sum(h.total for h in metrics.gc.values())
    gen2: HistogramDelta = metrics.gc["2"]
    longest = max((h.max_le or 0.0) for h in metrics.gc.values())
    return [
        counts,
        sec_ms(total),
        sec_ms(gen2.mean) if gen2.count else "-",
        ("≤ " + sec_ms(longest)) if longest else "-",
    ]


def _runtime_table(run: BenchRun) -> list[str]:
    lines = [
        "",
        "### Event-loop lag and GC pauses per run",
        "",
        "Loop lag: how late a 50 ms timer fired (p50 / p99 interpolated in buckets; `max ≤`: "
        "the bucket edge above the longest). GC: collections by generation during the run, "
        "their total pause, the mean gen-2 pause, and the bucket edge above the longest pause.",
        "",
    ]
    rows = [
        _runtime_row(f"{endpoint}, {m.label}", m)
        for endpoint, runs in run.product.items()
        for m in [runs.saturation.probe, *runs.saturation.points, *runs.fixed.values()]
    ]
    lines.append(
        table(
            [
                "run",
                "requests",
                "lag samples",
                "lag p50 ms",
                "lag p99 ms",
                "lag max ≤ ms",
                "GC gen0 / gen1 / gen2",
                "GC pause total ms",
                "gen2 mean ms",
                "longest GC ≤ ms",
            ],
            rows,
        )
    )
    return lines


def _runtime_row(label: str, m: Measurement) -> list[object]:
    metrics = m.metrics
    lag = metrics.loop_lag if metrics else None
    return [
        label,
        f"{m.result.requests:,}",
        f"{lag.count:,.0f}" if lag else "-",
        sec_ms(lag.quantile(0.5)) if lag else "-",
        sec_ms(lag.quantile(0.99)) if lag else "-",
        sec_ms(lag.max_le) if lag and lag.count else "-",
        *_gc_cells(metrics),
    ]


def _ablations(run: BenchRun) -> list[str]:
    if not run.ablations:
        return []
    lines = ["", "## Ablations", ""]
    lines.append(
        table(
            [
                "ablation",
                "endpoint",
                "saturation req/s (first ÷ other)",
                "p99 at the common load",
            ],
            [_ablation_summary(a, e) for a in run.ablations for e in a.runs],
            "llll",
        )
    )
    for ablation_runs in run.ablations:
        lines += _ablation(ablation_runs)
    return lines


def _ablation_summary(runs: AblationRuns, endpoint: str) -> list[object]:
    by_variant = runs.runs[endpoint]
    names = list(by_variant)
    first = by_variant[names[0]]
    parts = []
    for name in names:
        throughput = by_variant[name].saturation.throughput
        part = f"{name}: {rate(throughput)}"
        if name != names[0]:
            part += f" ({names[0]} {ratio(_div(first.saturation.throughput, throughput))})"
        parts.append(part)
    sat = ", ".join(parts)
    p99 = ", ".join(
        f"{name}: {ms(by_variant[name].fixed['common'].result.percentile(99))} ms"
        for name in names
        if "common" in by_variant[name].fixed
    )
    return [runs.ablation.name, endpoint, sat, p99 or "-"]


def _ablation(runs: AblationRuns) -> list[str]:
    a = runs.ablation
    lines = ["", f"### {a.name}: {a.title}", "", a.what, ""]
    lines.append(
        table(
            ["variant", "differs from the product by", "start-up s"],
            [[v.name, v.summary(), f"{runs.started_s.get(v.name, 0):.1f}"] for v in a.variants],
            "llr",
        )
    )
    for endpoint, by_variant in runs.runs.items():
        names = list(by_variant)
        first = by_variant[names[0]]
        lines += ["", f"**{endpoint}**: saturation (the ramps' steps are in `results.json`)", ""]
        rows = []
        for name in names:
            sat = by_variant[name].saturation
            values = [m.result.median_per_second for m in [sat.probe, *sat.repeats]]
            closed = rate(sat.closed_loop)
            if len(values) > 1:
                closed += f" (median of {', '.join(rate(v) for v in values)})"
            rows.append(
                [
                    name,
                    rate(sat.throughput) + ("" if sat.clean else " (no knee found)"),
                    ratio(_div(first.saturation.throughput, sat.throughput)),
                    closed,
                    ratio(_div(first.saturation.closed_loop, sat.closed_loop)),
                    rate(sat.best.cpu_us_per_request),
                    pct(sat.best.cpu.main_share, 0),
                    pct(sat.best.degraded_share, 2)
                    if sat.best.degraded_share is not None
                    else "n/a",
                ]
            )
        lines.append(
            table(
                [
                    "variant",
                    "saturation req/s (knee)",
                    f"{names[0]} ÷ this",
                    f"closed loop, {plan.PROBE_WORKERS} workers, req/s",
                    f"{names[0]} ÷ this",
                    "CPU µs/req at the knee",
                    "loop thread CPU",
                    "dep. failures / answer",
                ],
                rows,
            )
        )
        common = runs.common_rate.get(endpoint)
        if common is None:
            continue
        lines += ["", f"**{endpoint}** at {rate(common)} req/s for every variant", ""]
        fixed = [
            (n, by_variant[n].fixed["common"]) for n in names if "common" in by_variant[n].fixed
        ]
        lines.append(table(RUN_HEADERS, [_run_row(m, n) for n, m in fixed]))
        lines += ["", _dependency_table(fixed)]
        if a.histograms:
            lines += ["", _histogram_table(fixed), "", _gc_table(fixed)]
    return lines


def _dependency_table(fixed: list[tuple[str, Measurement]]) -> str:
    names = sorted({d for _, m in fixed if m.metrics for d in m.metrics.dependencies})
    rows = []
    for variant, m in fixed:
        row: list[object] = [variant]
        for name in names:
            h = m.metrics.dependencies.get(name) if m.metrics else None
            row.append(
                f"{sec_ms(h.quantile(0.5))} / {sec_ms(h.quantile(0.99))} "
                f"({h.count / max(1, m.result.requests):.2f}/req)"
                if h
                else "-"
            )
        hits = m.metrics.cache_hit_ratio if m.metrics else {}
        lookups = m.metrics.cache_lookups if m.metrics else {}
        row.append(
            ", ".join(
                f"{k} {pct(v, 0)} of {lookups.get(k, 0) / max(1, m.result.requests):.0f}/req"
                for k, v in hits.items()
                if v is not None
            )
            or "-"
        )
        rows.append(row)
    headers = ["variant", *(f"{n} p50 / p99 ms (calls per request)" for n in names)]
    return table([*headers, "cache hits (keys per request)"], rows)


def _histogram_table(fixed: list[tuple[str, Measurement]]) -> str:
    edges = vegeta.HISTOGRAM_EDGES_MS
    labels = (
        [f"≤ {edges[0]:g}"]
        + [f"{low:g}–{high:g}" for low, high in itertools.pairwise(edges)]
        + [f"> {edges[-1]:g}"]
    )
    counts = {name: m.result.histogram() for name, m in fixed}
    totals = {name: max(1, sum(c)) for name, c in counts.items()}
    rows = []
    for index, label in enumerate(labels):
        if all(counts[name][index] == 0 for name in counts):
            continue
        row: list[object] = [label]
        for name in counts:
            share = counts[name][index] / totals[name]
            row.append(f"{pct(share)} {_bar(share)}")
        rows.append(row)
    return "Latency histogram (client side, share of requests per bucket, ms):\n\n" + table(
        ["latency ms", *counts], rows, "l" + "l" * len(counts)
    )


def _bar(share: float, width: int = 30) -> str:
    return "`" + "█" * max(0, round(share * width)) + "`" if share >= 1 / (2 * width) else ""


def _gc_table(fixed: list[tuple[str, Measurement]]) -> str:
    rows = []
    for name, m in fixed:
        metrics = m.metrics
        row: list[object] = [name, f"{m.result.requests:,}"]
        row += _gc_cells(metrics)
        if metrics is not None:
            per_request = sum(h.count for h in metrics.gc.values()) / max(1, m.result.requests)
            row.append(f"{per_request:.2f}")
        else:
            row.append("-")
        rows.append(row)
    return "GC during the run:\n\n" + table(
        [
            "variant",
            "requests",
            "collections gen0 / gen1 / gen2",
            "total pause ms",
            "gen2 mean ms",
            "longest ≤ ms",
            "collections per request",
        ],
        rows,
    )


def _micro(run: BenchRun) -> list[str]:
    if not run.micro:
        return []
    lines = [
        "",
        "## Micro-benchmarks",
        "",
        "`python -m loadtests.bench.micro WHAT` (pytest-benchmark, outside the server, against "
        "the stack): wall time per round (one call, or a batch of calls in flight), the "
        "process's CPU time per call.",
    ]
    for what, rows in run.micro.items():
        lines += ["", f"### {what}", ""]
        lines.append(
            table(
                MICRO_HEADERS,
                [
                    [
                        row["case"],
                        row["rounds"],
                        row["per_round"],
                        *(_us(row[k]) for k in ("min_s", "median_s", "p99_s", "cpu_s")),
                        rate(row["calls_per_s"]),
                        "-" if row["found"] is None else f"{row['found']:.1f}",
                    ]
                    for row in rows
                ],
            )
        )
    return lines


MICRO_HEADERS = ["case", "rounds", "calls per round", "min µs", "median µs", "p99 µs"]
MICRO_HEADERS += ["CPU µs per call", "calls/s", "rows per call"]


def _us(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    value = seconds * 1e6
    return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


def _profile(run: BenchRun) -> list[str]:
    p = run.profile
    if p is None:
        return []
    if Path(p.raw_path).is_file():  # analysed again: a report rendered later gets new views
        p = profiling.analyse(Path(p.raw_path), p.command)
    return [
        "",
        "## Profile of the feed under load",
        "",
        f"py-spy on the product server while vegeta sent the feed at {rate(run.profile_rate)} "
        f"req/s (70 % of its saturation): `{p.command}`; {p.samples:,} samples of busy "
        f"threads (raw stacks: `{_relative(p.raw_path)}`).",
        "",
        "Where the CPU goes (innermost Python frame, grouped):",
        "",
        table(["area", "share of samples"], [[a, pct(p.share(c))] for a, c in p.areas]),
        "",
        "Top functions by self time (innermost frame):",
        "",
        table(
            ["function (file)", "self"],
            [[f"`{f}`", pct(p.share(c))] for f, c in p.self_by_function[:20]],
        ),
        "",
        "Top functions by inclusive time (anywhere on the stack; the chain every request "
        "runs through, uvicorn, middleware and routing, left out):",
        "",
        table(
            ["function (file)", "inclusive"],
            [[f"`{f}`", pct(p.share(c))] for f, c in p.inclusive_by_function[:25]],
        ),
        "",
        "The service's own functions by inclusive time:",
        "",
        table(
            ["function (file)", "inclusive"],
            [[f"`{f}`", pct(p.share(c))] for f, c in p.app_inclusive[:25]],
        ),
    ]


def markdown(run: BenchRun) -> str:
    lines = _header(run)
    lines += _targets(run)
    lines += _product(run)
    lines += _ablations(run)
    lines += _micro(run)
    lines += _profile(run)
    return "\n".join(lines) + "\n"


# --- JSON --------------------------------------------------------------------------------------


def to_json(run: BenchRun) -> dict[str, object]:
    def endpoint_runs(runs: EndpointRuns) -> dict[str, object]:
        return {
            "saturation": runs.saturation.throughput,
            "saturation_clean": runs.saturation.clean,
            "closed_loop": runs.saturation.closed_loop,
            "probe": runs.saturation.probe.to_json(),
            "ramp": [m.to_json() for m in runs.saturation.points],
            "knee": runs.saturation.points.index(runs.saturation.best)
            if runs.saturation.best in runs.saturation.points
            else None,
            "probe_repeats": [m.to_json() for m in runs.saturation.repeats],
            "fixed": {k: m.to_json() for k, m in runs.fixed.items()},
            "fixed_disturbed_first_attempts": {k: m.to_json() for k, m in runs.retried.items()},
            "disturbed_first_ramp": None
            if runs.saturation.first_attempt is None
            else [m.to_json() for m in runs.saturation.first_attempt.points],
        }

    return {
        "command": run.command,
        "started": run.started.isoformat(),
        "finished": run.finished.isoformat() if run.finished else None,
        "machine": run.machine,
        "load_start": run.load_start,
        "load_end": run.load_end,
        "dataset": run.dataset,
        "durations": run.durations.__dict__,
        "targets": verdicts(run),
        "product": {e: endpoint_runs(r) for e, r in run.product.items()},
        "ablations": {
            a.ablation.name: {
                "common_rate": a.common_rate,
                "runs": {
                    e: {v: endpoint_runs(r) for v, r in by_variant.items()}
                    for e, by_variant in a.runs.items()
                },
            }
            for a in run.ablations
        },
        "micro": run.micro,
        "profile": None
        if run.profile is None
        else {
            "rate": run.profile_rate,
            "samples": run.profile.samples,
            "areas": run.profile.areas,
            "self": run.profile.self_by_function,
            "inclusive": run.profile.inclusive_by_function,
            "command": run.profile.command,
        },
        "problems": run.problems,
        "servers": run.servers,
        "sections": plan.SECTIONS,
    }

"""What the recipes that start bench servers share: a `loadtests.bench.runner.Bench` against
the running local stack, and one line per measurement.

This is the only recipe module that builds the benchmark's runner objects, so a change to
loadtests/bench/ shows up here first.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from loadtests.bench import plan, runner
from scripts import tools

REPO = Path(__file__).resolve().parents[2]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every server recipe takes."""
    parser.add_argument(
        "--data", type=Path, default=REPO / "data" / "demo", help="the demo folder (loaded)"
    )
    parser.add_argument(
        "--work-dir", type=Path, help="raw results (default: a new temporary directory)"
    )


def open_bench(
    args: argparse.Namespace, *, settings: Mapping[str, str] | None = None
) -> runner.Bench:
    """A bench over the running stack (never started here), the demo data as loaded, and
    `settings` (`RECS_*`) for every server it starts."""
    work_dir: Path = args.work_dir or Path(tempfile.mkdtemp(prefix="recs-recipe-"))
    print(f"raw results in {work_dir}")
    run = runner.BenchRun(
        command=" ".join(sys.argv),
        started=dt.datetime.now(dt.UTC),
        durations=plan.FULL,
        machine={},
        load_start=os.getloadavg(),
        work_dir=work_dir,
    )
    try:
        return runner.open_bench(run, args.data, settings or {}, verbose=False)
    except (runner.SetupError, tools.ToolMissing) as exc:
        sys.exit(str(exc))


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f}"


def line(m: runner.Measurement) -> str:
    """A measurement as the tables of docs/performance.md show it."""
    r = m.result
    out = [
        f"p50 {r.percentile(50) or 0:.1f} p99 {r.percentile(99) or 0:.1f} "
        f"max {r.max_ms or 0:.1f} ms",
        f"CPU {m.cpu_us_per_request or 0:,.0f} µs/req",
        f"loop {m.cpu.main_share:.0%} busy",
    ]
    metrics = m.metrics
    if metrics is not None:
        query = metrics.dependencies.get("dynamodb/query")
        if query is not None:
            out.append(f"Query p50 {_ms(query.quantile(0.5))} p99 {_ms(query.quantile(0.99))} ms")
        out.append(f"loop lag p99 {_ms(metrics.loop_lag.quantile(0.99))} ms")
        catalog = metrics.dependencies.get("catalog/items")
        calls = catalog.count if catalog is not None else 0.0
        out.append(f"catalog calls {calls / max(1, r.ok):.2f}/req")
        gc = " / ".join(f"{metrics.gc[g].count:.0f}" for g in ("0", "1", "2"))
        longest = max((metrics.gc[g].max_le or 0.0) for g in ("0", "1", "2"))
        out.append(f"GC {gc} (longest ≤ {_ms(longest)} ms)" if longest else f"GC {gc}")
    return ", ".join(out)

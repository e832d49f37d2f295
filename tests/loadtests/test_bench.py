"""The benchmark harness (`python -m loadtests.bench`), smoke-run against the real stack.

One quick run (`--quick --only floor,similar`, a couple of seconds per step) over this test
session's small dataset (its own keyspace, table and catalog: conftest's `loaded_env`), so the
run starts a real bench server, drives it with vegeta, reads /metrics and /proc, and writes
results.json and the report rendered from it (test_report.py checks the rendering on made-up
results). The harness is a subprocess (as `make bench` runs it). A stack that is down fails
these tests (conftest's `stack_env`), and the harness itself refuses to run on one (checked
on an empty stack of its own, so the shared one is untouched).
"""

from __future__ import annotations

import itertools
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from scripts import procs
from tests.support import REPO

if TYPE_CHECKING:
    from tests.conftest import Dataset

pytestmark = pytest.mark.integration

SECTIONS = (
    "# Benchmark report",
    "## Machine and setup",
    "## Method",
    "## Targets",
    "## The product, per endpoint",
    "### framework floor (`GET /bench/floor`)",
    "### similar items (`GET /v1/items/{id}/similar?limit=12`)",
    "### Event-loop lag and GC pauses per run",
)


def _bench(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "loadtests.bench", *args],
        cwd=REPO,
        env=env or dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
    )


def _output(run: subprocess.CompletedProcess[str]) -> str:
    return f"exit code {run.returncode}\n--- stdout\n{run.stdout}\n--- stderr\n{run.stderr}"


@dataclass(frozen=True)
class QuickRun:
    process: subprocess.CompletedProcess[str]
    report: str
    results: dict[str, object]
    work_dir: Path


@pytest.fixture(scope="module")
def quick_run(
    loaded_env: dict[str, str], dataset: Dataset, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[QuickRun]:
    out = tmp_path_factory.mktemp("bench")
    work_dir = out / "work"
    settings = [
        f"--set={name}={loaded_env[name]}"
        for name in ("RECS_SCYLLA_KEYSPACE", "RECS_DYNAMODB_TABLE", "RECS_CATALOG_URL")
    ]
    process = _bench(
        "--quick",
        "--only",
        "floor,similar",
        "--out",
        str(out / "benchmark.md"),
        "--work-dir",
        str(work_dir),
        "--data",
        str(dataset.path),
        *settings,
    )
    assert process.returncode == 0, _output(process)
    yield QuickRun(
        process,
        (out / "benchmark.md").read_text(),
        json.loads((work_dir / "results.json").read_text()),
        work_dir,
    )


def test_the_quick_run_writes_a_report_with_every_section(quick_run: QuickRun) -> None:
    report = quick_run.report
    for heading in SECTIONS:
        assert f"\n{heading}\n" in f"\n{report}", f"missing {heading!r}:\n{report}"
    assert "| CPU |" in report and "| Load average at start, at end (1 / 5 / 15 min) |" in report
    assert "| loop thread waiting for a core |" in report
    assert "python -m loadtests.bench --quick --only floor,similar" in report
    assert "**NOT MEASURED** feed: p99 ≤ 10 ms" in report
    # The one target both endpoints decide is judged on the knees results.json holds.
    product = quick_run.results["product"]
    assert isinstance(product, dict)
    share = product["similar"]["saturation"] / product["floor"]["saturation"]
    verdict = "PASS" if share >= 0.5 else "MISS"
    similar_vs_floor = next(line for line in report.splitlines() if "(warm cache)" in line)
    assert similar_vs_floor.startswith(f"- **{verdict}** similar (warm cache): ≥ 50 %"), (
        share,
        similar_vs_floor,
    )


def test_the_quick_run_measured_both_endpoints_through_vegeta(quick_run: QuickRun) -> None:
    product = quick_run.results["product"]
    assert isinstance(product, dict)
    assert set(product) == {"floor", "similar"}
    for endpoint, runs in product.items():
        assert runs["saturation"] > 0, endpoint
        assert set(runs["fixed"]) == {"50%", "70%"}, endpoint
        assert runs["ramp"] and runs["knee_step"] is not None, endpoint
        for run in [runs["probe"], *runs["ramp"], *runs["fixed"].values()]:
            # Ramp steps past the knee may fail requests on a busy box: answers, not all.
            assert 0 < run["ok"] <= run["requests"], run
            assert 0 < run["p50_ms"] <= run["p99_ms"] <= run["max_ms"], run
            assert run["cpu"]["us_per_request"] > 0, run
            assert 0 <= run["cpu"]["main_wait_share"] < 1, run  # schedstat's run delay
            assert run["metrics"]["loop_lag"]["count"] > 0, run  # /metrics scraped
        # One stream per targets file: each attack went on where the one before it stopped.
        chain = [runs["probe"], *runs["ramp"]]
        length = len(Path(chain[0]["targets"]["file"]).read_text().splitlines())
        if runs["disturbed_ramp"] is None:  # a ramp measured again goes on from the first
            assert chain[0]["targets"]["from"] == 0, endpoint
        for before, after in itertools.pairwise(chain):
            sent = before["targets"]["from"] + before["requests"]
            assert after["targets"]["from"] == sent % length, (endpoint, before, after)
    similar = product["similar"]["fixed"]["70%"]["metrics"]
    assert "catalog" in similar["cache_hit_ratio"], similar
    raw = list((quick_run.work_dir / "vegeta").glob("*.bin"))
    assert len(raw) >= 6, raw  # warm-ups, saturation steps and fixed-rate runs


def test_the_quick_run_stopped_its_server(quick_run: QuickRun) -> None:
    servers = quick_run.results["servers"]
    assert isinstance(servers, list) and [s["variant"] for s in servers] == ["product"]
    with socket.socket() as probe, pytest.raises(ConnectionRefusedError):
        probe.connect(("127.0.0.1", servers[0]["port"]))
    log = Path(servers[0]["log"]).read_text()
    assert '"ready to serve"' in log


def test_the_harness_fails_when_the_stack_is_down(tmp_path: Path) -> None:
    # A stack of its own, never started: empty state folder, ports nobody listens on.
    env = {name: value for name, value in os.environ.items() if not name.startswith("STACK_")}
    cql, storage, dynamodb, catalog = procs.free_ports(4)
    env |= {
        "STACK_DIR": str(tmp_path / "stack"),
        "STACK_CQL_PORT": str(cql),
        "STACK_CQL_STORAGE_PORT": str(storage),
        "STACK_DYNAMODB_PORT": str(dynamodb),
        "STACK_CATALOG_PORT": str(catalog),
    }
    run = _bench(
        "--quick",
        "--only",
        "floor",
        "--out",
        str(tmp_path / "benchmark.md"),
        "--work-dir",
        str(tmp_path / "work"),
        env=env,
    )

    assert run.returncode == 1, _output(run)
    assert "the local stack is not up (cassandra, dynamodb, catalog down)" in run.stderr
    assert not (tmp_path / "benchmark.md").exists()

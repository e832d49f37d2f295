"""loadtests/locustfile.py against the real service: the suite passes a good run and fails a
run whose p99 misses its target.

The service runs as a subprocess (`python -m app`, embedded backend) over a small demo in a
temporary folder; Locust runs headless as a subprocess too, for a few seconds per run (never
imported here: it monkey-patches the standard library with gevent).
"""

from __future__ import annotations

import csv
import operator
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.offline.demo import generate_demo
from tests.support import ServiceProcess, wait_for

REPO = Path(__file__).resolve().parents[2]
LOCUSTFILE = REPO / "loadtests" / "locustfile.py"
DEMO_ITEMS = 2_000
DEMO_USERS = 300
RUN_TIME = "4s"
SIMULATED_USERS = "8"
READ_ENDPOINTS = ("feed", "similar", "popular")


def _clean_env() -> dict[str, str]:
    """The developer's RECS_* (servers, API keys) and LOCUST_* settings stay out of the runs."""
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("RECS_", "LOCUST_"))
    }


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    generate_demo(out, items=DEMO_ITEMS, users=DEMO_USERS)
    return out


@pytest.fixture(scope="module")
def service(demo: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    service = ServiceProcess(
        env={
            "RECS_BACKEND": "embedded",
            "RECS_EMBEDDED_DATA_DIR": str(demo),
            "RECS_SHUTDOWN_GRACE_S": "2",
            "RECS_LOG_LEVEL": "warning",
        },
        log=tmp_path_factory.mktemp("service") / "service.log",
    )
    service.start()
    yield service
    service.stop()


def _locust_command(host: str, *args: str, run_time: str | None = RUN_TIME) -> list[str]:
    """Locust headless against `host`; without a run time it runs until interrupted."""
    command = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless"]
    command += ["--host", host, "--users", SIMULATED_USERS, "--spawn-rate", SIMULATED_USERS]
    if run_time is not None:
        command += ["--run-time", run_time]
    return [*command, "--only-summary", *args]


def _locust(
    cwd: Path, host: str, *args: str, run_time: str = RUN_TIME
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _locust_command(host, *args, run_time=run_time),
        cwd=cwd,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )


def _table_rows(stdout: str) -> dict[str, list[str]]:
    """The verdict table printed at the end: endpoint → its columns."""
    start = stdout.rindex("Load-test targets (")
    rows: dict[str, list[str]] = {}
    for line in stdout[start:].splitlines()[3:]:
        if line.startswith("-"):
            break
        columns = line.split()
        rows[columns[0]] = columns[1:]
    return rows


def _output(run: subprocess.CompletedProcess[str]) -> str:
    return f"exit code {run.returncode}\n--- stdout\n{run.stdout}\n--- stderr\n{run.stderr}"


def test_a_run_within_generous_targets_passes_and_writes_reports(
    service: ServiceProcess, demo: Path, tmp_path: Path
) -> None:
    targets = tmp_path / "generous.toml"
    targets.write_text(
        "max_error_rate_percent = 1.0\n"
        "[p99_ms]\nfeed = 5000\nsimilar = 5000\npopular = 5000\nevents = 5000\n"
    )
    run = _locust(
        tmp_path,
        service.url,
        "--dataset",
        str(demo),
        "--targets",
        str(targets),
        "--csv",
        "reports/locust",
        "--html",
        "reports/locust.html",
    )

    assert run.returncode == 0, _output(run)
    assert "RESULT: PASS" in run.stdout, _output(run)
    table = _table_rows(run.stdout)
    for endpoint in READ_ENDPOINTS:
        requests, failures, _p50, _p99, target, result = table[endpoint]
        assert int(requests) > 0, _output(run)
        assert failures == "0", _output(run)
        assert (target, result) == ("5000", "PASS"), _output(run)
    assert table["events"][:2] == ["0", "0"], _output(run)  # no API key: no events
    assert " ".join(table["events"][4:]) == "5000 SKIP (no API key)", _output(run)

    with (tmp_path / "reports" / "locust_stats.csv").open(newline="") as stats_file:
        stats = {row["Name"]: row for row in csv.DictReader(stats_file)}
    assert set(stats) == {*READ_ENDPOINTS, "Aggregated"}
    for endpoint in READ_ENDPOINTS:
        row = stats[endpoint]
        assert row["Type"] == "GET"
        assert int(row["Request Count"]) == int(table[endpoint][0])
        assert int(row["Failure Count"]) == 0
        assert row["99%"] == table[endpoint][3]  # the table judges the number the CSV shows
    html = (tmp_path / "reports" / "locust.html").read_text()
    assert all(endpoint in html for endpoint in READ_ENDPOINTS)


def test_a_run_missing_its_p99_target_fails(
    service: ServiceProcess, demo: Path, tmp_path: Path
) -> None:
    # Without --dataset: the id ranges from the options, categories and regions the demo's.
    run = _locust(
        tmp_path,
        service.url,
        "--user-ids",
        str(DEMO_USERS),
        "--item-ids",
        str(DEMO_ITEMS),
        "--p99",
        "feed=0.001",
    )

    assert run.returncode == 1, _output(run)
    table = _table_rows(run.stdout)
    assert int(table["feed"][0]) > 0, _output(run)
    assert table["feed"][4:] == ["0.001", "MISS"], _output(run)
    assert "RESULT: FAIL: feed p99" in run.stdout, _output(run)


@pytest.mark.parametrize(
    ("args", "run_time", "message"),
    [
        (("--p99", "fead=40"), "30s", "unknown endpoints ['fead']"),
        (("--warmup", "10s"), "10s", "--warmup of 10 s leaves nothing of --run-time (10 s)"),
    ],
    ids=["p99 for an unknown endpoint", "warm-up as long as the run"],
)
def test_a_bad_option_stops_the_run_before_it_starts(
    tmp_path: Path, args: tuple[str, ...], run_time: str, message: str
) -> None:
    # Port 9: nothing answers there, and nothing is asked.
    run = _locust(tmp_path, "http://127.0.0.1:9", *args, run_time=run_time)

    assert run.returncode == 2, _output(run)
    assert message in run.stderr, _output(run)


def test_a_warmup_leaves_the_first_seconds_out_of_the_verdict_and_the_reports(
    service: ServiceProcess, demo: Path, tmp_path: Path
) -> None:
    run = _locust(
        tmp_path,
        service.url,
        "--dataset",
        str(demo),
        "--p99",
        "feed=5000,similar=5000,popular=5000",
        "--warmup",
        "2s",
        "--csv",
        "reports/locust",
        run_time="6s",
    )

    assert run.returncode == 0, _output(run)
    assert "warm-up of 2 s over, statistics restarted" in run.stdout, _output(run)
    assert "; the first 2 s not judged)" in run.stdout, _output(run)
    with (tmp_path / "reports" / "locust_stats_history.csv").open(newline="") as history_file:
        totals = [
            int(row["Total Request Count"])
            for row in csv.DictReader(history_file)
            if row["Name"] == "Aggregated"
        ]
    # The running total restarts once, after the warm-up's requests were counted...
    restarts = [i for i in range(1, len(totals)) if totals[i] < totals[i - 1]]
    assert len(restarts) == 1, totals
    assert totals[restarts[0] - 1] > 0, totals
    # ...and the verdict counts only what came after.
    table = _table_rows(run.stdout)
    assert int(table["all"][0]) == totals[-1] > 0, (totals, _output(run))


_READ_ROUTES = (
    "/v1/users/{user_id}/recommendations",
    "/v1/items/{item_id}/similar",
    "/v1/popular",
)


def _read_counts(service: ServiceProcess) -> list[float]:
    """How many feed, similar-items and popular requests the service has answered."""
    lines = httpx.get(f"{service.url}/metrics", timeout=5).text.splitlines()
    return [
        sum(
            float(line.rsplit(" ", 1)[1])
            for line in lines
            if line.startswith("recs_http_request_duration_seconds_count{")
            and f'route="{route}"' in line
        )
        for route in _READ_ROUTES
    ]


def test_a_run_stopped_within_its_warmup_fails(
    service: ServiceProcess, demo: Path, tmp_path: Path
) -> None:
    # No --run-time: the run goes on until stopped, which comes before the warm-up is over.
    command = _locust_command(
        service.url,
        "--dataset",
        str(demo),
        "--p99",
        "feed=5000,similar=5000,popular=5000",
        "--warmup",
        "60s",
        run_time=None,
    )
    out, err = tmp_path / "locust.out", tmp_path / "locust.err"
    before = _read_counts(service)
    with out.open("w") as stdout, err.open("w") as stderr:
        process = subprocess.Popen(
            command, cwd=tmp_path, env=_clean_env(), stdout=stdout, stderr=stderr, text=True
        )
        try:
            # Stopped once every read endpoint has been asked, so the run fails for its warm-up
            # alone. SIGTERM, as CI or Kubernetes stop a run: locust handles it in its own
            # greenlet, while a SIGINT's KeyboardInterrupt lands in whichever greenlet runs.
            wait_for(lambda: all(map(operator.gt, _read_counts(service), before)), timeout_s=120)
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    run = subprocess.CompletedProcess(command, process.returncode, out.read_text(), err.read_text())

    assert run.returncode == 1, _output(run)
    assert "RESULT: FAIL: the run ended within its 60 s warm-up" in run.stdout, _output(run)

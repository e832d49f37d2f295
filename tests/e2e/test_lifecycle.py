"""Overload and shutdown: a fast 503 beyond the in-flight bound, and a SIGTERM during an
open-loop load run that fails no request and exits within the grace period."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from tests.conftest import Dataset
from tests.support import CatalogProcess, ServiceProcess, record

pytestmark = pytest.mark.e2e

SLOW_CATALOG_MS = 300


def vegeta() -> str:
    path = (
        Path(os.environ.get("RECS_CACHE_DIR", Path.home() / ".cache" / "recs")) / "bin" / "vegeta"
    )
    assert path.exists(), f"{path} is missing: run `bash scripts/tools.sh` (make test does)"
    return str(path)


def _failed_sent_after_s(results: bytes, started: float) -> list[float]:
    """When each failed request of a vegeta attack left, in seconds after `started`."""
    encoded = subprocess.run(
        [vegeta(), "encode", "-to=json"], input=results, capture_output=True, check=True
    )
    sent = []
    for line in encoded.stdout.splitlines():
        result = json.loads(line)
        if result["code"] != 200:
            # RFC 3339 with nanoseconds; fromisoformat takes at most microseconds.
            stamp = re.sub(r"(\.\d{6})\d*", r"\1", result["timestamp"]).replace("Z", "+00:00")
            sent.append(round(datetime.fromisoformat(stamp).timestamp() - started, 3))
    return sorted(sent)


@pytest.fixture
def slow_service(
    loaded_env: dict[str, str], dataset: Dataset, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[ServiceProcess]:
    """The service in front of a catalog that takes 300 ms, uncached: requests stay in
    flight long enough to be caught by a bound or a shutdown."""
    catalog = CatalogProcess(data=tmp_path / "items.jsonl", delay_ms=SLOW_CATALOG_MS)
    catalog.start()
    body = (dataset.path / "catalog.jsonl").read_bytes()
    assert httpx.put(f"{catalog.url}/items", content=body, timeout=30).status_code == 200
    env = {
        **loaded_env,
        "RECS_CATALOG_URL": catalog.url,
        "RECS_CATALOG_CACHE_TTL_S": "0",
        "RECS_CATALOG_TIMEOUT_MS": "2000",
        "RECS_REQUEST_DEADLINE_MS": "3000",
        "RECS_SHUTDOWN_GRACE_S": "5",
        **getattr(request, "param", {}),
    }
    service = ServiceProcess(env=env, log=tmp_path / "service.log")
    service.start()
    yield service
    service.stop()
    catalog.stop()


@pytest.mark.parametrize("slow_service", [{"RECS_MAX_IN_FLIGHT": "4"}], indirect=True)
def test_beyond_the_in_flight_bound_a_fast_503(slow_service: ServiceProcess) -> None:
    results: list[tuple[int, float, str | None]] = []
    # Clients are built first: creating one costs milliseconds of CPU (an SSL context),
    # which 16 threads would otherwise spend inside the measured time.
    clients = [httpx.Client(base_url=slow_service.url, timeout=10) for _ in range(16)]
    start = threading.Barrier(len(clients))

    def one(client: httpx.Client) -> None:
        start.wait()
        started = time.monotonic()
        response = client.get("/v1/popular")
        results.append(
            (response.status_code, time.monotonic() - started, response.headers.get("retry-after"))
        )

    threads = [threading.Thread(target=one, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    time.sleep(0.1)
    health = httpx.get(f"{slow_service.url}/healthz", timeout=2)  # probes are exempt
    for thread in threads:
        thread.join()
    for client in clients:
        client.close()
    assert health.status_code == 200
    served = [r for r in results if r[0] == 200]
    refused = [r for r in results if r[0] == 503]
    assert len(served) + len(refused) == 16 and served and refused
    assert all(seconds < SLOW_CATALOG_MS / 1000 for _, seconds, _ in refused)  # fast
    assert all(retry_after == "1" for _, _, retry_after in refused)
    record(
        "in_flight_bound",
        concurrent_requests=len(results),
        served=len(served),
        refused_503=len(refused),
        refused_max_ms=round(max(seconds for _, seconds, _ in refused) * 1000, 1),
    )


def test_sigterm_during_open_loop_load_fails_no_request(
    slow_service: ServiceProcess, tmp_path: Path
) -> None:
    """Kubernetes removes the pod from the Service before SIGTERM (preStop), so no new request
    arrives after it; every request already in flight must still succeed."""
    assert slow_service.process is not None
    targets = tmp_path / "targets.txt"
    targets.write_text(
        "".join(f"GET {slow_service.url}/v1/users/user-{n}/recommendations\n" for n in range(1, 60))
    )
    duration_s = 3.0
    started = time.time()
    attack = subprocess.Popen(
        [vegeta(), "attack", f"-targets={targets}", "-rate=40/s", f"-duration={duration_s}s",
         "-timeout=10s", "-keepalive=false"],
        stdout=subprocess.PIPE,
    )  # fmt: skip
    # The last request leaves at `duration`; about 12 are in flight (300 ms each) right then.
    time.sleep(duration_s + 0.1)
    slow_service.process.send_signal(signal.SIGTERM)
    signalled = time.monotonic()
    signalled_after_s = time.time() - started
    exit_code = slow_service.process.wait(timeout=10)
    exited_s = time.monotonic() - signalled
    results, _ = attack.communicate(timeout=30)
    report = subprocess.run(
        [vegeta(), "report", "-type=json"], input=results, capture_output=True, check=True
    )
    metrics = json.loads(report.stdout)
    slow_service.process = None
    log = (tmp_path / "service.log").read_text()
    assert metrics["requests"] >= 100
    # Rare here (3 of about 30 runs on 2026-12-01, not reproduced since): most requests
    # refused. What follows says whether they left after the signal and how the service
    # ended, so that the next failure explains itself.
    assert metrics["status_codes"] == {"200": metrics["requests"]}, {
        "errors": metrics["errors"][:3],
        "failed_sent_after_s": _failed_sent_after_s(results, started),
        "signalled_after_s": round(signalled_after_s, 3),
        "exit_code": exit_code,
        "log_tail": log[-1500:],
    }
    # uvicorn re-raises the signal once it has shut down gracefully: "killed by SIGTERM".
    assert exit_code in (0, -signal.SIGTERM) and exited_s < 5.0
    assert '"message":"draining"' in log and "shutting down: closing clients" in log
    record(
        "sigterm_under_load",
        requests=metrics["requests"],
        status_codes=metrics["status_codes"],
        exit_s=round(exited_s, 2),
        exit_code=exit_code,
    )

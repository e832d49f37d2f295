"""Shared test helpers: real processes under test, background load, measurements.

Processes here are the real thing (the catalog reference service, the recommendation
service itself), started on free ports and stopped by the fixtures that own them.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from scripts import procs

REPO = Path(__file__).resolve().parents[1]
# What the fault, degradation, no-loss and shutdown tests measured: docs/reliability.md.
RELIABILITY_REPORT = REPO / "reports" / "faults.json"


def record(name: str, **measured: Any) -> None:
    """Keep one test's measurements under `name` in the reliability report."""
    report = RELIABILITY_REPORT
    report.parent.mkdir(exist_ok=True)
    results = json.loads(report.read_text()) if report.exists() else {}
    results[name] = measured
    report.write_text(json.dumps(results, indent=2, sort_keys=True))


CATALOG_SCRIPT = REPO / "scripts" / "catalog_service.py"


@dataclass
class CatalogProcess:
    """One catalog_service process on a free port; ``restart`` keeps the data file."""

    data: Path
    delay_ms: int = 0
    port: int = field(default_factory=procs.free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 30) -> None:
        command = [
            sys.executable,
            str(CATALOG_SCRIPT),
            "--port",
            str(self.port),
            "--data",
            str(self.data),
        ]
        if self.delay_ms:
            command += ["--delay-ms", str(self.delay_ms)]
        self.process = procs.start(
            command,
            ready=lambda: procs.answers(f"{self.url}/healthz"),
            timeout_s=timeout_s,
            name="the catalog service",
        )

    def stop(self) -> None:
        if self.process is not None:
            procs.stop(self.process)
            self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()


@dataclass
class ServiceProcess:
    """The recommendation service (`python -m app`) as a subprocess on a free port."""

    env: dict[str, str]
    port: int = field(default_factory=procs.free_port)
    log: Path | None = None
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 60) -> None:
        # The developer's own RECS_* exports (servers, keys) must not leak into the service.
        env = {
            **procs.env_without_settings(),
            "RECS_CURSOR_SECRET": "test-cursor-secret",
            # The suite's concurrent clients on a busy machine queue longer than the production
            # target; admission by queueing delay has its own tests (tests/unit/api).
            "RECS_ADMISSION_TARGET_MS": "0",
            **self.env,
            "RECS_PORT": str(self.port),
            "RECS_HOST": "127.0.0.1",
        }
        self.process = procs.start(
            [sys.executable, "-m", "app"],
            ready=lambda: procs.answers(f"{self.url}/readyz"),
            timeout_s=timeout_s,
            name="the service",
            log=self.log,
            env=env,
            cwd=REPO,
        )

    def stop(self, timeout_s: float = 30) -> int | None:
        """SIGTERM, SIGKILL after `timeout_s`; the exit status (None if it was not running)."""
        process, self.process = self.process, None
        return None if process is None else procs.stop(process, grace_s=timeout_s)


@dataclass(frozen=True)
class Sample:
    at: float  # time.monotonic() when the request was sent
    kind: str
    status: int  # 0: no HTTP answer at all (connection refused, client timeout)
    seconds: float
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


class Probe:
    """Requests in a loop from background threads while a test breaks or changes things,
    recording every answer in order: status, latency, body (for `degraded`, versions)."""

    def __init__(
        self,
        url: str,
        request: Callable[[httpx.Client, int], tuple[str, httpx.Response]],
        *,
        threads: int = 2,
        timeout_s: float = 5.0,
    ) -> None:
        self.url = url
        self.request = request
        self.timeout_s = timeout_s
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(n,)) for n in range(threads)]

    def _run(self, worker: int) -> None:
        with httpx.Client(base_url=self.url, timeout=self.timeout_s) as client:
            n = worker
            while not self._stop.is_set():
                started = time.monotonic()
                headers: dict[str, str] = {}
                try:
                    kind, response = self.request(client, n)
                    body = _body(response)
                    status = response.status_code
                    headers = dict(response.headers)
                except httpx.HTTPError as exc:
                    kind, body, status = "transport_error", {"error": repr(exc)}, 0
                elapsed = time.monotonic() - started
                self.samples.append(Sample(started, kind, status, elapsed, body, headers))
                n += len(self._threads)
                time.sleep(0.01)

    def between(self, start: float, end: float, kind: str | None = None) -> list[Sample]:
        return [s for s in self.samples if start <= s.at < end and (kind is None or s.kind == kind)]

    def __enter__(self) -> Probe:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)


def _body(response: httpx.Response) -> dict[str, Any]:
    """The JSON object answered; an answer that is no JSON (a proxy's page) as its text."""
    if not response.content:
        return {}
    try:
        body: dict[str, Any] = response.json()
    except ValueError:
        return {"text": response.text[:200]}
    return body


def wait_for(condition: Callable[[], bool], timeout_s: float, step_s: float = 0.1) -> float:
    """Seconds until `condition()` held; fails after `timeout_s`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if condition():
            return time.monotonic() - started
        time.sleep(step_s)
    raise AssertionError(f"condition not met within {timeout_s} s")

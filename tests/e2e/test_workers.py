"""`RECS_WORKERS=2`: two processes answer on one port, a killed one is replaced, SIGTERM
ends them all and the parent with 0, and workers do not outlive a parent killed outright.

Embedded data only: no stack needed. The processes are read from /proc (Linux)."""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.offline.demo import generate_demo
from tests.support import ServiceProcess, wait_for

pytestmark = pytest.mark.e2e

DEADLINE_S = 60.0
PROCESS_ID = re.compile(rb"^recs_process_id ([0-9.e+]+)$", re.MULTILINE)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("workers") / "demo"
    generate_demo(path, items=300, users=50, seed=2)
    return path


@pytest.fixture
def two_workers(data: Path, tmp_path: Path) -> Iterator[ServiceProcess]:
    service = ServiceProcess(
        env={
            "RECS_BACKEND": "embedded",
            "RECS_EMBEDDED_DATA_DIR": str(data),
            "RECS_WORKERS": "2",
            "RECS_SHUTDOWN_GRACE_S": "5",
        },
        log=tmp_path / "service.log",
    )
    service.start(timeout_s=DEADLINE_S)
    yield service
    service.stop()


def children(pid: int) -> dict[int, int]:
    """The processes whose parent is `pid`: {pid: start time in clock ticks}."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue  # ended meanwhile
            fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
            if int(fields[1]) == pid:
                found[int(entry.name)] = int(fields[19])
    return found


def alive(processes: dict[int, int]) -> set[int]:
    """Which of these processes still run (a pid taken again by another one does not count)."""
    running = set()
    for pid, started in processes.items():
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        if int(stat[stat.rindex(")") + 2 :].split()[19]) == started:
            running.add(pid)
    return running


def answering(url: str) -> int:
    """The pid of the process that answered /metrics on a new connection."""
    response = httpx.get(f"{url}/metrics", timeout=10)
    assert response.status_code == 200
    match = PROCESS_ID.search(response.content)
    assert match is not None, "no recs_process_id in /metrics"
    return int(float(match.group(1)))


def _two_children(parent: int, without: int | None = None) -> dict[int, int]:
    found: dict[int, int] = {}

    def two() -> bool:
        found.clear()
        found.update(children(parent))
        return len(found) == 2 and without not in found

    wait_for(two, DEADLINE_S)
    return found


def _all_answer(url: str, pids: set[int]) -> None:
    seen: set[int] = set()

    def all_seen() -> bool:
        seen.add(answering(url))
        return pids <= seen

    wait_for(all_seen, DEADLINE_S, step_s=0.01)
    assert seen <= pids, f"answered by {seen - pids}, not a worker of the service"


def test_two_workers_answer_and_a_killed_one_is_replaced(two_workers: ServiceProcess) -> None:
    assert two_workers.process is not None and two_workers.log is not None
    parent = two_workers.process.pid
    first = _two_children(parent)
    _all_answer(two_workers.url, set(first))

    killed = min(first)
    os.kill(killed, signal.SIGKILL)
    second = _two_children(parent, without=killed)
    assert len(set(second) & set(first)) == 1
    _all_answer(two_workers.url, set(second))
    assert "worker died: starting another" in two_workers.log.read_text()

    assert two_workers.stop() == 0
    assert not alive(second), "a worker outlived its parent"


def test_workers_end_when_their_parent_is_killed(two_workers: ServiceProcess) -> None:
    assert two_workers.process is not None
    workers = _two_children(two_workers.process.pid)
    two_workers.process.kill()
    two_workers.process.wait()
    two_workers.process = None
    try:
        wait_for(lambda: not alive(workers), DEADLINE_S)
    finally:
        for pid in alive(workers):
            os.kill(pid, signal.SIGKILL)

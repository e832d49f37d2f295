"""scripts/stack.py, on a second stack of its own (temporary STACK_DIR, free ports).

Starting that second stack costs a second Cassandra (about 20 s, 1.4 GB), once for the module.
The main stack (default settings) is only asked whether it is up.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

from scripts import procs

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
STACK = REPO / "scripts" / "stack.py"
SERVERS = ("cassandra", "dynamodb", "catalog")


def _stack_env(
    stack_dir: Path, cql: int, storage: int, dynamodb: int, catalog: int
) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("STACK_")}
    return env | {
        "STACK_DIR": str(stack_dir),
        "STACK_CQL_PORT": str(cql),
        "STACK_CQL_STORAGE_PORT": str(storage),
        "STACK_DYNAMODB_PORT": str(dynamodb),
        "STACK_CATALOG_PORT": str(catalog),
    }


def _run(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(STACK), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _line_of(output: str, server: str) -> list[str]:
    """The words of the one line of ``output`` about ``server``."""
    (line,) = [line.split() for line in output.splitlines() if line.startswith(f"{server} ")]
    return line


def _recorded_pids(stack_dir: Path) -> dict[str, int]:
    pids = {}
    for name in SERVERS:
        pid_file = stack_dir / name / f"{name}.pid"
        if pid_file.exists():
            pids[name] = int(pid_file.read_text())
    return pids


def _live_processes_in_group(pgid: int) -> list[int]:
    """Processes (zombies excluded: they are dead) whose process group is ``pgid``."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        state, _ppid, group = stat[stat.rindex(")") + 2 :].split()[:3]
        if int(group) == pgid and state not in "ZX":
            members.append(int(entry.name))
    return members


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"


@dataclass(frozen=True)
class SecondStack:
    dir: Path
    env: dict[str, str]
    ports: dict[str, int]
    first_up: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecondStack]:
    stack_dir = tmp_path_factory.mktemp("stack")
    cql, storage, dynamodb, catalog = procs.free_ports(4)
    env = _stack_env(stack_dir, cql, storage, dynamodb, catalog)
    first_up = _run(env, "up")
    try:
        assert first_up.returncode == 0, first_up.stdout + first_up.stderr
        ports = {"cassandra": cql, "dynamodb": dynamodb, "catalog": catalog}
        yield SecondStack(stack_dir, env, ports, first_up)
    finally:
        _run(env, "down", timeout=120)


@pytest.fixture(scope="module")
def stack_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("stack_under_test", STACK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module through sys.modules
    spec.loader.exec_module(module)
    return module


def test_main_stack_is_up() -> None:
    result = _run(dict(os.environ), "status")

    assert result.returncode == 0, (
        "the main stack is not running and ready: start it with `make stack-up`\n" + result.stdout
    )


def test_up_starts_all_three_and_reports_timings(stack: SecondStack) -> None:
    lines = stack.first_up.stdout.splitlines()

    for name in SERVERS:
        words = _line_of(stack.first_up.stdout, name)
        assert words[:2] == [name, "started"]
        assert words[4:6] == ["port", str(stack.ports[name])]
        assert words[6:8] == ["ready", "in"]
    assert lines[-1].startswith("stack ready in")
    assert set(_recorded_pids(stack.dir)) == set(SERVERS)


def test_second_up_reuses_and_is_fast(stack: SecondStack) -> None:
    pids = _recorded_pids(stack.dir)
    started = time.monotonic()

    result = _run(stack.env, "up")

    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 10
    assert [_line_of(result.stdout, name)[1] for name in SERVERS] == ["reused"] * 3
    assert _recorded_pids(stack.dir) == pids


def test_status_quiet_exit_codes(stack: SecondStack, tmp_path: Path) -> None:
    ready = _run(stack.env, "status", "--quiet")
    assert (ready.returncode, ready.stdout, ready.stderr) == (0, "", "")

    never_started = _stack_env(tmp_path, *procs.free_ports(4))
    stopped = _run(never_started, "status", "--quiet")
    assert (stopped.returncode, stopped.stdout) == (1, "")


def test_status_lines(stack: SecondStack) -> None:
    result = _run(stack.env, "status")
    pids = _recorded_pids(stack.dir)

    assert result.returncode == 0
    for name in SERVERS:
        assert _line_of(result.stdout, name) == [
            name, "running/ready", "pid", str(pids[name]), "port", str(stack.ports[name])
        ]  # fmt: skip


def test_env_prints_client_exports(stack: SecondStack) -> None:
    result = _run(stack.env, "env")

    assert result.returncode == 0
    assert result.stdout.splitlines() == [
        "export RECS_SCYLLA_HOSTS=127.0.0.1",
        f"export RECS_SCYLLA_PORT={stack.ports['cassandra']}",
        "export RECS_SCYLLA_PROTOCOL_VERSION=5",
        "export RECS_SCYLLA_LOCAL_DC=datacenter1",
        f"export RECS_DYNAMODB_ENDPOINT_URL=http://127.0.0.1:{stack.ports['dynamodb']}",
        "export RECS_DYNAMODB_REGION=us-east-1",
        "export AWS_ACCESS_KEY_ID=local",
        "export AWS_SECRET_ACCESS_KEY=local",
        f"export RECS_CATALOG_URL=http://127.0.0.1:{stack.ports['catalog']}",
    ]


def test_up_replaces_a_killed_and_a_frozen_server(stack: SecondStack) -> None:
    before = _recorded_pids(stack.dir)
    os.kill(before["dynamodb"], signal.SIGKILL)
    os.kill(before["catalog"], signal.SIGSTOP)

    assert _run(stack.env, "status", "--quiet", timeout=60).returncode == 1
    result = _run(stack.env, "up")

    assert result.returncode == 0, result.stdout + result.stderr
    after = _recorded_pids(stack.dir)
    assert after["cassandra"] == before["cassandra"]
    assert after["dynamodb"] != before["dynamodb"]
    assert after["catalog"] != before["catalog"]
    assert not _alive(before["catalog"])
    assert _line_of(result.stdout, "cassandra")[1] == "reused"
    assert _line_of(result.stdout, "dynamodb")[1] == "started"
    assert _line_of(result.stdout, "catalog")[1] == "restarted"  # it was alive, but frozen
    assert _run(stack.env, "status", "--quiet").returncode == 0


def test_importable_api(stack: SecondStack, stack_module: ModuleType) -> None:
    cfg = stack_module.StackConfig.from_env(stack.env)
    pids = _recorded_pids(stack.dir)

    for name in SERVERS:
        assert stack_module.pid_of(name, cfg) == pids[name]
        assert stack_module.is_ready(name, cfg)

    os.kill(pids["dynamodb"], signal.SIGSTOP)
    assert not stack_module.is_ready("dynamodb", cfg)
    result = stack_module.restart("dynamodb", cfg)

    assert result.action == "started"  # restart() stops first, so start() finds nothing running
    assert result.pid != pids["dynamodb"]
    assert not _alive(pids["dynamodb"])
    assert stack_module.is_ready("dynamodb", cfg)
    assert stack_module.client_env(cfg)["RECS_SCYLLA_PORT"] == str(stack.ports["cassandra"])


def test_up_fails_clearly_when_a_port_is_taken(tmp_path: Path) -> None:
    cql, storage, dynamodb, catalog = procs.free_ports(4)
    env = _stack_env(tmp_path, cql, storage, dynamodb, catalog)
    with socket.socket() as foreign:
        foreign.bind(("127.0.0.1", dynamodb))
        foreign.listen()

        result = _run(env, "up", timeout=60)

    assert result.returncode != 0
    assert f"port {dynamodb}" in result.stderr
    assert "already in use" in result.stderr
    assert _recorded_pids(tmp_path) == {}, "nothing may start when a port is taken"


def test_down_leaves_no_process(stack: SecondStack) -> None:
    pids = _recorded_pids(stack.dir)
    assert set(pids) == set(SERVERS)

    result = _run(stack.env, "down", timeout=120)

    assert result.returncode == 0, result.stderr
    assert _recorded_pids(stack.dir) == {}
    for name, pid in pids.items():
        assert not _alive(pid), f"{name} (pid {pid}) is still alive"
        assert _live_processes_in_group(pid) == [], f"{name}'s process group still has processes"
    assert _run(stack.env, "status", "--quiet").returncode == 1
    again = _run(stack.env, "down")
    assert again.returncode == 0
    assert "not running" in again.stdout

"""scripts/procs.py: start, wait for and stop real child processes; free ports."""

from __future__ import annotations

import os
import re
import signal
import socket
import sys
import time
from pathlib import Path

import pytest

from scripts import procs

# Serves the working directory on a port of its choosing (no race for a free port with other
# processes on the machine), and prints it.
SERVER = (
    "import http.server; "
    "s = http.server.HTTPServer(('127.0.0.1', 0), http.server.SimpleHTTPRequestHandler); "
    "print('port', s.server_port, flush=True); s.serve_forever()"
)
# Print "ready" and their pid (once SIGTERM is ignored, for the stubborn one), then wait.
SLEEPER = "import os, time; print('ready', os.getpid(), flush=True); time.sleep(120)"
STUBBORN = "import signal; signal.signal(signal.SIGTERM, signal.SIG_IGN); " + SLEEPER


def test_a_server_is_started_until_it_answers_and_stopped_by_sigterm(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "server.log"

    def port() -> int | None:
        found = re.search(r"^port (\d+)$", log.read_text(), re.MULTILINE)
        return int(found.group(1)) if found else None

    process = procs.start(
        [sys.executable, "-c", SERVER],
        ready=lambda: (p := port()) is not None and procs.answers(f"http://127.0.0.1:{p}/"),
        timeout_s=30,
        name="http.server",
        log=log,
        cwd=tmp_path,
    )
    served = port()
    assert served is not None
    try:
        assert procs.port_open(served) and procs.port_in_use(served)
    finally:
        status = procs.stop(process)

    assert status == -signal.SIGTERM
    assert process.poll() == status  # reaped
    assert not procs.port_open(served)
    assert '"GET / HTTP/1.1" 200' in log.read_text()


def test_a_process_that_ignores_sigterm_is_killed_after_the_grace_period(tmp_path: Path) -> None:
    log = tmp_path / "stubborn.log"
    process = procs.start(
        [sys.executable, "-c", STUBBORN],
        ready=lambda: "ready" in log.read_text(),
        timeout_s=30,
        name="stubborn",
        log=log,
    )

    assert procs.stop(process, grace_s=0.5) == -signal.SIGKILL


def test_a_process_that_exits_during_start_up_fails_with_its_log(tmp_path: Path) -> None:
    log = tmp_path / "failing.log"
    with pytest.raises(procs.StartError, match="failing exited during start-up") as error:
        procs.start(
            [sys.executable, "-c", "raise SystemExit('no config here')"],
            ready=lambda: False,
            timeout_s=30,
            name="failing",
            log=log,
        )
    assert "no config here" in str(error.value)


def test_a_process_not_ready_by_its_deadline_is_stopped(tmp_path: Path) -> None:
    log = tmp_path / "sleeper.log"

    with pytest.raises(procs.StartError, match="sleeper was not ready after 2 s"):
        procs.start(
            [sys.executable, "-c", SLEEPER],
            ready=lambda: False,
            timeout_s=2,
            name="sleeper",
            log=log,
        )

    words = log.read_text().split()
    assert words[0] == "ready", "it never got going: the check would prove nothing"
    assert not Path(f"/proc/{words[1]}").exists()  # killed and reaped


def test_free_ports_are_distinct_and_bindable() -> None:
    ports = procs.free_ports(4)

    assert len(set(ports)) == 4
    for port in ports:
        assert not procs.port_in_use(port)
        with socket.socket() as held:
            held.bind(("127.0.0.1", port))
            held.listen()
            assert procs.port_in_use(port) and procs.port_open(port)


def test_tail_is_the_last_lines_or_a_note(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text("".join(f"line {n}\n" for n in range(100)))

    assert procs.tail(log, lines=2) == "line 98\nline 99\n"
    assert procs.tail(tmp_path / "missing.log") == f"(no log at {tmp_path / 'missing.log'})\n"


def test_a_child_environment_keeps_all_but_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECS_BACKEND", "remote")
    monkeypatch.setenv("NOT_RECS_X", "kept")

    env = procs.env_without_settings()

    assert "RECS_BACKEND" not in env
    assert env["NOT_RECS_X"] == "kept" and env["PATH"]


def test_cpu_seconds_count_what_a_process_and_its_thread_spent() -> None:
    pid = os.getpid()
    process, thread, (busy, total) = (
        procs.cpu_seconds(pid),
        procs.cpu_seconds(pid, pid),
        procs.box_cpu_seconds(),
    )
    began = time.process_time()
    while time.process_time() - began < 0.5:  # CPU time, however busy the machine is
        pass

    assert procs.cpu_seconds(pid) - process >= 0.4
    assert procs.cpu_seconds(pid, pid) - thread >= 0.4  # the spin ran on the main thread
    busy_after, total_after = procs.box_cpu_seconds()
    assert busy_after - busy >= 0.4
    assert total_after - total >= busy_after - busy - 1e-6  # equal on a machine busy throughout

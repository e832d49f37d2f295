"""app.workers: what a worker's end means, and the supervisor with real forked workers that
do nothing (no server): stop on SIGTERM, start a dead one again, stop on a failed start."""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

import pytest

from app.workers import STARTUP_FAILURE, Supervisor, after_exit, bind
from tests.support import wait_for

DEADLINE_S = 30.0


@pytest.mark.parametrize(
    ("code", "stopping", "outcome"),
    [
        (-signal.SIGTERM, True, "ended"),
        (STARTUP_FAILURE, True, "ended"),
        (0, True, "ended"),
        (-signal.SIGKILL, False, "restart"),
        (-signal.SIGSEGV, False, "restart"),
        (1, False, "restart"),
        (0, False, "restart"),
        (STARTUP_FAILURE, False, "fail"),
    ],
)
def test_what_a_workers_end_means(code: int, stopping: bool, outcome: str) -> None:
    assert after_exit(code, stopping=stopping) == outcome


def _sleep(slot: int = 0) -> None:
    time.sleep(DEADLINE_S * 2)


def _supervise(supervisor: Supervisor, until: Callable[[], bool]) -> int:
    """Runs the supervisor here and sends this process SIGTERM once `until()` holds, or after
    the deadline (a broken supervisor fails the test, never hangs it). The supervisor's own
    handler takes the signal, as the parent process's would."""
    met = threading.Event()

    def terminate() -> None:
        with suppress(AssertionError):
            wait_for(until, DEADLINE_S)
            met.set()
        os.kill(os.getpid(), signal.SIGTERM)

    # Ours while the supervisor's is not installed: a SIGTERM never ends pytest.
    previous = signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        trigger = threading.Thread(target=terminate, daemon=True)
        trigger.start()
        status = supervisor.run()
        trigger.join(DEADLINE_S + 5)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert met.is_set(), "the condition never held"
    return status


def test_sigterm_stops_every_worker_and_returns_zero() -> None:
    supervisor = Supervisor(3, _sleep, stop_timeout_s=DEADLINE_S)
    started: list[int] = []

    def all_started() -> bool:
        started[:] = list(supervisor.workers)
        return len(started) == 3

    assert _supervise(supervisor, all_started) == 0
    assert supervisor.workers == {}
    for pid in started:  # reaped: no such child any more
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


def test_the_signal_handlers_are_given_back() -> None:
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    assert Supervisor(1, lambda _: sys.exit(STARTUP_FAILURE), stop_timeout_s=1).run() == 3
    assert {sig: signal.getsignal(sig) for sig in handlers} == handlers


def test_a_worker_that_dies_is_started_again(tmp_path: Path) -> None:
    def die_once(slot: int) -> None:
        (tmp_path / str(os.getpid())).touch()
        if len(list(tmp_path.iterdir())) == 1:
            os._exit(1)
        _sleep()

    supervisor = Supervisor(1, die_once, stop_timeout_s=DEADLINE_S)
    assert _supervise(supervisor, lambda: len(list(tmp_path.iterdir())) == 2) == 0


def test_a_worker_that_fails_to_start_stops_the_others(tmp_path: Path) -> None:
    def first_fails(slot: int) -> None:
        try:
            (tmp_path / "failed").open("x").close()
        except FileExistsError:
            _sleep()
        else:
            sys.exit(STARTUP_FAILURE)

    supervisor = Supervisor(2, first_fails, stop_timeout_s=DEADLINE_S)
    assert supervisor.run() == STARTUP_FAILURE
    assert supervisor.workers == {}


def test_a_worker_deaf_to_sigterm_is_killed_after_the_timeout(tmp_path: Path) -> None:
    def deaf(slot: int) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        (tmp_path / "deaf").touch()
        _sleep()

    supervisor = Supervisor(1, deaf, stop_timeout_s=0.5)
    assert _supervise(supervisor, (tmp_path / "deaf").exists) == 1
    assert supervisor.workers == {}


def test_the_workers_sockets_share_the_port_and_its_connections() -> None:
    sockets = bind("127.0.0.1", 0, 2)
    clients = []
    try:
        assert len({sock.getsockname() for sock in sockets}) == 1
        assert all(sock.get_inheritable() for sock in sockets)
        for sock in sockets:
            sock.listen(64)
            sock.setblocking(False)
        clients = [socket.create_connection(sockets[0].getsockname()) for _ in range(32)]
        accepted = [0, 0]
        for n, sock in enumerate(sockets):
            with suppress(BlockingIOError):
                while True:
                    sock.accept()[0].close()
                    accepted[n] += 1
        # Spread by a hash of each connection's address: all 32 on one side is 1 in 2**31.
        assert sum(accepted) == 32 and min(accepted) > 0, accepted
    finally:
        for sock in [*sockets, *clients]:
            sock.close()


def test_a_port_something_listens_on_is_refused() -> None:
    with socket.socket() as other:  # another service, sharing the port if asked to
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        other.bind(("127.0.0.1", 0))
        other.listen()
        with pytest.raises(OSError, match="in use"):
            bind("127.0.0.1", other.getsockname()[1], 2)

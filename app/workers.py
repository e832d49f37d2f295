"""Pre-forked workers: with `RECS_WORKERS` > 1, that many processes serve one port.

The parent binds the port and builds the app, with the embedded backend's data loaded
and its embeddings indexed once; it freezes the garbage collector, so that the workers'
collections never write to those objects and their pages stay shared copy-on-write, and
forks the workers. Each worker runs uvicorn on an inherited socket and its own lifespan:
clients (CQL driver threads, aiohttp sessions) are built after the fork, never shared
between processes.

Each worker slot has a socket of its own, all bound to the port with SO_REUSEPORT, so that
the kernel spreads new connections evenly over the workers. On one shared socket, the worker
that wakes first accepts every connection waiting, and a client that opens its connections
at once (a load balancer's pool, a load generator) may find them all on one worker. The
parent keeps the sockets: a worker started again serves its predecessor's, with the
connections that waited in it.

The parent serves nothing. It waits for signals: SIGTERM or SIGINT is passed on to every
worker as SIGTERM (each drains as a single process does), a worker that ends unasked is
started again, and the parent exits once every worker has ended.
"""

from __future__ import annotations

import gc
import logging
import os
import select
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, NoReturn

from app.config import Settings

if TYPE_CHECKING:
    from fastapi import FastAPI

log = logging.getLogger(__name__)

# uvicorn.config.STARTUP_FAILURE: the lifespan's startup failed.
STARTUP_FAILURE = 3
# A worker that died sooner than this after its start is started again this long after.
RESTART_INTERVAL_S = 1.0
# How long workers may take beyond RECS_SHUTDOWN_GRACE_S (closing clients) before SIGKILL.
CLOSE_MARGIN_S = 10.0
# How often a worker checks that its parent is still there.
PARENT_CHECK_S = 1.0
_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD)

Outcome = Literal["ended", "restart", "fail"]


def serve(settings: Settings, run: Callable[[FastAPI, socket.socket], None]) -> int:
    """Serve from `settings.workers` processes, each calling `run(app, its socket)`; returns
    the parent's exit status."""
    from app.main import create_app, preload_embedded

    sockets = bind(settings.host, settings.port, settings.workers)
    # Remote backend: each worker connects in its lifespan, after the fork.
    preloaded = None if settings.use_remote else preload_embedded(settings)
    app = create_app(settings, preloaded=preloaded)
    # Whatever RECS_GC_FREEZE says: this keeps the loaded data's pages shared.
    gc.collect()
    gc.freeze()
    log.info(
        "serving from workers",
        extra={"workers": settings.workers, "address": f"{settings.host}:{settings.port}"},
    )

    def work(slot: int) -> None:
        for other, sock in enumerate(sockets):
            if other != slot:
                sock.close()
        run(app, sockets[slot])

    supervisor = Supervisor(
        settings.workers, work, stop_timeout_s=settings.shutdown_grace_s + CLOSE_MARGIN_S
    )
    try:
        return supervisor.run()
    finally:
        for sock in sockets:
            sock.close()


def bind(host: str, port: int, count: int) -> list[socket.socket]:
    """`count` sockets bound to `host:port` together (SO_REUSEPORT); each worker's uvicorn
    calls listen on its own."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # Without SO_REUSEPORT, this bind fails if anything listens on the port; the sockets
    # below would join another service of ours that set SO_REUSEPORT too, and split its load.
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))
        port = probe.getsockname()[1]  # port 0 asks for a free one
    sockets: list[socket.socket] = []
    for _ in range(count):
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.set_inheritable(True)
        sockets.append(sock)
    return sockets


def after_exit(code: int, *, stopping: bool) -> Outcome:
    """What a worker's end means: `code` as `os.waitstatus_to_exitcode` gives it."""
    if stopping:
        return "ended"
    if code == STARTUP_FAILURE:
        return "fail"  # as a single process would: no crash loop, the service stops
    return "restart"


@dataclass
class _Worker:
    slot: int
    started_at: float


# Not uvicorn.supervisors.Multiprocess: it spawns its workers, which then share no memory.
class Supervisor:
    """Keeps `count` forked workers running `work(slot)` until SIGTERM or SIGINT."""

    def __init__(
        self,
        count: int,
        work: Callable[[int], None],
        *,
        stop_timeout_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.count = count
        self.workers: dict[int, _Worker] = {}  # by pid
        self._work = work
        self._stop_timeout_s = stop_timeout_s
        self._clock = clock
        self._due: dict[int, float] = {}  # slots to start again, and when
        self._stop_deadline: float | None = None
        self._status = 0
        self._wake_r = self._wake_w = -1

    def run(self) -> int:
        with self._signals():
            for slot in range(self.count):
                self._start(slot)
            while self.workers or self._due:
                for signum in self._wait():
                    if signum in (signal.SIGTERM, signal.SIGINT):
                        self.stop(f"signal {signal.Signals(signum).name}")
                self._reap()
                self._start_due()
                self._kill_if_late()
        return self._status

    def stop(self, reason: str) -> None:
        """SIGTERM to every worker: each drains its requests and exits."""
        if self._stop_deadline is None:
            log.info("stopping workers", extra={"reason": reason, "pids": sorted(self.workers)})
            self._stop_deadline = self._clock() + self._stop_timeout_s
        self._due.clear()
        for pid in self.workers:
            _signal(pid, signal.SIGTERM)

    # --- signals ---------------------------------------------------------------------
    @contextmanager
    def _signals(self) -> Iterator[None]:
        """Signals become bytes on a pipe the loop waits on: whichever thread takes one."""
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        previous_fd = signal.set_wakeup_fd(self._wake_w)
        previous = {sig: signal.signal(sig, _ignore) for sig in _SIGNALS}
        try:
            yield
        finally:
            signal.set_wakeup_fd(previous_fd)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            os.close(self._wake_r)
            os.close(self._wake_w)

    def _wait(self) -> list[int]:
        timeout = 1.0  # also reaps a worker whose SIGCHLD merged with another's
        now = self._clock()
        if self._due:
            timeout = min(timeout, max(0.0, min(self._due.values()) - now))
        if self._stop_deadline is not None:
            timeout = min(timeout, max(0.0, self._stop_deadline - now))
        readable, _, _ = select.select([self._wake_r], [], [], timeout)
        return list(os.read(self._wake_r, 64)) if readable else []

    # --- workers -----------------------------------------------------------------------
    def _start(self, slot: int) -> None:
        sys.stdout.flush()  # else the worker would write the parent's buffer again
        sys.stderr.flush()
        # Blocked across the fork: a signal the worker gets before it has reset the
        # parent's handlers acts once it has (by default: it ends the worker).
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:
            self._be_worker(slot, parent, blocked)
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        self.workers[pid] = _Worker(slot, self._clock())
        log.info("worker started", extra={"pid": pid, "slot": slot})

    def _be_worker(self, slot: int, parent: int, blocked: Iterable[int]) -> NoReturn:
        code = 1
        try:
            signal.set_wakeup_fd(-1)
            os.close(self._wake_r)
            os.close(self._wake_w)
            # Default dispositions: uvicorn handles SIGTERM and SIGINT while it serves, and
            # raises the one it got again when done, which then ends the worker quietly.
            for sig in _SIGNALS:
                signal.signal(sig, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
            _exit_with(parent)
            self._work(slot)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            log.exception("worker failed")
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)

    def _reap(self) -> None:
        for pid in list(self.workers):
            done, status = os.waitpid(pid, os.WNOHANG)
            if not done:
                continue  # still running
            worker = self.workers.pop(pid)
            code = os.waitstatus_to_exitcode(status)
            outcome = after_exit(code, stopping=self._stop_deadline is not None)
            if outcome == "ended":
                log.info("worker ended", extra={"pid": pid, "exit": code})
            elif outcome == "restart":
                lived = self._clock() - worker.started_at
                log.warning(
                    "worker died: starting another",
                    extra={"pid": pid, "exit": code, "lived_s": round(lived, 1)},
                )
                self._due[worker.slot] = worker.started_at + RESTART_INTERVAL_S
            else:
                log.error("worker failed to start: stopping", extra={"pid": pid, "exit": code})
                self._status = STARTUP_FAILURE
                self.stop("a worker failed to start")

    def _start_due(self) -> None:
        now = self._clock()
        for slot, due in list(self._due.items()):
            if due <= now:
                del self._due[slot]
                self._start(slot)

    def _kill_if_late(self) -> None:
        if self._stop_deadline is None or self._clock() < self._stop_deadline:
            return
        for pid in self.workers:
            log.error("worker still running after the grace period: killed", extra={"pid": pid})
            _signal(pid, signal.SIGKILL)
            self._status = self._status or 1  # requests may have been cut: not a clean stop
        self._stop_deadline = self._clock() + self._stop_timeout_s  # once per period


def _ignore(signum: int, frame: object) -> None:
    """The parent's handler: the signal number reaches the loop through the wakeup pipe."""


def _signal(pid: int, signum: int) -> None:
    with suppress(ProcessLookupError):  # ended already: reaped on the next turn
        os.kill(pid, signum)


def _exit_with(parent: int) -> None:
    """A worker whose parent is gone (killed outright) drains and exits, as on SIGTERM."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_S)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()

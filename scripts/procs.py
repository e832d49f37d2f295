"""Child processes and ports, for the stack, the tests and the benchmark.

- `start` launches a server, its output appended to a log file, waits until a readiness check
  holds, and stops it again (raising `StartError` with the log's last lines) when it exits
  first or is not ready by its deadline. `launch` and `wait_ready` are its two halves, for
  the stack, whose servers outlive the process that started them.
- `stop` ends a child: SIGTERM, SIGKILL after a grace period, and waits for it (no zombie).
- `answers` is the usual readiness check: an HTTP GET that answers 200.
- `env_without_settings` is the environment a service child starts from.
- `free_port`, `free_ports`, `port_in_use`, `port_open`: ports on the loopback address.
- `cpu_seconds`, `box_cpu_seconds`: CPU time of a process or thread, and of the machine
  (Linux: /proc).

A process is always stopped by its own pid or process group, never by name.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

HOST = "127.0.0.1"
POLL_S = 0.1
STOP_GRACE_S = 10.0
LOG_TAIL_LINES = 30


class StartError(RuntimeError):
    """A process exited during start-up or was not ready by its deadline."""


def launch(
    argv: Sequence[str],
    *,
    log: Path | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    new_session: bool = False,
) -> subprocess.Popen[bytes]:
    """Start `argv`, stdout and stderr appended to `log` (inherited without one)."""
    if log is None:
        return subprocess.Popen(
            argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, start_new_session=new_session
        )
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:  # the child keeps its own descriptor
        return subprocess.Popen(
            argv,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=new_session,
        )


def wait_ready(
    ready: Callable[[], bool],
    *,
    alive: Callable[[], bool],
    timeout_s: float,
    name: str,
    log: Path | None = None,
) -> float:
    """Poll `ready()` until it holds and return the seconds it took. StartError when `alive()`
    turns false first, or after `timeout_s`."""
    began = time.monotonic()
    while True:
        if not alive():
            raise StartError(f"{name} exited during start-up{_last_lines(log)}")
        if ready():
            return time.monotonic() - began
        if time.monotonic() - began > timeout_s:
            raise StartError(f"{name} was not ready after {timeout_s:g} s{_last_lines(log)}")
        time.sleep(POLL_S)


def start(
    argv: Sequence[str],
    *,
    ready: Callable[[], bool],
    timeout_s: float,
    name: str,
    log: Path | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Launch `argv` and wait until `ready()`; on failure, stop it and raise StartError."""
    process = launch(argv, log=log, env=env, cwd=cwd)
    try:
        wait_ready(
            ready, alive=lambda: process.poll() is None, timeout_s=timeout_s, name=name, log=log
        )
    except BaseException:
        stop(process)
        raise
    return process


def stop(process: subprocess.Popen[bytes], grace_s: float = STOP_GRACE_S) -> int:
    """SIGTERM, then SIGKILL if it still runs after `grace_s`; its exit status once reaped."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait()


def env_without_settings() -> dict[str, str]:
    """This process's environment without its `RECS_*` settings (the caller sets its own)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("RECS_")}


def answers(url: str, timeout_s: float = 2.0) -> bool:
    """Whether a GET of `url` answers 200 (proxies ignored: the servers are local)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout_s) as response:
            return bool(response.status == 200)
    except (OSError, http.client.HTTPException):
        return False


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last `lines` lines of a log file, or a note that there is none."""
    try:
        with path.open(errors="replace") as file:
            return "".join(deque(file, maxlen=lines))
    except FileNotFoundError:
        return f"(no log at {path})\n"


def _last_lines(log: Path | None) -> str:
    return f"; last lines of {log}:\n{tail(log)}" if log is not None else ""


# --- ports ----------------------------------------------------------------------------------


def free_ports(count: int, address: str = HOST) -> list[int]:
    """`count` distinct ports that nothing listens on (all held at once while they are chosen)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for probe in sockets:
            probe.bind((address, 0))
        return [int(probe.getsockname()[1]) for probe in sockets]
    finally:
        for probe in sockets:
            probe.close()


def free_port(address: str = HOST) -> int:
    """A port that nothing listens on, for a server this process is about to start."""
    (port,) = free_ports(1, address)
    return port


def port_in_use(port: int, address: str = HOST) -> bool:
    """Whether something already holds `port` (a listener, or a bind on any address)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # Like the servers themselves: a port in TIME_WAIT after a restart is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((address, port))
        except OSError:
            return True
    return False


def port_open(port: int, address: str = HOST) -> bool:
    """Whether `address:port` accepts a TCP connection."""
    try:
        with socket.create_connection((address, port), timeout=0.5):
            return True
    except OSError:
        return False


# --- CPU time (Linux: /proc) ------------------------------------------------------------------

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int, thread: int | None = None) -> float:
    """User and system CPU seconds of process `pid` (all its threads), or of its `thread`."""
    path = Path(f"/proc/{pid}/stat" if thread is None else f"/proc/{pid}/task/{thread}/stat")
    fields = path.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def box_cpu_seconds() -> tuple[float, float]:
    """CPU seconds of the whole machine so far, every core: busy, and in all."""
    with open("/proc/stat") as stat:
        # user nice system idle iowait irq softirq steal
        ticks = [int(v) for v in stat.readline().split()[1:9]]
    total = sum(ticks)
    return (total - ticks[3] - ticks[4]) / TICKS, total / TICKS

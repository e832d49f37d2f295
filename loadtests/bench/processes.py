"""The bench servers as child processes (`scripts.procs`, stopped by their own pid), and the
CPU time they spend (/proc): the server's main thread (the event loop), all its threads, the
box.
"""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from loadtests.bench.variants import Variant
from scripts import procs

REPO = Path(__file__).resolve().parents[2]


@dataclass
class BenchServer:
    variant: Variant
    env: dict[str, str]
    log: Path
    port: int = field(default_factory=procs.free_port)
    process: subprocess.Popen[bytes] | None = None
    started_s: float = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def argv(self) -> list[str]:
        return [sys.executable, "-m", "loadtests.bench.server", *self.variant.pieces.argv()]

    def start(self, timeout_s: float = 90) -> None:
        # The caller's own RECS_* exports never leak in: only the benchmark's settings.
        env = {
            **procs.env_without_settings(),
            **self.env,
            **self.variant.env,
            "RECS_HOST": "127.0.0.1",
            "RECS_PORT": str(self.port),
        }
        began = time.monotonic()
        self.process = procs.start(
            self.argv(),
            ready=lambda: procs.answers(f"{self.url}/readyz"),
            timeout_s=timeout_s,
            name=self.variant.name,
            log=self.log,
            env=env,
            cwd=REPO,
        )
        self.started_s = time.monotonic() - began

    def stop(self, timeout_s: float = 15) -> None:
        process, self.process = self.process, None
        if process is not None:
            procs.stop(process, grace_s=timeout_s)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass(frozen=True)
class CpuTimes:
    """CPU seconds at one instant: the server's main thread, the whole server, the box, and
    how long the main thread has waited, runnable, for a core (schedstat's run delay)."""

    at: float
    main_s: float
    server_s: float
    box_busy_s: float
    box_total_s: float
    main_wait_s: float | None  # None where the kernel keeps no scheduler statistics

    @classmethod
    def read(cls, pid: int) -> CpuTimes:
        main, server = procs.cpu_seconds(pid, thread=pid), procs.cpu_seconds(pid)
        busy, total = procs.box_cpu_seconds()
        return cls(time.monotonic(), main, server, busy, total, _run_delay_s(pid))

    def __sub__(self, before: CpuTimes) -> CpuUse:
        waited = None
        if self.main_wait_s is not None and before.main_wait_s is not None:
            waited = self.main_wait_s - before.main_wait_s
        return CpuUse(
            wall_s=self.at - before.at,
            main_s=self.main_s - before.main_s,
            server_s=self.server_s - before.server_s,
            box_busy_s=self.box_busy_s - before.box_busy_s,
            box_total_s=self.box_total_s - before.box_total_s,
            main_wait_s=waited,
        )


@dataclass(frozen=True)
class CpuUse:
    wall_s: float
    main_s: float
    server_s: float
    box_busy_s: float
    box_total_s: float
    main_wait_s: float | None

    @property
    def main_share(self) -> float:
        """The event loop thread's CPU over wall time (1.0: a full core)."""
        return self.main_s / self.wall_s if self.wall_s else 0.0

    @property
    def box_busy(self) -> float:
        """Share of the whole box's CPU time that was busy (every process, every core)."""
        return self.box_busy_s / self.box_total_s if self.box_total_s else 0.0

    @property
    def main_wait_share(self) -> float | None:
        """Share of wall time the event loop thread was runnable but had no core: time the
        other processes on the box took from it (requests wait, the loop is not busy)."""
        if self.main_wait_s is None or not self.wall_s:
            return None
        return self.main_wait_s / self.wall_s

    def per_request_us(self, requests: int) -> float | None:
        return self.server_s / requests * 1e6 if requests else None


def _run_delay_s(pid: int) -> float | None:
    """The main thread's total wait on a run queue (the second field of schedstat, in ns)."""
    try:
        return int(Path(f"/proc/{pid}/task/{pid}/schedstat").read_text().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return None

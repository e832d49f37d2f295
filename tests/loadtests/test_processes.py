"""loadtests.bench.processes: what the bench reads from /proc about the server and the box."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from loadtests.bench.processes import CpuTimes


def _spin(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def test_the_main_threads_wait_for_a_core_is_measured() -> None:
    """Alone on its core the thread hardly waits; sharing that core with a busy process it
    waits about half the time, and the run delay shows it."""
    original = os.sched_getaffinity(0)
    core = min(original)
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        os.sched_setaffinity(0, {core})
        os.sched_setaffinity(busy.pid, original - {core} or {core})
        before = CpuTimes.read(os.getpid())
        _spin(0.4)
        alone = CpuTimes.read(os.getpid()) - before

        os.sched_setaffinity(busy.pid, {core})
        before = CpuTimes.read(os.getpid())
        _spin(0.6)
        shared = CpuTimes.read(os.getpid()) - before
    finally:
        os.sched_setaffinity(0, original)
        busy.kill()
        busy.wait()

    assert alone.main_wait_share is not None and shared.main_wait_share is not None
    assert shared.main_wait_share > 0.2
    assert shared.main_wait_share > alone.main_wait_share + 0.1

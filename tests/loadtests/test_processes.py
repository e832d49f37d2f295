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
    """Pinned to one core together with a busy process, the thread is runnable but waiting
    about half the time, and the run delay shows it. Other load on the machine can only add
    to that wait, so the check holds on a busy machine too."""
    original = os.sched_getaffinity(0)
    core = min(original)
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        os.sched_setaffinity(busy.pid, {core})
        os.sched_setaffinity(0, {core})
        before = CpuTimes.read(os.getpid())
        _spin(1.0)
        shared = CpuTimes.read(os.getpid()) - before
    finally:
        os.sched_setaffinity(0, original)
        busy.kill()
        busy.wait()

    assert shared.main_wait_share is not None
    assert shared.main_wait_share > 0.2

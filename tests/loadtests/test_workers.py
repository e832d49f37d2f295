"""loadtests.workers: what it reads from /proc about the service's processes and the box."""

from __future__ import annotations

import os
import time

from loadtests.workers import Memory, Usage


def test_memory_splits_into_private_and_shared_pages() -> None:
    memory = Memory.of(os.getpid())
    assert 0 < memory.private_kb <= memory.pss_kb <= memory.rss_kb


def test_usage_counts_the_cpu_a_process_spent() -> None:
    before = Usage.read([os.getpid()])
    end = time.process_time() + 0.5
    while time.process_time() < end:
        pass
    server, vegeta, _ = Usage.read([os.getpid()]).cores_since(before)
    # Half a second of CPU over a wall time that a busy machine can only stretch.
    assert server > 0.05
    assert vegeta == 0.0

"""The bench server's GC log: one line per collection, and its summary."""

from __future__ import annotations

import gc
import json
import time
from pathlib import Path

from loadtests.recipes import gclog


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def make_cycles(count: int) -> None:
    for _ in range(count):
        a, b = Node(), Node()
        a.other, b.other = b, a


def test_each_collection_is_logged_with_its_garbage_and_young_generation(tmp_path: Path) -> None:
    log = tmp_path / "gc.jsonl"
    callbacks = len(gc.callbacks)
    remove = gclog.install(log)
    gc.disable()  # only the collections asked for below
    try:
        gc.collect()
        before = time.time()
        make_cycles(500)  # 1,000 objects only the collector can free
        gc.collect(0)
    finally:
        gc.enable()
        remove()

    young = gclog.summarize(log, since=before)
    assert [row["generation"] for row in young] == [0]
    assert young[0]["collections"] == 1
    assert young[0]["collected_median"] >= 1000
    assert young[0]["young_objects_median"] >= 1000
    everything = gclog.summarize(log)
    assert [row["generation"] for row in everything] == [0, 2]  # gc.collect() is a full one
    assert len(gc.callbacks) == callbacks


def test_garbage_is_counted_by_type_and_then_freed(tmp_path: Path) -> None:
    log = tmp_path / "gc.jsonl"
    debug_flags = gc.get_debug()
    remove = gclog.install(log, garbage_types=True)
    gc.disable()
    try:
        gc.collect()
        make_cycles(300)
        gc.collect(0)
    finally:
        gc.enable()
        remove()

    last = json.loads(log.read_text().splitlines()[-1])
    counts = dict(last["garbage_types"])
    assert counts[f"{__name__}.Node"] == 600
    assert gc.garbage == []  # let go once counted
    assert gc.get_debug() == debug_flags

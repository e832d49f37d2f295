"""A per-collection GC log for a bench server, to see what a pause is made of.

    python -m loadtests.bench.server --gc-log gc.jsonl [--gc-garbage]
    python -m loadtests.recipes.gclog gc.jsonl [--since EPOCH_S] [--until EPOCH_S]

A line per collection: when (`t`), the generation, wall and CPU ms (wall far above CPU: the
process was descheduled), the young generation's size when it started (counted outside the
timed part), the allocation counts and the garbage found. With `garbage_types` the garbage is
also counted by type, kept in `gc.garbage` (`DEBUG_SAVEALL`) until then: a diagnostic of where
cyclic garbage comes from, whose pauses include freeing it late.
"""

from __future__ import annotations

import argparse
import collections
import gc
import json
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO


def install(path: Path, *, garbage_types: bool = False) -> Callable[[], None]:
    """Log every collection to `path` (line-buffered, so a killed server loses nothing)."""
    out: TextIO = path.open("w", buffering=1)
    debug_flags = gc.get_debug()
    started: dict[str, Any] = {}

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started["young"] = len(gc.get_objects(0)) if info["generation"] == 0 else None
            started["counts"] = gc.get_count()
            started["wall"] = time.perf_counter()
            started["cpu"] = time.thread_time()
            return
        wall_ms = (time.perf_counter() - started["wall"]) * 1000
        cpu_ms = (time.thread_time() - started["cpu"]) * 1000
        record = {
            "t": time.time(),
            "generation": info["generation"],
            "wall_ms": round(wall_ms, 3),
            "cpu_ms": round(cpu_ms, 3),
            "young_objects": started["young"],
            "counts": list(started["counts"]),
            "collected": info["collected"],
        }
        if garbage_types:
            found = collections.Counter(
                f"{type(o).__module__}.{type(o).__qualname__}" for o in gc.garbage
            )
            record["garbage_types"] = found.most_common(25)
            gc.garbage.clear()
        out.write(json.dumps(record) + "\n")

    gc.callbacks.append(on_gc)
    if garbage_types:
        gc.set_debug(debug_flags | gc.DEBUG_SAVEALL)

    def remove() -> None:
        gc.callbacks.remove(on_gc)
        gc.set_debug(debug_flags)
        out.close()

    return remove


def summarize(
    path: Path, *, since: float = 0.0, until: float = float("inf")
) -> list[dict[str, Any]]:
    """Per generation: collections, total and longest wall and CPU ms, median young size."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    rows = [row for row in rows if since <= row["t"] <= until]
    summary: list[dict[str, Any]] = []
    for generation in range(3):
        mine = [row for row in rows if row["generation"] == generation]
        if not mine:
            continue
        young = [row["young_objects"] for row in mine if row["young_objects"] is not None]
        summary.append(
            {
                "generation": generation,
                "collections": len(mine),
                "wall_ms_total": round(sum(row["wall_ms"] for row in mine), 1),
                "wall_ms_max": round(max(row["wall_ms"] for row in mine), 1),
                "cpu_ms_total": round(sum(row["cpu_ms"] for row in mine), 1),
                "cpu_ms_max": round(max(row["cpu_ms"] for row in mine), 1),
                "young_objects_median": int(statistics.median(young)) if young else None,
                "collected_median": int(statistics.median(row["collected"] for row in mine)),
            }
        )
    return summary


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m loadtests.recipes.gclog", description=__doc__)
    parser.add_argument("log", type=Path)
    parser.add_argument("--since", type=float, default=0.0, help="epoch seconds")
    parser.add_argument("--until", type=float, default=float("inf"), help="epoch seconds")
    args = parser.parse_args(argv)
    for row in summarize(args.log, since=args.since, until=args.until):
        print(json.dumps(row))


if __name__ == "__main__":
    main()

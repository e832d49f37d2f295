"""Recall@50 and ready time of the service's embeddings index, for real users' vectors or random.

    python -m loadtests.ann_recall --data data/demo [--users 1000]
    python -m loadtests.ann_recall --random 1000000 [--dim 64]

Activates the version as the service does (`ModelTracker.refresh` with the service's settings:
the vectors validated, the memory estimated, the index built and its search breadth
calibrated) and reports the time until a snapshot names it and the resident memory it added
(the table: vectors, ids, positions; the index: the rest, against the estimate less the
table's vectors), then compares the index's 50 nearest items with exact search. With `--data`:
the vectors of `DIR/embeddings.npz`, and for sampled users of `DIR/interactions.csv[.gz]` the
feed's user vector (the newest `RECS_HISTORY_LIMIT` interactions weighted as the feed weighs
them, the heaviest `RECS_MAX_SEEDS`). With `--random N`: N random normal vectors (generated
before the clock starts) and 1,000 random unit queries, the worst case: no structure at all.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from app.config import Settings
from app.domain import Interaction
from app.embeddings import EmbeddingTable, Vectors, read_embeddings, table_from_arrays
from app.model_versions import EmbeddingLimits, ModelTracker
from app.ranking.scoring import seed_weights, strongest
from app.ranking.types import ScoredList
from scripts.stats import percentile

K = 50
VERSION = "emb-measured"


class _OneVersion:
    """A ModelStore with one embeddings version, made (read or validated) when it is asked."""

    def __init__(self, make: Callable[[], EmbeddingTable]) -> None:
        self._make = make
        self.resident_mb = 0.0  # once the table is made, before it is indexed

    async def active_versions(self) -> dict[str, str]:
        return {"embeddings": VERSION}

    async def popular_lists(self, version: str) -> dict[str, ScoredList]:
        return {}

    async def embeddings(self, version: str) -> EmbeddingTable:
        table = self._make()
        self.resident_mb = _resident_mb()
        return table


def _resident_mb() -> float:
    """What stays resident: freed memory the allocator kept is handed back first."""
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * 4096 / 2**20


async def _histories(data: Path, settings: Settings, users: int) -> list[list[Interaction]]:
    from app.sources.embedded import EmbeddedBackend

    backend = EmbeddedBackend.load(data)
    picked = random.Random(2).sample(sorted(backend.users), min(users, len(backend.users)))
    return [await backend.recent(user, settings.history_limit) for user in picked]


def _user_queries(table: EmbeddingTable, data: Path, settings: Settings, users: int) -> Vectors:
    queries = []
    for history in asyncio.run(_histories(data, settings, users)):
        seeds = strongest(
            seed_weights(
                history,
                event_weights=settings.event_weights,
                half_life_ms=settings.recency_half_life_ms,
                position_decay=settings.recency_position_decay,
            ),
            settings.max_seeds,
        )
        vector = table.user_vector(seeds)
        if vector is not None:
            queries.append(vector)
    return np.asarray(queries, dtype=np.float32)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", type=Path, help="embedded data folder")
    source.add_argument("--random", type=int, help="this many random vectors")
    parser.add_argument("--users", type=int, default=1000, help="--data: users sampled")
    parser.add_argument("--dim", type=int, default=64, help="--random: dimensions")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    rng = np.random.default_rng(0)
    if args.data is not None:
        path = args.data / "embeddings.npz"
        store = _OneVersion(lambda: read_embeddings(path))
    else:
        raw = rng.standard_normal((args.random, args.dim), dtype=np.float32)
        ids = [f"i{n}" for n in range(args.random)]
        store = _OneVersion(lambda: table_from_arrays(ids, raw, "random"))
    import faiss  # noqa: F401  (loaded before the memory is measured)

    limits = EmbeddingLimits.from_settings(settings)
    models = ModelTracker(store, refresh_s=60, embeddings=limits)
    before = _resident_mb()
    started = time.perf_counter()
    snapshot = asyncio.run(models.refresh())
    ready_s = time.perf_counter() - started
    table_mb = store.resident_mb - before
    index_mb = _resident_mb() - store.resident_mb
    index = snapshot.embeddings
    if index is None:
        raise SystemExit(f"not indexed: {models.refused}")
    table = index.table
    if args.data is not None:
        queries = _user_queries(table, args.data, settings, args.users)
        asked = f"{len(queries)} users' vectors"
    else:
        queries = rng.standard_normal((1000, table.dim), dtype=np.float32)
        queries /= np.linalg.norm(queries, axis=1, keepdims=True)
        asked = f"{len(queries)} random queries"
    # Exact answers first: BLAS's threads, still spinning after a product, would slow a search.
    exact = [
        np.argpartition(-(queries[start : start + 100] @ table.vectors.T), K - 1, axis=1)[:, :K]
        for start in range(0, len(queries), 100)
    ]
    recalls = []
    latencies = []
    for vector, rows in zip(queries, np.concatenate(exact), strict=True):
        started = time.perf_counter()
        found = index.search(vector, K)
        latencies.append((time.perf_counter() - started) * 1e6)
        recalls.append(len({table.item_ids[row] for row in rows.tolist()} & set(found)) / K)
    breadth = f"ef {index.breadth}" if index.kind == "hnsw" else f"nprobe {index.breadth}"
    lists = f" of {index.lists} lists" if index.kind == "ivf" else ""
    print(
        f"{len(table)} vectors of {table.dim} dimensions, {index.kind} index ready in "
        f"{ready_s:.1f} s ({index.build_seconds:.1f} s building and calibrating); resident: "
        f"{table_mb:.0f} MB the table, {index_mb:.0f} MB the index (estimated "
        f"{(index.memory_bytes - table.vectors.nbytes) / 2**20:.0f} MB); "
        f"{breadth}{lists} (calibrated recall@50 {index.recall:.3f}); {asked}: recall@50 "
        f"{statistics.mean(recalls):.3f}, search p50 {percentile(latencies, 50):.0f} µs, "
        f"p99 {percentile(latencies, 99):.0f} µs"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

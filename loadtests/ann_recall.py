"""Recall@50 of the service's embeddings index for real users' vectors.

    python -m loadtests.ann_recall --data data/demo [--users 1000]

Builds the index of `DIR/embeddings.npz` as the service does (`AnnIndex.build` with the
service's settings, so its search breadth is calibrated the service's way), then for sampled
users of `DIR/interactions.csv[.gz]` computes the feed's user vector (the newest
`RECS_HISTORY_LIMIT` interactions weighted as the feed weighs them, the heaviest
`RECS_MAX_SEEDS`) and compares the index's 50 nearest items with exact search.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from pathlib import Path

import numpy as np

from app.config import Settings
from app.domain import Interaction
from app.embeddings import AnnIndex, read_embeddings
from app.model_versions import EmbeddingLimits
from app.ranking.scoring import seed_weights, strongest
from app.sources.embedded import EmbeddedBackend
from scripts.stats import percentile

K = 50


async def _histories(
    backend: EmbeddedBackend, users: list[str], limit: int
) -> list[list[Interaction]]:
    return [await backend.recent(user, limit) for user in users]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="embedded data folder")
    parser.add_argument("--users", type=int, default=1000)
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    table = read_embeddings(args.data / "embeddings.npz")
    started = time.perf_counter()
    index = AnnIndex.build(table, EmbeddingLimits.from_settings(settings).index)
    built_s = time.perf_counter() - started
    backend = EmbeddedBackend.load(args.data)
    users = random.Random(2).sample(sorted(backend.users), min(args.users, len(backend.users)))
    histories = asyncio.run(_histories(backend, users, settings.history_limit))
    recalls = []
    latencies = []
    for history in histories:
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
        if vector is None:
            continue
        exact = np.argpartition(-(table.vectors @ vector), K - 1)[:K]
        started = time.perf_counter()
        found = index.search(vector, K)
        latencies.append((time.perf_counter() - started) * 1e6)
        recalls.append(len({table.item_ids[row] for row in exact.tolist()} & set(found)) / K)
    print(
        f"{len(table)} vectors of {table.dim} dimensions, index built in {built_s:.1f} s, "
        f"{index.kind} breadth {index.breadth} (calibrated recall@50 {index.recall:.3f}); "
        f"{len(recalls)} users' vectors: recall@50 {statistics.mean(recalls):.3f}, search p50 "
        f"{percentile(latencies, 50):.0f} µs, p99 {percentile(latencies, 99):.0f} µs"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

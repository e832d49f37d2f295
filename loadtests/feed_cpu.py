"""CPU per feed request in process, for two configurations side by side.

    python -m loadtests.feed_cpu --a DIR [--a-set NAME=VALUE ...] --b DIR [--b-set NAME=VALUE ...]

Each side is an embedded data folder (the demo's format) and settings (`RECS_*` names, as
`--a-set RECS_HISTORY_LIMIT=50`). Both serve the same sample of users' feeds (limit 20)
through `Recommender.feed`, rounds alternating A and B; the figure is the process CPU time
per request, the median over rounds, and B / A. No server, no network: the ranking core,
the in-memory lookups and the page assembly, which is what a change to scoring costs.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import statistics
import time
from pathlib import Path

from app.config import Settings
from app.model_versions import ModelTracker
from app.recommender import FeedQuery, Recommender
from app.sources.embedded import EmbeddedBackend


def _side(data: Path, assignments: list[str]) -> tuple[Recommender, EmbeddedBackend]:
    settings = Settings.from_env(dict(a.split("=", 1) for a in assignments))
    backend = EmbeddedBackend.load(data)
    models = ModelTracker(backend, refresh_s=3600)
    asyncio.run(models.refresh())
    recommender = Recommender(
        settings,
        models=models,
        interactions=backend,
        neighbours=backend.neighbour_lookup,
        catalog=backend.catalog_lookup,
    )
    return recommender, backend


async def _round(recommender: Recommender, users: list[str]) -> float:
    gc.collect()
    started = time.process_time()
    for user in users:
        await recommender.feed(FeedQuery(user, 20))
    return (time.process_time() - started) / len(users) * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--a", type=Path, required=True, help="data folder of side A")
    parser.add_argument("--a-set", action="append", default=[], metavar="RECS_X=V")
    parser.add_argument("--b", type=Path, required=True, help="data folder of side B")
    parser.add_argument("--b-set", action="append", default=[], metavar="RECS_X=V")
    parser.add_argument("--users", type=int, default=2000, help="users sampled")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    side_a, backend = _side(args.a, args.a_set)
    side_b, _ = _side(args.b, args.b_set)
    users = random.Random(1).sample(sorted(backend.users), args.users)
    results: dict[str, list[float]] = {"A": [], "B": []}

    async def run() -> None:
        for _ in range(args.rounds):
            results["A"].append(await _round(side_a, users))
            results["B"].append(await _round(side_b, users))

    asyncio.run(run())
    medians = {side: statistics.median(values) for side, values in results.items()}
    for side, values in results.items():
        rounds = ", ".join(f"{value:.0f}" for value in values)
        print(f"{side}: {medians[side]:.0f} µs CPU per feed request (rounds: {rounds})")
    print(f"B / A: {medians['B'] / medians['A']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

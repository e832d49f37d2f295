"""Where a feed request's time goes, stage by stage, in-process (no HTTP, no load generator).

    python -m loadtests.recipes.stages [--calls N] [--users N] [--out FILE.json]

With the service's `RECS_*` settings (the local stack's, or the embedded backend): the app and
its lifespan, a feed request for every distinct Zipf-drawn user first (caches warm), then
`--calls` requests one after the other, timing the recommender's dependency calls (wall,
waits included) and the pure core's functions (CPU-bound). Sequential on purpose: a stage's
cost without queueing; the bench measures what load adds.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from app import recommender as recommender_module
from app.config import Settings

# The pure core's functions as the recommender module imported them.
CORE_STAGES = (
    "seed_weights",
    "score_candidates",
    "top_candidates",
    "popular_candidates",
    "add_candidates",
    "preferred_category_and_region",
    "_ids",
    "_items",
)
# The recommender's dependency calls (each behind its cache, breaker and timeout).
DEPENDENCY_STAGES = ("_recent", "_neighbour_lists", "_catalog_items")


class StageClock:
    """Total wall time and calls per stage name."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)

    def wrap(self, name: str, call: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return call(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - started
                self.calls[name] += 1

        return timed

    def wrap_async(
        self, name: str, call: Callable[..., Awaitable[Any]]
    ) -> Callable[..., Awaitable[Any]]:
        async def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await call(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - started
                self.calls[name] += 1

        return timed

    def reset(self) -> None:
        self.seconds.clear()
        self.calls.clear()


async def measure(settings: Settings, *, calls: int, users: int, seed: int = 3) -> dict[str, Any]:
    from app.main import create_app
    from app.recommender import FeedQuery
    from loadtests.zipf import ZIPF_S, Zipf

    clock = StageClock()
    originals = {name: getattr(recommender_module, name) for name in CORE_STAGES}
    for name, function in originals.items():
        setattr(recommender_module, name, clock.wrap(name, function))
    try:
        app = create_app(settings)
        async with app.router.lifespan_context(app) as state:
            assert state is not None
            recommender = state["recommender"]
            for name in DEPENDENCY_STAGES:
                setattr(recommender, name, clock.wrap_async(name, getattr(recommender, name)))
            rng = random.Random(seed)
            zipf = Zipf(users, ZIPF_S)
            user_ids = [f"user-{zipf.rank(rng)}" for _ in range(calls)]
            for user_id in dict.fromkeys(user_ids):  # the warm-up: each user once
                await recommender.feed(FeedQuery(user_id, 20))
            clock.reset()
            cpu_before, started = time.process_time(), time.perf_counter()
            for user_id in user_ids:
                await recommender.feed(FeedQuery(user_id, 20))
            wall_s, cpu_s = time.perf_counter() - started, time.process_time() - cpu_before
    finally:
        for name, function in originals.items():
            setattr(recommender_module, name, function)
    return {
        "calls": calls,
        "users": users,
        "wall_us_per_request": wall_s / calls * 1e6,
        "cpu_us_per_request": cpu_s / calls * 1e6,
        "stages": {
            name: {
                "us_per_request": clock.seconds[name] / calls * 1e6,
                "calls_per_request": clock.calls[name] / calls,
            }
            for name in sorted(clock.seconds, key=lambda n: -clock.seconds[n])
        },
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m loadtests.recipes.stages")
    parser.add_argument("--calls", type=int, default=1000, help="timed feed requests")
    parser.add_argument("--users", type=int, default=10_000, help="ids user-1..user-N")
    parser.add_argument("--out", type=Path, help="also write the result as JSON here")
    args = parser.parse_args(argv)
    import uvloop

    result = uvloop.run(measure(Settings.from_env(), calls=args.calls, users=args.users))
    print(
        f"feed, {args.calls} requests one at a time: {result['wall_us_per_request']:,.0f} µs "
        f"wall, {result['cpu_us_per_request']:,.0f} µs CPU per request"
    )
    for name, stage in result["stages"].items():
        print(
            f"  {name:32s} {stage['us_per_request']:8.1f} µs per request "
            f"({stage['calls_per_request']:.1f} calls)"
        )
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

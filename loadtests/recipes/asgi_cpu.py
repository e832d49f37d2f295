"""A similar-items request's cost in-process, through the whole ASGI app (no HTTP, no load
generator), beside the bench's floor route (a pre-serialized page through the same
middleware and routing) and `Recommender.similar` alone, for Zipf-drawn items, caches warm.

    eval "$(.venv/bin/python scripts/stack.py env)"
    RECS_BACKEND=remote python -m loadtests.recipes.asgi_cpu [--requests 3000] [--cold]

Prints the process CPU per request (best of 5 passes). With `--cold`, also the wall time per
request (best of 3) when the CPU's caches are emptied before each one (16 MB written between
requests, outside the timing): what the other processes of a shared core do to a request
that arrives alone.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

from app.config import Settings
from app.main import create_app
from app.recommender import SimilarQuery
from loadtests.bench.server import add_floor
from loadtests.zipf import ZIPF_S, Zipf

Call = Callable[[str], Awaitable[Any]]
SCRATCH = bytearray(16 * 1024 * 1024)


def _empty_caches() -> None:
    SCRATCH[::64] = b"\x01" * (len(SCRATCH) // 64)


async def _cpu_us(call: Call, items: Sequence[str]) -> float:
    began = time.process_time()
    for item in items:
        await call(item)
    return (time.process_time() - began) / len(items) * 1e6


async def _wall_us(call: Call, items: Sequence[str], *, cold: bool) -> float:
    total = 0
    for item in items:
        if cold:
            _empty_caches()
        began = time.perf_counter_ns()
        await call(item)
        total += time.perf_counter_ns() - began
    return total / len(items) / 1000


async def measure(requests: int, cold: bool) -> None:
    app = create_app(Settings.from_env())
    add_floor(app)
    async with app.router.lifespan_context(app) as state:
        assert state is not None
        recommender = state["recommender"]

        async def get(path: str) -> None:
            async def receive() -> MutableMapping[str, Any]:
                return {"type": "http.request", "body": b""}

            async def send(message: MutableMapping[str, Any]) -> None:
                pass

            scope = {
                "type": "http",
                "asgi": {"version": "3.0"},
                "http_version": "1.1",
                "method": "GET",
                "scheme": "http",
                "path": path,
                "raw_path": path.encode(),
                "query_string": b"limit=12",
                "root_path": "",
                "headers": [(b"host", b"x")],
                "client": None,
                "server": None,
                "state": dict(state),
            }
            await app(scope, receive, send)

        rng = random.Random(3)
        zipf = Zipf(50_000, ZIPF_S)
        items = [f"item-{zipf.rank(rng)}" for _ in range(requests)]
        for item in dict.fromkeys(items):
            await recommender.similar(SimilarQuery(item, 12))
        calls: dict[str, Call] = {
            "Recommender.similar": lambda i: recommender.similar(SimilarQuery(i, 12)),
            "similar-items route": lambda i: get(f"/v1/items/{i}/similar"),
            "floor route": lambda i: get("/bench/floor"),
        }
        for name, call in calls.items():
            best = min([await _cpu_us(call, items) for _ in range(5)])
            print(f"{name}: {best:.0f} µs CPU per request, best of 5")
        if cold:
            for name, call in calls.items():
                warm = min([await _wall_us(call, items, cold=False) for _ in range(3)])
                emptied = min([await _wall_us(call, items, cold=True) for _ in range(3)])
                print(f"{name}: {warm:.0f} µs wall warm, {emptied:.0f} µs with caches emptied")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m loadtests.recipes.asgi_cpu",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--requests", type=int, default=3000, help="Zipf-drawn items per pass")
    parser.add_argument("--cold", action="store_true", help="also wall time, caches emptied")
    args = parser.parse_args(argv)
    asyncio.run(measure(args.requests, args.cold))


if __name__ == "__main__":
    main()

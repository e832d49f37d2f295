"""Two costs of the catalog cache (`app.sources.cache`), in-process.

    python -m loadtests.recipes.catalog_cache hit
    eval "$(.venv/bin/python scripts/stack.py env)"
    python -m loadtests.recipes.catalog_cache reload

`hit` (no network): a lookup of 84 keys drawn from 50,000 cached items, in the catalog's
cache (a TTL: a hit does not reorder) and in the same cache without a TTL (a true LRU: each
hit moves its entry), µs per lookup. `reload` (the stack's catalog service, uvloop): 20,000
cached items reloaded slice by slice, as the background refresh does, for slices of 200
(the product's), 100 and 50 items: CPU per slice, and the longest turns of the event loop
while they run (a task measures the time between its turns).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from collections.abc import Mapping, Sequence

from app.domain import CatalogItem
from app.sources.cache import BatchCache, catalog_cache, catalog_item_size

ITEMS = 50_000


async def _read(ids: Sequence[str]) -> Mapping[str, CatalogItem]:
    return {i: CatalogItem(i, title=f"t{i}") for i in ids}


async def hit() -> None:
    async def load(_: str, ids: list[str]) -> Mapping[str, CatalogItem]:
        return await _read(ids)

    caches = {
        "catalog cache (TTL, no reorder)": catalog_cache(
            _read, max_mb=256, ttl_s=3600, refresh_s=3600
        ),
        "without a TTL (LRU, reorders)": BatchCache(
            load, max_bytes=256 * 1024 * 1024, sizeof=catalog_item_size
        ),
    }
    keys = [f"item-{i}" for i in range(ITEMS)]
    rng = random.Random(1)
    asks = [[keys[rng.randrange(ITEMS)] for _ in range(84)] for _ in range(2000)]
    for name, cache in caches.items():
        for start in range(0, ITEMS, 500):
            await cache.get_many("", keys[start : start + 500], timeout=1)
        began = time.perf_counter()
        for _ in range(5):
            for ask in asks:
                await cache.get_many("", ask, timeout=1)
        spent = (time.perf_counter() - began) / (5 * len(asks))
        print(f"{name}: {spent * 1e6:.1f} µs per lookup of 84 keys")


async def _loop_turns(turns: list[float], stop: asyncio.Event) -> None:
    """The time between this task's turns of the event loop, until `stop`."""
    last = time.perf_counter()
    while not stop.is_set():
        await asyncio.sleep(0)
        now = time.perf_counter()
        turns.append(now - last)
        last = now


async def reload() -> None:
    from app.config import Settings
    from app.sources.catalog import HttpCatalog, build_http_client

    url = Settings.from_env().catalog_url
    async with build_http_client(url, timeout_s=1, max_connections=8) as http:
        catalog = HttpCatalog(http)
        ids = [f"item-{i}" for i in range(1, 20_001)]
        cache = catalog_cache(catalog.items, max_mb=256, ttl_s=600, refresh_s=300)
        await cache.get_many("", ids, timeout=5)
        for size in (200, 100, 50):
            turns: list[float] = []
            stop = asyncio.Event()
            task = asyncio.create_task(_loop_turns(turns, stop))
            began = time.process_time()
            for start in range(0, len(ids), size):
                await cache._load_batch("", ids[start : start + size])  # one reload slice
            spent = time.process_time() - began
            stop.set()
            await task
            turns.sort()
            longest = ", ".join(f"{t * 1000:.2f}" for t in turns[-5:])
            slices = len(ids) // size
            print(
                f"slices of {size}: {spent / slices * 1000:.2f} ms CPU per slice; "
                f"longest loop turns {longest} ms"
            )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m loadtests.recipes.catalog_cache",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("what", choices=("hit", "reload"))
    args = parser.parse_args(argv)
    if args.what == "hit":
        asyncio.run(hit())
    else:
        import uvloop

        uvloop.run(reload())


if __name__ == "__main__":
    main()

"""Two costs of the catalog client, in-process.

    python -m loadtests.recipes.catalog_client request
    eval "$(.venv/bin/python scripts/stack.py env)"
    python -m loadtests.recipes.catalog_client garbage

`request` (no network) builds the lookup of 100 ids as a GET with the ids in the query string
and as the product's POST with a JSON body: CPU µs per request built. `garbage` (the stack's
catalog service) counts the objects each lookup of 100 ids leaves in reference cycles
(`gc.DEBUG_SAVEALL` over 50 lookups) for httpx's plain `post` and for `HttpCatalog.items`,
which hands the response a spent stream once it has read the body.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import timeit
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import httpx
import orjson

IDS = [f"item-{i}" for i in range(100, 200)]


def request() -> None:
    client = httpx.AsyncClient(base_url="http://catalog")
    builds: dict[str, Callable[[], httpx.Request]] = {
        "GET /items?ids=": lambda: client.build_request(
            "GET", "/items", params={"ids": ",".join(IDS)}
        ),
        "POST /items/lookup": lambda: client.build_request(
            "POST",
            "/items/lookup",
            content=orjson.dumps({"ids": IDS}),
            headers={"content-type": "application/json"},
        ),
    }
    for name, build in builds.items():
        best = min(timeit.repeat(build, number=2000, repeat=5)) / 2000
        print(f"{name}: {best * 1e6:.0f} µs per request built")


async def _cyclic(lookup: Callable[[], Awaitable[Any]], calls: int = 50) -> None:
    for _ in range(5):
        await lookup()
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for _ in range(calls):
            await lookup()
        gc.collect()
        kinds = collections.Counter(
            f"{type(o).__module__}.{type(o).__qualname__}" for o in gc.garbage
        )
        print(f"  {len(gc.garbage) / calls:.1f} objects per lookup; {kinds.most_common(6)}")
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


async def garbage() -> None:
    from app.config import Settings
    from app.sources.catalog import HttpCatalog, build_http_client

    url = Settings.from_env().catalog_url
    async with build_http_client(url, timeout_s=1.0, max_connections=4) as client:
        catalog = HttpCatalog(client)

        async def plain_post() -> Any:
            response = await client.post(
                "/items/lookup",
                content=orjson.dumps({"ids": IDS}),
                headers={"content-type": "application/json"},
            )
            return orjson.loads(response.content)

        print("httpx's post, the body read:")
        await _cyclic(plain_post)
        print("HttpCatalog.items:")
        await _cyclic(lambda: catalog.items(IDS))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m loadtests.recipes.catalog_client",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("what", choices=("request", "garbage"))
    args = parser.parse_args(argv)
    if args.what == "request":
        request()
    else:
        asyncio.run(garbage())


if __name__ == "__main__":
    main()

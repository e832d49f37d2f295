"""Micro-benchmarks of hot-path decisions, outside the server, on pytest-benchmark.

    python -m loadtests.bench.micro scylla|dynamodb|catalog|serialization [--calls N]
        [--users N] [--items N] --out FILE.json

runs this file's `test_WHAT` under pytest with the service's RECS_* settings:

- `scylla`: neighbour lists of N items in one thread-pool hop: the product's IN chunks of 100,
  smaller chunks, one query per key (`execute_async`, `execute_concurrent_with_args`);
- `dynamodb`: the feed's query through the product's client, stock aioboto3, boto3 in threads
  and the signed-JSON experiment (`pieces`);
- `catalog`: `HttpCatalog.items` with 100 ids and 1, on the aiohttp transport and httpx's own;
- `serialization`: a page to JSON bytes, the product's way and three others.

Clients run one call at a time and 16 in flight, the process's CPU time kept per round;
`summarize` turns pytest-benchmark's JSON into the report's rows.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from app.config import Settings
from scripts.stats import percentile

Read = Callable[[Any], Awaitable[Any]]
IN_FLIGHT = (1, 16)


def _users() -> int:
    return int(os.environ.get("BENCH_USERS", "10000"))


def _items() -> int:
    return int(os.environ.get("BENCH_ITEMS", "50000"))


def _item_ids(rng: random.Random, count: int) -> list[str]:
    return [f"item-{rng.randint(1, _items())}" for _ in range(count)]


@pytest.fixture(scope="module")
def rounds(request: pytest.FixtureRequest) -> int:
    return int(request.config.getoption("benchmark_min_rounds"))


@pytest.fixture(scope="module")
def settings() -> Settings:
    return Settings.from_env()


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    import uvloop

    loop = uvloop.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture(scope="module")
def clients(loop: asyncio.AbstractEventLoop) -> Iterator[contextlib.AsyncExitStack]:
    """Where a module's async clients are entered, to be closed at its end."""
    stack = contextlib.AsyncExitStack()
    yield stack
    loop.run_until_complete(stack.aclose())


def _measure(
    benchmark: Any,
    loop: asyncio.AbstractEventLoop,
    read: Read,
    draw: Callable[[random.Random], Any],
    rounds: int,
    in_flight: int = 1,
) -> None:
    """`read` on the event loop, `rounds` calls in rounds of `in_flight` at once (after a tenth
    of them as a warm-up); the process's CPU time and the rows found kept per round."""
    rng = random.Random(7)
    batches = [[draw(rng) for _ in range(in_flight)] for _ in range(max(1, rounds // in_flight))]
    cpu_s: list[float] = []
    found: list[int] = []

    async def batch(args: list[Any]) -> list[Any]:
        if len(args) == 1:
            return [await read(args[0])]
        return await asyncio.gather(*(read(arg) for arg in args))

    def call(args: list[Any]) -> None:
        before = time.process_time()
        results = loop.run_until_complete(batch(args))
        cpu_s.append(time.process_time() - before)
        found.append(sum(map(len, results)))

    for args in batches[: max(3, len(batches) // 10)]:
        call(args)
    cpu_s.clear()
    found.clear()
    queue = iter(batches)
    benchmark.pedantic(call, setup=lambda: ((next(queue),), {}), rounds=len(batches))
    benchmark.extra_info.update(per_round=in_flight, cpu_s=cpu_s, found=found)


# --- scylla ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scylla(settings: Settings, loop: asyncio.AbstractEventLoop) -> Iterator[dict[str, Read]]:
    from cassandra.concurrent import execute_concurrent_with_args

    from app.ranking.types import ScoredList
    from app.sources.scylla import ScyllaStore, connect

    cluster, session = connect(settings)
    pool = ThreadPoolExecutor(settings.scylla_executor_threads, thread_name_prefix="cql")
    timeout_s = 2.0  # generous: measure the strategy, not the timeout
    keyspace = settings.scylla_keyspace
    stores = {
        c: ScyllaStore(session, pool, keyspace=keyspace, timeout_s=timeout_s, in_chunk=c)
        for c in (100, 50, 20)
    }
    version = loop.run_until_complete(stores[100].active_versions())["neighbours"]
    single = session.prepare(
        f"SELECT item_id, neighbour_ids, scores FROM {keyspace}.neighbours "
        "WHERE model_version = ? AND item_id = ?"
    )

    def lists(results: Any) -> dict[str, ScoredList]:
        return {
            i: ScoredList(tuple(n or ()), tuple(s or ())) for rows in results for i, n, s in rows
        }

    def single_async(ids: list[str]) -> dict[str, ScoredList]:
        futures = [session.execute_async(single, (version, i), timeout=timeout_s) for i in ids]
        return lists(future.result() for future in futures)

    def single_concurrent(ids: list[str]) -> dict[str, ScoredList]:
        args = [(version, i) for i in ids]
        done = execute_concurrent_with_args(session, single, args, concurrency=min(100, len(ids)))
        return lists(rows for _, rows in done)

    def in_pool(read: Callable[[list[str]], dict[str, ScoredList]]) -> Read:
        return lambda ids: loop.run_in_executor(pool, read, ids)

    def chunked(store: ScyllaStore) -> Read:
        return lambda ids: store.neighbours(version, ids)

    yield {
        **{f"in-{chunk}": chunked(store) for chunk, store in stores.items()},
        "single-async": in_pool(single_async),
        "single-concurrent": in_pool(single_concurrent),
    }
    pool.shutdown(wait=False)
    cluster.shutdown()


STRATEGIES = ("in-100", "in-50", "in-20", "single-async", "single-concurrent")


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("keys", [10, 50, 100, 200])
def test_scylla(
    benchmark: Any, loop: Any, scylla: dict[str, Read], rounds: int, keys: int, strategy: str
) -> None:
    _measure(benchmark, loop, scylla[strategy], lambda rng: _item_ids(rng, keys), rounds)


# --- dynamodb ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dynamodb(settings: Settings, loop: Any, clients: contextlib.AsyncExitStack) -> dict[str, Read]:
    import aioboto3
    import aiohttp
    from aiobotocore.config import AioConfig

    from app.sources import dynamo
    from loadtests.bench.pieces import SignedJsonDynamoDB, ThreadedBoto3, boto3_client

    relaxed = settings.model_copy(update={"dynamodb_timeout_ms": 5000})
    timeout_s, pool = 5.0, settings.dynamodb_max_connections
    region, endpoint = settings.dynamodb_region, settings.dynamodb_endpoint_url

    async def enter() -> dict[str, Any]:
        product = dynamo.connect(relaxed, max_connections=pool, timeout_s=timeout_s, max_attempts=1)
        # aioboto3 as it comes: botocore's own parser and User-Agent (what `connect` saves).
        config = AioConfig(
            max_pool_connections=pool,
            connect_timeout=timeout_s,
            read_timeout=timeout_s,
            retries={"max_attempts": 1, "mode": "standard"},
        )
        stock = aioboto3.Session().client(
            "dynamodb", region_name=region, endpoint_url=endpoint or None, config=config
        )
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=pool))
        return {
            "product": await clients.enter_async_context(product),
            "stock-aioboto3": await clients.enter_async_context(stock),
            "boto3-threads": ThreadedBoto3(boto3_client(relaxed)),
            "signed-json": SignedJsonDynamoDB(
                await clients.enter_async_context(session),
                endpoint_url=endpoint,
                region=region,
                timeout_s=timeout_s,
            ),
        }

    def reader(client: Any) -> Read:
        interactions = dynamo.DynamoInteractions(client, table=settings.dynamodb_table)
        return lambda user_id: interactions.recent(user_id, settings.history_limit)

    return {name: reader(client) for name, client in loop.run_until_complete(enter()).items()}


@pytest.mark.parametrize("client", ["product", "stock-aioboto3", "boto3-threads", "signed-json"])
@pytest.mark.parametrize("in_flight", IN_FLIGHT)
def test_dynamodb(
    benchmark: Any, loop: Any, dynamodb: dict[str, Read], rounds: int, in_flight: int, client: str
) -> None:
    from loadtests.zipf import ZIPF_S, Zipf

    zipf = Zipf(_users(), ZIPF_S)
    draw = zipf.rank
    _measure(benchmark, loop, dynamodb[client], lambda rng: f"user-{draw(rng)}", rounds, in_flight)


# --- catalog -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def catalog(settings: Settings, loop: Any, clients: contextlib.AsyncExitStack) -> dict[str, Read]:
    from app.sources.catalog import HttpCatalog, build_http_client
    from loadtests.bench.pieces import build_default_http_client

    readers: dict[str, Read] = {}
    for name, build in (("aiohttp", build_http_client), ("httpx", build_default_http_client)):
        client = build(
            settings.catalog_url, timeout_s=5.0, max_connections=settings.catalog_max_connections
        )
        loop.run_until_complete(clients.enter_async_context(client))
        readers[name] = HttpCatalog(client).items
    return readers


@pytest.mark.parametrize("transport", ["aiohttp", "httpx"])
@pytest.mark.parametrize("ids", [100, 1])
@pytest.mark.parametrize("in_flight", IN_FLIGHT)
def test_catalog(
    benchmark: Any,
    loop: Any,
    catalog: dict[str, Read],
    rounds: int,
    in_flight: int,
    ids: int,
    transport: str,
) -> None:
    read = catalog[transport]
    _measure(benchmark, loop, read, lambda rng: _item_ids(rng, ids), rounds, in_flight)


# --- serialization -----------------------------------------------------------------------------


@pytest.mark.parametrize("way", ["product", "orjson", "pydantic", "pydantic-jsonable"])
@pytest.mark.parametrize("items", [20, 12])
def test_serialization(benchmark: Any, rounds: int, items: int, way: str) -> None:
    import json

    import orjson
    from fastapi.encoders import jsonable_encoder
    from pydantic import TypeAdapter

    from app.api.serialization import page_bytes
    from loadtests.bench.pieces import PageModel
    from loadtests.bench.server import floor_page

    adapter = TypeAdapter(PageModel)
    ways: dict[str, Callable[[Any], bytes]] = {
        "product": page_bytes,  # hand-built dicts, orjson
        "orjson": orjson.dumps,  # on the slotted dataclasses
        "pydantic": lambda p: adapter.dump_json(adapter.validate_python(p)),  # this FastAPI
        "pydantic-jsonable": lambda p: json.dumps(  # older FastAPI
            jsonable_encoder(adapter.validate_python(p))
        ).encode(),
    }
    serialize, page = ways[way], floor_page(items)
    serialize(page)
    benchmark.pedantic(serialize, args=(page,), rounds=5, iterations=rounds)


# --- the report's rows -------------------------------------------------------------------------


def summarize(results: dict[str, Any]) -> list[dict[str, Any]]:
    """A row per case of pytest-benchmark's JSON: seconds per round (min, median, p99); CPU
    seconds and rows found per call, and calls per second."""
    rows = []
    for case in results["benchmarks"]:
        stats, extra = case["stats"], case["extra_info"]
        per_round, cpu, found = extra.get("per_round", 1), extra.get("cpu_s"), extra.get("found")
        rows.append(
            {
                "case": ", ".join(f"{k} {v}" for k, v in (case["params"] or {}).items()),
                "rounds": stats["rounds"],
                "per_round": per_round,
                "min_s": stats["min"],
                "median_s": stats["median"],
                "p99_s": percentile(stats["data"], 99),
                "cpu_s": statistics.median(cpu) / per_round if cpu else None,
                "calls_per_s": per_round / stats["mean"] if stats["mean"] else None,
                "found": statistics.fmean(found) / per_round if found else None,
            }
        )
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.bench.micro")
    parser.add_argument("what", choices=("scylla", "dynamodb", "catalog", "serialization"))
    parser.add_argument("--calls", "--reps", type=int, default=200, help="rounds per case")
    parser.add_argument("--users", type=int, default=_users(), help="ids user-1..user-N")
    parser.add_argument("--items", type=int, default=_items(), help="ids item-1..item-N")
    parser.add_argument("--out", type=Path, required=True, help="pytest-benchmark's JSON")
    args = parser.parse_args(argv)
    os.environ |= {"BENCH_USERS": str(args.users), "BENCH_ITEMS": str(args.items)}
    options = ["-q", "-p", "no:cacheprovider", "--import-mode=importlib", "-k", f"test_{args.what}"]
    return pytest.main(
        [__file__, *options, f"--benchmark-min-rounds={args.calls}", f"--benchmark-json={args.out}"]
    )


if __name__ == "__main__":
    raise SystemExit(main())

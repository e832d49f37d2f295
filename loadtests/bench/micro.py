"""Micro-benchmarks of two decisions of the hot path, outside the server.

    python -m loadtests.bench.micro scylla  --reps N --out FILE.json
    python -m loadtests.bench.micro catalog --calls N --out FILE.json
    python -m loadtests.bench.micro dynamodb --calls N --out FILE.json
    python -m loadtests.bench.micro serialization --calls N --out FILE.json

(settings from RECS_* like the service; the runner passes the stack's.)

`scylla`: neighbour lists for 10, 50, 100 and 200 keys read in ONE thread-pool hop (as a
request's cache misses are), four ways:

- `in-100` the product: `ScyllaStore.neighbours`, IN queries of at most 100 keys
  (RECS_SCYLLA_IN_CHUNK), every chunk in flight at once;
- `in-50`, `in-20`: the same code with 50 or 20 keys per IN query (more, smaller queries in
  parallel);
- `single-async`: one prepared single-key statement per key, all sent with `execute_async`
  inside the hop, then awaited (token-aware per key on ScyllaDB);
- `single-concurrent`: the driver's `execute_concurrent_with_args` (at most 100 in flight).

Wall time is measured on the event loop from the hop's submission to its result; CPU is the
process's (`time.process_time`: the pool thread, the driver's reactor and the loop). The
strategies are interleaved in a random order per repetition, over uniformly drawn item ids
(cache misses are the long tail, not the hot head).

`dynamodb`: the feed's query of a user's recent interactions (`DynamoInteractions.recent`,
ConsistentRead, Limit 50) through the product's aioboto3 client (`dynamo.connect`), aioboto3 as
it comes (botocore's own response parser and User-Agent), boto3 in the default executor, and
an experiment (`pieces.SignedJsonDynamoDB`: signed plain HTTP, orjson): latency and process
CPU per call, one at a time (the clients interleaved) and 16 at a time.

`serialization`: one response page (20 and 12 items) to JSON bytes: the product's hand-built
dicts with orjson, orjson on the dataclasses, and Pydantic response models as FastAPI uses
them (validate, then pydantic-core's dump_json; and the older jsonable_encoder + json.dumps
path): the best of 5 repeats, µs per page.

`catalog`: the catalog client (`HttpCatalog`, 100 ids a call) on httpx's aiohttp transport
(the product) and on httpx's default transport: latency and process CPU per call, one call at
a time and 16 at a time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from app.config import Settings

SIZES = (10, 50, 100, 200)
STRATEGIES = ("in-100", "in-50", "in-20", "single-async", "single-concurrent")


def _stats(values: Sequence[float]) -> dict[str, float]:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, max(0, round(0.99 * len(ordered)) - 1))]
    return {
        "n": len(ordered),
        "median": statistics.median(ordered),
        "p99": p99,
        "mean": statistics.fmean(ordered),
    }


# --- scylla -----------------------------------------------------------------------------------


async def scylla(settings: Settings, reps: int, items: int, seed: int = 7) -> dict[str, Any]:
    from cassandra.concurrent import execute_concurrent_with_args

    from app.ranking.types import ScoredList
    from app.sources.scylla import ScyllaStore, connect

    cluster, session = await asyncio.to_thread(connect, settings)
    executor = ThreadPoolExecutor(settings.scylla_executor_threads, thread_name_prefix="cql")
    timeout_s = 2.0  # generous: measure the strategy, not the timeout
    try:
        stores = {
            chunk: await asyncio.to_thread(
                ScyllaStore,
                session,
                executor,
                keyspace=settings.scylla_keyspace,
                timeout_s=timeout_s,
                in_chunk=chunk,
            )
            for chunk in (100, 50, 20)
        }
        version = (await stores[100].active_versions())["neighbours"]
        single = await asyncio.to_thread(
            session.prepare,
            f"SELECT item_id, neighbour_ids, scores FROM {settings.scylla_keyspace}.neighbours "
            "WHERE model_version = ? AND item_id = ?",
        )
        loop = asyncio.get_running_loop()

        def rows_to_lists(rows: Any, found: dict[str, ScoredList]) -> None:
            for item_id, ids, scores in rows:
                found[item_id] = ScoredList(tuple(ids or ()), tuple(scores or ()))

        def single_async(ids: list[str]) -> dict[str, ScoredList]:
            futures = [
                session.execute_async(single, (version, item_id), timeout=timeout_s)
                for item_id in ids
            ]
            found: dict[str, ScoredList] = {}
            for future in futures:
                rows_to_lists(future.result(), found)
            return found

        def single_concurrent(ids: list[str]) -> dict[str, ScoredList]:
            results = execute_concurrent_with_args(
                session,
                single,
                [(version, item_id) for item_id in ids],
                concurrency=min(100, len(ids)),
                raise_on_first_error=True,
            )
            found: dict[str, ScoredList] = {}
            for _, rows in results:
                rows_to_lists(rows, found)
            return found

        readers: dict[str, Callable[[list[str]], Awaitable[dict[str, ScoredList]]]] = {
            "in-100": lambda ids: stores[100].neighbours(version, ids),
            "in-50": lambda ids: stores[50].neighbours(version, ids),
            "in-20": lambda ids: stores[20].neighbours(version, ids),
            "single-async": lambda ids: loop.run_in_executor(executor, single_async, ids),
            "single-concurrent": lambda ids: loop.run_in_executor(executor, single_concurrent, ids),
        }
        rng = random.Random(seed)
        wall: dict[tuple[str, int], list[float]] = {}
        cpu: dict[tuple[str, int], list[float]] = {}
        found_counts: dict[tuple[str, int], list[int]] = {}
        warmup = max(3, reps // 10)
        for size in SIZES:
            for rep in range(warmup + reps):
                ids = [f"item-{rng.randint(1, items)}" for _ in range(size)]
                order = list(STRATEGIES)
                rng.shuffle(order)
                for strategy in order:
                    cpu_before = time.process_time()
                    started = time.perf_counter()
                    found = await readers[strategy](ids)
                    elapsed = time.perf_counter() - started
                    cpu_used = time.process_time() - cpu_before
                    if rep >= warmup:
                        wall.setdefault((strategy, size), []).append(elapsed * 1000)
                        cpu.setdefault((strategy, size), []).append(cpu_used * 1000)
                        found_counts.setdefault((strategy, size), []).append(len(found))
        rows = []
        for size in SIZES:
            for strategy in STRATEGIES:
                key = (strategy, size)
                rows.append(
                    {
                        "strategy": strategy,
                        "keys": size,
                        "wall_ms": _stats(wall[key]),
                        "cpu_ms": _stats(cpu[key]),
                        "found_mean": statistics.fmean(found_counts[key]),
                    }
                )
        return {"version": version, "reps": reps, "rows": rows}
    finally:
        executor.shutdown(wait=False)
        await asyncio.to_thread(cluster.shutdown)


# --- catalog ----------------------------------------------------------------------------------


async def catalog(settings: Settings, calls: int, items: int) -> dict[str, Any]:
    """Both transports with 100 ids a call (a request's misses) and with 1 (the transport
    alone, almost nothing to parse)."""
    out: dict[str, Any] = {"calls": calls, "by_ids": {}}
    for ids_per_call in (100, 1):
        out["by_ids"][str(ids_per_call)] = await _catalog(settings, calls, items, ids_per_call)
    return out


async def _catalog(settings: Settings, calls: int, items: int, ids_per_call: int) -> dict[str, Any]:
    from app.sources.catalog import HttpCatalog, build_http_client
    from loadtests.bench.pieces import build_default_http_client

    builders = {"aiohttp": build_http_client, "httpx-default": build_default_http_client}
    rng = random.Random(11)
    batches = [[f"item-{rng.randint(1, items)}" for _ in range(ids_per_call)] for _ in range(calls)]
    out: dict[str, Any] = {"ids_per_call": ids_per_call, "calls": calls, "transports": {}}
    for name, build in builders.items():
        async with build(
            settings.catalog_url,
            timeout_s=5.0,
            max_connections=settings.catalog_max_connections,
        ) as client:
            reader = HttpCatalog(client)
            for batch in batches[: max(10, calls // 10)]:  # connect and warm up
                await reader.items(batch)
            wall: list[float] = []
            cpu: list[float] = []
            for batch in batches:
                cpu_before = time.process_time()
                started = time.perf_counter()
                await reader.items(batch)
                wall.append((time.perf_counter() - started) * 1000)
                cpu.append((time.process_time() - cpu_before) * 1000)
            # 16 calls in flight: CPU per call when the pool is busy.
            cpu_before = time.process_time()
            started = time.perf_counter()
            await asyncio.gather(*(_drain(reader, batches[i::16]) for i in range(16)))
            concurrent_wall = time.perf_counter() - started
            concurrent_cpu = time.process_time() - cpu_before
        out["transports"][name] = {
            "sequential_wall_ms": _stats(wall),
            "sequential_cpu_ms": _stats(cpu),
            "concurrent16_cpu_ms_per_call": concurrent_cpu / calls * 1000,
            "concurrent16_calls_per_s": calls / concurrent_wall,
        }
    return out


# --- serialization ----------------------------------------------------------------------------


def serialization(loops: int) -> dict[str, Any]:
    """One response page (20 and 12 items) to JSON bytes, four ways, in µs per page."""
    import json
    import timeit

    import orjson
    from fastapi.encoders import jsonable_encoder
    from pydantic import TypeAdapter

    from app.api.serialization import page_bytes
    from app.results import RecommendationPage, RecommendedItem
    from loadtests.bench.pieces import PageModel

    adapter = TypeAdapter(PageModel)
    out: dict[str, Any] = {"loops": loops, "pages": {}}
    for size in (20, 12):
        page = RecommendationPage(
            [
                RecommendedItem(
                    f"item-{4000 + i}",
                    0.0123456789 / (i + 1),
                    "personalized",
                    f"Refurbished Gemma brooch {i}",
                    "jewelry",
                    86.0 + i,
                    "paris",
                    f"seller-{2300 + i}",
                )
                for i in range(size)
            ],
            "neighbours=nb-ee5c7ce5f6f8,popular=pop-57fd9b59d6b8",
            [],
            "AbCaXEL6MVs6o_Wk1atL-QARG6sQ",
        )
        ways = {
            "product: hand-built dicts + orjson (page_bytes)": lambda p=page: page_bytes(p),
            "orjson on the slotted dataclasses": lambda p=page: orjson.dumps(p),
            "Pydantic response model: validate + dump_json (this FastAPI)": lambda p=page: (
                adapter.dump_json(adapter.validate_python(p))
            ),
            "Pydantic model + jsonable_encoder + json.dumps (older FastAPI)": lambda p=page: (
                json.dumps(jsonable_encoder(adapter.validate_python(p))).encode()
            ),
        }
        results = {}
        for name, way in ways.items():
            way()
            best = min(timeit.repeat(way, number=loops, repeat=5)) / loops
            results[name] = best * 1e6
        out["pages"][str(size)] = results
    return out


# --- dynamodb ---------------------------------------------------------------------------------


async def dynamodb(settings: Settings, calls: int, users: int) -> dict[str, Any]:
    """The feed's DynamoDB query (`DynamoInteractions.recent`) through the product's aioboto3
    client, stock aioboto3, boto3 in the loop's default executor and the signed-JSON
    experiment: latency and process CPU per call, one at a time (the clients interleaved) and
    16 at a time."""
    import contextlib

    import aioboto3
    import aiohttp
    from aiobotocore.config import AioConfig

    from app.sources import dynamo
    from loadtests.bench.pieces import SignedJsonDynamoDB, ThreadedBoto3, boto3_client
    from loadtests.zipf import ZIPF_S, Zipf

    relaxed = settings.model_copy(update={"dynamodb_timeout_ms": 5000})
    rng = random.Random(5)
    zipf = Zipf(users, ZIPF_S)
    user_ids = [f"user-{zipf.rank(rng)}" for _ in range(calls)]
    limit = settings.history_limit
    timeout_s = relaxed.dynamodb_timeout_ms / 1000
    async with contextlib.AsyncExitStack() as stack:
        product = await stack.enter_async_context(
            dynamo.connect(
                relaxed,
                max_connections=settings.dynamodb_max_connections,
                timeout_s=timeout_s,
                max_attempts=1,
            )
        )
        # aioboto3 as it comes: botocore's own parser and User-Agent (what `connect` saves).
        stock = await stack.enter_async_context(
            aioboto3.Session().client(
                "dynamodb",
                region_name=settings.dynamodb_region,
                endpoint_url=settings.dynamodb_endpoint_url or None,
                config=AioConfig(
                    max_pool_connections=settings.dynamodb_max_connections,
                    connect_timeout=timeout_s,
                    read_timeout=timeout_s,
                    retries={"max_attempts": 1, "mode": "standard"},
                ),
            )
        )
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=settings.dynamodb_max_connections)
        )
        stack.push_async_callback(session.close)
        table = settings.dynamodb_table
        stores = {
            "aioboto3 (product: dynamo.connect)": dynamo.DynamoInteractions(product, table=table),
            "aioboto3, stock parser and User-Agent": dynamo.DynamoInteractions(stock, table=table),
            "boto3-threads": dynamo.DynamoInteractions(
                ThreadedBoto3(await asyncio.to_thread(boto3_client, relaxed)), table=table
            ),
            "signed-json (experiment)": dynamo.DynamoInteractions(
                SignedJsonDynamoDB(
                    session,
                    endpoint_url=settings.dynamodb_endpoint_url,
                    region=settings.dynamodb_region,
                    timeout_s=timeout_s,
                ),
                table=table,
            ),
        }
        for store in stores.values():
            for user_id in user_ids[:20]:
                await store.recent(user_id, limit)
        wall: dict[str, list[float]] = {name: [] for name in stores}
        cpu: dict[str, list[float]] = {name: [] for name in stores}
        found: dict[str, int] = dict.fromkeys(stores, 0)
        order = list(stores)
        for user_id in user_ids:
            rng.shuffle(order)
            for name in order:
                cpu_before = time.process_time()
                started = time.perf_counter()
                found[name] += len(await stores[name].recent(user_id, limit))
                wall[name].append((time.perf_counter() - started) * 1000)
                cpu[name].append((time.process_time() - cpu_before) * 1000)
        out: dict[str, Any] = {"calls": calls, "limit": limit, "clients": {}}
        for name, store in stores.items():
            cpu_before = time.process_time()
            started = time.perf_counter()
            await asyncio.gather(*(_recent_all(store, user_ids[i::16], limit) for i in range(16)))
            concurrent_wall = time.perf_counter() - started
            out["clients"][name] = {
                "sequential_wall_ms": _stats(wall[name]),
                "sequential_cpu_ms": _stats(cpu[name]),
                "items_per_call": found[name] / calls,
                "concurrent16_cpu_ms_per_call": (time.process_time() - cpu_before) / calls * 1000,
                "concurrent16_calls_per_s": calls / concurrent_wall,
            }
    return out


async def _recent_all(store: Any, user_ids: list[str], limit: int) -> None:
    for user_id in user_ids:
        await store.recent(user_id, limit)


async def _drain(reader: Any, batches: list[list[str]]) -> None:
    for batch in batches:
        await reader.items(batch)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m loadtests.bench.micro")
    parser.add_argument("what", choices=("scylla", "catalog", "dynamodb", "serialization"))
    parser.add_argument("--reps", type=int, default=200, help="scylla: hops per size/strategy")
    parser.add_argument(
        "--calls", type=int, default=1000, help="catalog, dynamodb: calls per client"
    )
    parser.add_argument("--users", type=int, default=10_000, help="ids user-1..user-N")
    parser.add_argument("--items", type=int, default=50_000, help="ids item-1..item-N")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    import uvloop

    if args.what == "scylla":
        result = uvloop.run(scylla(settings, args.reps, args.items))
    elif args.what == "catalog":
        result = uvloop.run(catalog(settings, args.calls, args.items))
    elif args.what == "dynamodb":
        result = uvloop.run(dynamodb(settings, args.calls, args.users))
    else:
        result = serialization(args.calls)
    args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

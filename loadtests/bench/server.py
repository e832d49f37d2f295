"""The bench server: `python -m app`'s own `main()` plus `GET /bench/floor` (a pre-serialized
20-item page through the same middleware: the framework floor), with the naive `pieces` asked
for swapped into the product's modules, in this process only. Options: `--help`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from fastapi import FastAPI
from starlette.responses import Response

from app.api.serialization import JSONBytesResponse, page_bytes
from app.config import Settings
from app.results import RecommendationPage, RecommendedItem
from loadtests.bench.variants import Pieces

FLOOR_PATH = "/bench/floor"
FLOOR_ITEMS = 20


def floor_page(items: int = FLOOR_ITEMS) -> RecommendationPage:
    """A page of `items` items with demo-like metadata."""
    return RecommendationPage(
        [
            RecommendedItem(
                f"item-{1000 + rank}",
                1.0 / (rank + 1),
                "personalized",
                f"Vintage road bike frame {rank}",
                "bikes",
                149.0 + rank,
                "berlin",
                f"seller-{rank}",
            )
            for rank in range(items)
        ],
        "neighbours=nb-000000000000,popular=pop-000000000000",
    )


def add_floor(app: FastAPI) -> None:
    body = page_bytes(floor_page())

    async def floor() -> Response:
        return JSONBytesResponse(body)

    app.add_api_route(FLOOR_PATH, floor, methods=["GET"], include_in_schema=False)


def install(pieces: Pieces) -> None:
    """Swap the requested pieces into the product's modules (this process only)."""
    import app.__main__ as entry
    import app.main as main
    from app.api import routes
    from app.api.middleware import RequestMiddleware
    from app.sources import catalog
    from loadtests.bench import pieces as naive

    if pieces.responses == "pydantic":
        # build_router reads both names when it declares the routes; page_response per request.
        _replace(routes, "RecommendationPage", naive.PageModel)
        _replace(routes, "page_response", naive.unserialized)
    if pieces.catalog_http == "httpx":
        catalog.build_http_client = naive.build_default_http_client
    if pieces.instrumentation == "off":
        _replace(main, "Metrics", naive.UninstrumentedMetrics)
    if pieces.fastapi_telemetry == "on":
        main.FASTAPI_TELEMETRY = {}  # FastAPI's defaults
    if pieces.scylla != "batched" or pieces.dynamodb != "aioboto3":
        _replace(main, "_remote_sources", _swapping(main._remote_sources, pieces))

    product_create_app = main.create_app

    def create_app(settings: Settings | None = None) -> FastAPI:
        app = product_create_app(settings)
        if pieces.instrumentation == "off":
            app.user_middleware = [
                m
                for m in app.user_middleware
                if not (isinstance(m.cls, type) and issubclass(m.cls, RequestMiddleware))
            ]
        add_floor(app)
        return app

    _replace(entry, "create_app", create_app)


def _replace(module: ModuleType, name: str, value: object) -> None:
    """Rebind a global of a product module: the product looks it up when it runs."""
    if not hasattr(module, name):
        raise AttributeError(f"{module.__name__}.{name} is gone: update loadtests/bench/server.py")
    setattr(module, name, value)


SourcesBuilder = Callable[[Settings, Any, contextlib.AsyncExitStack], Awaitable[Any]]


def _swapping(build: SourcesBuilder, pieces: Pieces) -> SourcesBuilder:
    """The product's remote sources, with the neighbour reader and/or the DynamoDB client
    replaced; the replacements sit behind the product's breakers and metrics like the
    originals (and the neighbour reader behind the product's BatchCache)."""
    import app.main as main
    from app.resilience import protect
    from app.sources.base import DEP_SCYLLA
    from app.sources.cache import neighbour_cache
    from app.sources.dynamo import DynamoInteractions
    from loadtests.bench import pieces as naive

    async def remote_sources(
        settings: Settings, metrics: Any, stack: contextlib.AsyncExitStack
    ) -> Any:
        sources = await build(settings, metrics, stack)

        def guard(dependency: str, operation: str, call: Any) -> Any:
            return protect(
                call,
                breaker=sources.breakers[dependency],
                metrics=metrics,
                dependency=dependency,
                operation=operation,
            )

        changes: dict[str, Any] = {}
        if pieces.scylla == "fanout":
            session = await asyncio.to_thread(sources.cql_cluster.connect)
            reader = await asyncio.to_thread(
                naive.FanoutNeighbours,
                session,
                keyspace=settings.scylla_keyspace,
                timeout_s=settings.scylla_timeout_ms / 1000,
            )
            neighbours = neighbour_cache(
                guard(DEP_SCYLLA, "neighbours", reader.neighbours),
                max_mb=settings.neighbour_cache_mb,
            )
            changes["neighbours"] = neighbours
            changes["caches"] = {**sources.caches, "neighbours": neighbours}
        if pieces.dynamodb != "aioboto3":
            client: Any
            if pieces.dynamodb == "boto3":
                boto3_client = await asyncio.to_thread(naive.boto3_client, settings)
                # As the product does: the first call resolves credentials and endpoint
                # rules; a failure is not fatal (the breaker handles what follows).
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(
                        boto3_client.describe_table, TableName=settings.dynamodb_table
                    )
                client = naive.ThreadedBoto3(boto3_client)
            else:
                import aiohttp

                session = await stack.enter_async_context(
                    aiohttp.ClientSession(
                        connector=aiohttp.TCPConnector(limit=settings.dynamodb_max_connections)
                    )
                )
                client = naive.SignedJsonDynamoDB(
                    session,
                    endpoint_url=settings.dynamodb_endpoint_url,
                    region=settings.dynamodb_region,
                    timeout_s=settings.dynamodb_timeout_ms / 1000,
                )
            changes["interactions"] = DynamoInteractions(
                main._GuardedDynamoDB(client, guard),
                table=settings.dynamodb_table,
                retention_days=settings.event_retention_days,
            )
        return dataclasses.replace(sources, **changes)

    return remote_sources


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m loadtests.bench.server",
        description="The service (python -m app) plus /bench/floor, with pieces swapped.",
    )
    Pieces.add_arguments(parser)
    parser.add_argument(
        "--gc-log",
        type=Path,
        help="one JSON line per GC collection to this file (loadtests/recipes/gclog.py)",
    )
    parser.add_argument(
        "--gc-garbage",
        action="store_true",
        help="with --gc-log: count each collection's garbage by type (gc.DEBUG_SAVEALL)",
    )
    args = parser.parse_args(argv)
    pieces = Pieces.from_namespace(args)
    if args.gc_log is not None:
        from loadtests.recipes import gclog  # a diagnostic: only the recipes ask for it

        gclog.install(args.gc_log, garbage_types=args.gc_garbage)
    install(pieces)
    import app.__main__ as entry

    entry.main()


if __name__ == "__main__":
    main()

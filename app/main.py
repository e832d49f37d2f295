"""The application: `create_app()` and the lifespan that builds every client once.

The lifespan yields a typed `State`; routes read it from `request.state`. Nothing expensive
happens at import time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

from fastapi import FastAPI

from app.api.errors import install_error_handlers
from app.api.routes import build_router
from app.config import Settings
from app.domain import CatalogItem
from app.model_versions import ModelTracker
from app.observability.threadpool import InstrumentedExecutor
from app.ranking.types import ScoredList
from app.recommender import Recommender
from app.runtime import tune_gc
from app.sources.base import BatchLookup, InteractionStore, ModelStore
from app.sources.cache import BatchCache

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Sources:
    """Everything the lifespan built to read and write data, for one backend."""

    models: ModelStore
    interactions: InteractionStore
    neighbours: BatchLookup[ScoredList]
    catalog: BatchLookup[CatalogItem]
    # Remote backend only: the CQL thread pool and the caches in front of the stores.
    cql_executor: InstrumentedExecutor | None = None
    caches: dict[str, BatchCache[Any]] = field(default_factory=dict)


class State(TypedDict):
    settings: Settings
    sources: Sources
    recommender: Recommender
    models: ModelTracker


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()
    app = FastAPI(
        title="recs",
        version="0.1.0",
        summary="Personalized feed, similar items and popular lists for a marketplace.",
        lifespan=_lifespan(settings),
    )
    install_error_handlers(app)
    app.include_router(build_router(settings))
    return app


def _lifespan(settings: Settings) -> Any:
    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[State]:
        async with contextlib.AsyncExitStack() as stack:
            if settings.use_remote:
                sources = await _remote_sources(settings, stack)
            else:
                sources = await _embedded_sources(settings)
            models = ModelTracker(sources.models, refresh_s=settings.model_refresh_s)
            try:
                await models.refresh()
            except Exception as exc:  # serve 503 until the store answers (readiness says so)
                log.warning("model versions not loaded at startup", extra={"error": repr(exc)})
            refresher = asyncio.get_running_loop().create_task(models.run())
            stack.callback(refresher.cancel)
            recommender = Recommender(
                settings,
                models=models,
                interactions=sources.interactions,
                neighbours=sources.neighbours,
                catalog=sources.catalog,
            )
            tune_gc(settings)
            yield State(settings=settings, sources=sources, recommender=recommender, models=models)

    return lifespan


async def _remote_sources(settings: Settings, stack: contextlib.AsyncExitStack) -> Sources:
    import aioboto3
    from aiobotocore.config import AioConfig

    from app.sources.cache import catalog_cache, neighbour_cache
    from app.sources.catalog import HttpCatalog, build_http_client
    from app.sources.dynamo import DynamoInteractions
    from app.sources.scylla import ScyllaStore, connect

    executor = InstrumentedExecutor(settings.scylla_executor_threads, thread_name_prefix="cql")
    stack.callback(executor.shutdown, wait=False, cancel_futures=True)
    cluster, session = await asyncio.to_thread(connect, settings)
    stack.callback(cluster.shutdown)
    scylla = await asyncio.to_thread(
        ScyllaStore,
        session,
        executor,
        keyspace=settings.scylla_keyspace,
        timeout_s=settings.scylla_timeout_ms / 1000,
        in_chunk=settings.scylla_in_chunk,
    )

    dynamodb = await stack.enter_async_context(
        aioboto3.Session().client(
            "dynamodb",
            region_name=settings.dynamodb_region,
            endpoint_url=settings.dynamodb_endpoint_url or None,
            config=AioConfig(
                max_pool_connections=settings.dynamodb_max_connections,
                connect_timeout=settings.dynamodb_timeout_ms / 1000,
                read_timeout=settings.dynamodb_timeout_ms / 1000,
                retries={"max_attempts": 1, "mode": "standard"},
            ),
        )
    )
    http = await stack.enter_async_context(
        build_http_client(
            settings.catalog_url,
            timeout_s=settings.catalog_timeout_ms / 1000,
            max_connections=settings.catalog_max_connections,
        )
    )
    catalog = HttpCatalog(http)
    await _warm_up(settings, dynamodb, http)
    neighbours = neighbour_cache(scylla.neighbours, max_mb=settings.neighbour_cache_mb)
    catalog_items = catalog_cache(
        catalog.items, max_mb=settings.catalog_cache_mb, ttl_s=settings.catalog_cache_ttl_s
    )
    return Sources(
        models=scylla,
        interactions=DynamoInteractions(
            dynamodb,
            table=settings.dynamodb_table,
            retention_days=settings.event_retention_days,
        ),
        neighbours=neighbours,
        catalog=catalog_items,
        cql_executor=executor,
        caches={"neighbours": neighbours, "catalog": catalog_items},
    )


async def _warm_up(settings: Settings, dynamodb: Any, http: Any) -> None:
    """One call through each client before serving: the first aiobotocore call resolves
    credentials and endpoint rules and the first HTTP call connects, together far more than
    a request's budget. Failures are logged, not fatal: readiness reports them."""
    try:
        await dynamodb.describe_table(TableName=settings.dynamodb_table)
    except Exception as exc:
        log.warning("dynamodb warm-up failed", extra={"error": repr(exc)})
    try:
        await http.get("/items", params={"ids": "warm-up"})
    except Exception as exc:
        log.warning("catalog warm-up failed", extra={"error": repr(exc)})


async def _embedded_sources(settings: Settings) -> Sources:
    from app.sources.embedded import EmbeddedBackend

    backend = await asyncio.to_thread(EmbeddedBackend.load, Path(settings.embedded_data_dir))
    return Sources(
        models=backend,
        interactions=backend,
        neighbours=backend.neighbour_lookup,
        catalog=backend.catalog_lookup,
    )

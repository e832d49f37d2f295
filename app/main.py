"""The application: `create_app()` and the lifespan that builds every client once.

The lifespan yields a typed `State`; routes read it from `request.state`. Nothing expensive
happens at import time. Every dependency call the service makes goes through `protect`:
a circuit breaker and latency/error metrics per dependency.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig
from prometheus_client.core import Metric
from starlette.responses import Response

from app.api.admission import QueueDelayGuard
from app.api.auth import Keys
from app.api.errors import PartialWriteBody, install_error_handlers
from app.api.events import event_schema
from app.api.middleware import KeyPolicy, Lifecycle, RequestMiddleware
from app.api.routes import build_router
from app.config import Settings
from app.domain import CatalogItem
from app.model_versions import EmbeddingLimits, ModelTracker
from app.observability.metrics import Metrics, StateCollector, counter, gauge
from app.observability.threadpool import InstrumentedExecutor
from app.ranking.types import ScoredList
from app.recommender import Recommender
from app.resilience import CircuitBreaker, protect
from app.runtime import tune_gc
from app.sources.base import (
    DEP_CATALOG,
    DEP_DYNAMODB,
    DEP_SCYLLA,
    BatchLookup,
    CatalogReader,
    InteractionReader,
    InteractionStore,
    ModelStore,
)
from app.sources.cache import BatchCache

if TYPE_CHECKING:
    from app.sources.embedded import EmbeddedBackend

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Sources:
    """Everything the lifespan built to read and write data, for one backend."""

    models: ModelStore
    interactions: InteractionStore
    neighbours: BatchLookup[ScoredList]
    catalog: BatchLookup[CatalogItem]
    # Remote backend only: the CQL cluster and thread pool, the caches, the breakers.
    cql_cluster: Any = None
    cql_executor: InstrumentedExecutor | None = None
    caches: dict[str, BatchCache[Any]] = field(default_factory=dict)
    breakers: dict[str, CircuitBreaker] = field(default_factory=dict)


# FastAPI's native OpenTelemetry hooks, on by default, ask the global providers on every
# request whether telemetry is configured. This service's telemetry is Prometheus (/metrics),
# so they only cost (the bench's `telemetry` ablation measures how much: docs/performance.md).
FASTAPI_TELEMETRY: TelemetryConfig = {
    "tracing": False,
    "metrics": False,
    "logs": False,
    "operation_spans": False,
}


class State(TypedDict):
    settings: Settings
    metrics: Metrics
    lifecycle: Lifecycle
    sources: Sources
    recommender: Recommender
    models: ModelTracker


@dataclass(frozen=True, slots=True)
class Preloaded:
    """The embedded backend's data and its indexed model versions, loaded before the app
    starts: by the parent of pre-forked workers, once for all of them (app.workers)."""

    backend: EmbeddedBackend
    models: ModelTracker


def preload_embedded(settings: Settings) -> Preloaded:
    """Loads RECS_EMBEDDED_DATA_DIR and indexes its embeddings (blocking: no loop runs)."""
    from app.sources.embedded import EmbeddedBackend

    backend = EmbeddedBackend.load(Path(settings.embedded_data_dir))
    models = _model_tracker(settings, backend)
    asyncio.run(models.refresh())
    return Preloaded(backend, models)


def create_app(settings: Settings | None = None, *, preloaded: Preloaded | None = None) -> FastAPI:
    """The app; with `preloaded`, the lifespan serves from it instead of loading the embedded
    data folder itself."""
    settings = settings or Settings.from_env()
    settings.check_serving()
    metrics = Metrics()
    lifecycle = Lifecycle(
        admission=QueueDelayGuard(
            target_s=settings.admission_target_ms / 1000,
            interval_s=settings.admission_interval_ms / 1000,
            max_wait_s=settings.request_deadline_ms / 1000,
        )
        if settings.admission_target_ms > 0
        else None
    )
    app = FastAPI(
        title="recs",
        version="0.1.0",
        summary="Personalized feed, similar items and popular lists for a marketplace.",
        lifespan=_lifespan(settings, metrics, lifecycle, preloaded),
        max_body_size=None,  # RequestMiddleware enforces RECS_MAX_BODY_BYTES, answering JSON
        telemetry=FASTAPI_TELEMETRY,
        # Swagger UI from the service's own files (below), not a CDN; no ReDoc.
        docs_url=None,
        redoc_url=None,
    )
    _serve_docs(app)
    install_error_handlers(app)
    app.include_router(build_router(settings))
    app.openapi = _document(app)  # type: ignore[method-assign]
    app.add_middleware(
        RequestMiddleware,
        metrics=metrics,
        lifecycle=lifecycle,
        keys=KeyPolicy(Keys(settings.api_keys), reads=settings.require_key_for_reads),
        max_in_flight=settings.max_in_flight,
        max_in_flight_writes=settings.max_in_flight_writes,
        max_body_bytes=settings.max_body_bytes,
        access_log=settings.access_log,
    )
    # The server's SIGTERM handler turns readiness off through this (see app.__main__).
    app.state.lifecycle = lifecycle
    app.state.metrics = metrics  # the protocol counts what it sheds at arrival
    return app


def _serve_docs(app: FastAPI) -> None:
    """/docs: Swagger UI on /openapi.json, its script and styles served from the installed
    `swagger-ui-bundle` package, so the page loads on a network without a CDN and runs no
    script the service did not ship."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from starlette.staticfiles import StaticFiles
    from swagger_ui_bundle import swagger_ui_path

    app.mount("/docs/assets", StaticFiles(directory=swagger_ui_path), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> Response:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="recs: API",
            swagger_js_url="/docs/assets/swagger-ui-bundle.js",
            swagger_css_url="/docs/assets/swagger-ui.css",
            swagger_favicon_url="/docs/assets/favicon-32x32.png",
        )


def _document(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """The OpenAPI document as the service behaves: FastAPI's, without the 422 it never
    sends (every validation error is a 400), with the bodies only the routes' raw schemas
    name (the partial write and the event of POST /v1/events)."""
    generate = app.openapi

    def document() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        for path in schema["paths"].values():
            for operation in path.values():
                operation.get("responses", {}).pop("422", None)
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        partial = PartialWriteBody.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(partial.pop("$defs", {}))
        schemas["PartialWriteBody"] = partial
        schemas["Event"] = event_schema()
        app.openapi_schema = schema
        return schema

    return document


def _lifespan(
    settings: Settings,
    metrics: Metrics,
    lifecycle: Lifecycle,
    preloaded: Preloaded | None,
) -> Any:
    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[State]:
        async with contextlib.AsyncExitStack() as stack:
            if settings.use_remote:
                sources = await _remote_sources(settings, metrics, stack)
            else:
                backend = preloaded.backend if preloaded is not None else None
                sources = await _embedded_sources(settings, backend)
            if preloaded is not None:
                models = preloaded.models
            else:
                models = _model_tracker(settings, sources.models)
            try:
                await models.refresh()
            except Exception as exc:  # serve 503 until the store answers (readiness says so)
                log.warning("model versions not loaded at startup", extra={"error": repr(exc)})
            recommender = Recommender(
                settings,
                models=models,
                interactions=sources.interactions,
                neighbours=sources.neighbours,
                catalog=sources.catalog,
            )
            metrics.add_collector(
                StateCollector(lambda: _state_metrics(sources, models, lifecycle))
            )
            loop = asyncio.get_running_loop()
            for background in (models.run(), metrics.sample_loop_lag()):
                stack.callback(loop.create_task(background).cancel)
            stack.callback(metrics.watch_gc())
            tune_gc(settings)
            log.info(
                "ready to serve", extra={"backend": "remote" if settings.use_remote else "embedded"}
            )
            yield State(
                settings=settings,
                metrics=metrics,
                lifecycle=lifecycle,
                sources=sources,
                recommender=recommender,
                models=models,
            )
            log.info("shutting down: closing clients")

    return lifespan


def _model_tracker(settings: Settings, store: ModelStore) -> ModelTracker:
    return ModelTracker(
        store,
        refresh_s=settings.model_refresh_s,
        embeddings=EmbeddingLimits.from_settings(settings),
    )


async def _remote_sources(
    settings: Settings, metrics: Metrics, stack: contextlib.AsyncExitStack
) -> Sources:
    from app.sources import dynamo
    from app.sources.cache import catalog_cache, neighbour_cache
    from app.sources.catalog import HttpCatalog, build_http_client
    from app.sources.scylla import ScyllaStore, connect, shard_awareness

    breakers = {
        name: CircuitBreaker(
            name, failure_threshold=settings.breaker_failures, reset_s=settings.breaker_reset_s
        )
        for name in (DEP_SCYLLA, DEP_DYNAMODB, DEP_CATALOG)
    }

    def guard(dependency: str, operation: str, call: Any) -> Any:
        return protect(
            call,
            breaker=breakers[dependency],
            metrics=metrics,
            dependency=dependency,
            operation=operation,
        )

    executor = InstrumentedExecutor(
        settings.scylla_executor_threads, thread_name_prefix="cql", on_submit=metrics.observe_pool
    )
    stack.callback(executor.shutdown, wait=False, cancel_futures=True)
    cluster, session = await asyncio.to_thread(connect, settings)
    stack.callback(cluster.shutdown)
    log.info("scylla shard awareness", extra=shard_awareness(cluster))
    scylla = await asyncio.to_thread(
        ScyllaStore,
        session,
        executor,
        keyspace=settings.scylla_keyspace,
        timeout_s=settings.scylla_timeout_ms / 1000,
        in_chunk=settings.scylla_in_chunk,
    )

    dynamodb = await stack.enter_async_context(
        dynamo.connect(
            settings,
            max_connections=settings.dynamodb_max_connections,
            timeout_s=settings.dynamodb_timeout_ms / 1000,
            # Retries are ours: inside the request deadline, only where idempotent.
            max_attempts=1,
        )
    )
    http = await stack.enter_async_context(
        build_http_client(
            settings.catalog_url,
            timeout_s=settings.catalog_timeout_ms / 1000,
            max_connections=settings.catalog_max_connections,
        )
    )
    unguarded = dynamo.DynamoInteractions(
        dynamodb, table=settings.dynamodb_table, retention_days=settings.event_retention_days
    )
    catalog = HttpCatalog(http)
    await _warm_up(unguarded, catalog)

    interactions = dynamo.DynamoInteractions(
        _GuardedDynamoDB(dynamodb, guard),
        table=settings.dynamodb_table,
        retention_days=settings.event_retention_days,
    )
    neighbours = neighbour_cache(
        guard(DEP_SCYLLA, "neighbours", scylla.neighbours), max_mb=settings.neighbour_cache_mb
    )
    catalog_items = catalog_cache(
        guard(DEP_CATALOG, "items", catalog.items),
        max_mb=settings.catalog_cache_mb,
        ttl_s=settings.catalog_cache_ttl_s,
        refresh_s=settings.catalog_cache_refresh_s,
    )
    return Sources(
        models=scylla,
        interactions=interactions,
        neighbours=neighbours,
        catalog=catalog_items,
        cql_cluster=cluster,
        cql_executor=executor,
        caches={"neighbours": neighbours, "catalog": catalog_items},
        breakers=breakers,
    )


class _GuardedDynamoDB:
    """The two DynamoDB calls the service makes, each behind the dynamodb breaker and metrics.

    Guarding each call (not a whole write with its retries) lets the breaker see every failed
    attempt, so an unreachable store opens it within one request and the next ones fail fast.
    """

    def __init__(self, client: Any, guard: Callable[[str, str, Any], Any]) -> None:
        self.query = guard(DEP_DYNAMODB, "query", client.query)
        self.batch_write_item = guard(DEP_DYNAMODB, "batch_write_item", client.batch_write_item)


async def _warm_up(interactions: InteractionReader, catalog: CatalogReader) -> None:
    """The feed's own calls, made before serving: the first aiobotocore call resolves
    credentials and endpoint rules and builds the operation's model (per operation: so the
    very Query the feed sends), and the first HTTP call connects; together far more than a
    request's budget. A few tries (the first may itself outlive the per-call timeout);
    failures are logged, not fatal: the breakers handle what follows."""
    calls: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
        ("dynamodb", lambda: interactions.recent("warm-up", 1)),
        ("catalog", lambda: catalog.items(["warm-up"])),
    ]
    for name, call in calls:
        for attempt in range(3):
            try:
                await call()
                break
            except Exception as exc:
                if attempt == 2:
                    log.warning(f"{name} warm-up failed", extra={"error": repr(exc)})


async def _embedded_sources(settings: Settings, loaded: EmbeddedBackend | None) -> Sources:
    from app.sources.embedded import EmbeddedBackend

    backend = loaded
    if backend is None:
        backend = await asyncio.to_thread(EmbeddedBackend.load, Path(settings.embedded_data_dir))
    return Sources(
        models=backend,
        interactions=backend,
        neighbours=backend.neighbour_lookup,
        catalog=backend.catalog_lookup,
    )


def _state_metrics(
    sources: Sources, models: ModelTracker, lifecycle: Lifecycle
) -> Iterator[Metric]:
    """Gauges read at scrape time."""
    yield gauge(
        "recs_process_id",
        "The process that answered this scrape: one of the workers when RECS_WORKERS > 1, "
        "each with metrics of its own.",
        {},
        os.getpid(),
    )
    yield gauge("recs_requests_in_flight", "Requests being served.", {}, lifecycle.in_flight)
    yield gauge("recs_draining", "1 while shutting down.", {}, float(lifecycle.draining))
    snapshot = models.current
    if snapshot is not None:
        for model, version in (
            ("neighbours", snapshot.neighbours_version),
            ("popular", snapshot.popular_version),
            ("embeddings", snapshot.embeddings_version),
        ):
            yield gauge(
                "recs_model_version_info",
                "The active version of each model (value 1).",
                {"model": model, "version": version or "none"},
                1.0,
            )
        if snapshot.embeddings is not None:
            yield gauge(
                "recs_embeddings_search_breadth",
                "Search breadth of the serving embeddings index (the graph's ef, or the IVF "
                "lists searched), calibrated to its recall target.",
                {"index": snapshot.embeddings.kind},
                float(snapshot.embeddings.breadth),
            )
    yield gauge(
        "recs_model_versions_refused",
        "Embeddings versions the service refused to serve (invalid or over its memory bound).",
        {},
        float(len(models.refused)),
    )
    executor = sources.cql_executor
    if executor is not None:
        yield gauge("recs_cql_pool_threads", "Threads of the CQL pool.", {}, executor.max_workers)
        yield counter("recs_cql_pool_hops", "Calls handed to the CQL pool.", {}, executor.submitted)
    for name, cache in sources.caches.items():
        labels = {"cache": name}
        lookups = cache.hits + cache.misses
        yield gauge("recs_cache_entries", "Entries in the cache.", labels, len(cache))
        yield gauge("recs_cache_bytes", "Approximate bytes held by the cache.", labels, cache.bytes)
        yield counter("recs_cache_hits", "Cache lookups that found the key.", labels, cache.hits)
        yield counter("recs_cache_misses", "Cache lookups that did not.", labels, cache.misses)
        yield counter(
            "recs_cache_refresh_loads",
            "Background reloads of entries near the end of their TTL (catalog).",
            labels,
            cache.refresh_loads,
        )
        yield gauge(
            "recs_cache_hit_ratio",
            "Hits over lookups since start.",
            labels,
            cache.hits / lookups if lookups else 0.0,
        )
    for name, breaker in sources.breakers.items():
        yield gauge(
            "recs_circuit_open",
            "1 while a dependency's circuit breaker refuses calls.",
            {"dependency": name},
            float(breaker.state != "closed"),
        )
    if sources.cql_cluster is not None:
        from app.sources.scylla import shard_awareness

        report = shard_awareness(sources.cql_cluster)
        yield gauge(
            "recs_scylla_shard_aware",
            "1 when connected to ScyllaDB with shard-aware routing.",
            {},
            float(report["shard_aware"]),
        )
        yield gauge(
            "recs_scylla_all_shards_connected",
            "1 when every shard of every node has a connection (ScyllaDB only).",
            {},
            float(report["all_shards_connected"]),
        )

"""The naive pieces the ablations put back into the product (and one experiment,
`SignedJsonDynamoDB`), swapped in by `server.install`: app/ has no switch for them. GC and
cache settings are `RECS_*` variables instead (`variants`).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Sequence
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict

from app.observability.metrics import Metrics
from app.ranking.types import ScoredList

# --- scylla=fanout ----------------------------------------------------------------------------


class FanoutNeighbours:
    """`NeighbourReader` as the naive service had it: a blocking query per item, in a loop,
    on the event loop thread (nothing else runs while the driver waits for each answer)."""

    def __init__(self, session: Any, *, keyspace: str, timeout_s: float) -> None:
        self._session = session
        self._timeout_s = timeout_s
        self._select = session.prepare(
            f"SELECT item_id, neighbour_ids, scores FROM {keyspace}.neighbours "
            "WHERE model_version = ? AND item_id = ?"
        )

    async def neighbours(self, version: str, item_ids: Sequence[str]) -> dict[str, ScoredList]:
        found: dict[str, ScoredList] = {}
        for item_id in item_ids:
            row = self._session.execute(
                self._select, (version, item_id), timeout=self._timeout_s
            ).one()
            if row is not None:
                found[row[0]] = ScoredList(tuple(row[1] or ()), tuple(row[2] or ()))
        return found


# --- dynamodb=boto3 ---------------------------------------------------------------------------


class ThreadedBoto3:
    """A boto3 DynamoDB client behind the two awaitable calls `DynamoInteractions` makes,
    each sent to the event loop's default executor: the usual "boto3 in a thread" port."""

    def __init__(self, client: Any) -> None:
        self._client = client

    async def _call(self, method: Callable[..., Any], **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, functools.partial(method, **kwargs))

    async def query(self, **kwargs: Any) -> Any:
        return await self._call(self._client.query, **kwargs)

    async def batch_write_item(self, **kwargs: Any) -> Any:
        return await self._call(self._client.batch_write_item, **kwargs)


def boto3_client(settings: Any) -> Any:
    """boto3's DynamoDB client with the product's pool size, timeouts and retry policy."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "dynamodb",
        region_name=settings.dynamodb_region,
        endpoint_url=settings.dynamodb_endpoint_url or None,
        config=Config(
            max_pool_connections=settings.dynamodb_max_connections,
            connect_timeout=settings.dynamodb_timeout_ms / 1000,
            read_timeout=settings.dynamodb_timeout_ms / 1000,
            retries={"max_attempts": 1, "mode": "standard"},
        ),
    )


class SignedJsonDynamoDB:
    """EXPERIMENT, not a naive piece: the two DynamoDB calls the service makes, sent as
    plain HTTP requests on one aiohttp session, signed with botocore's SigV4Auth, and answered
    with orjson's parse of the body (the same dicts botocore returns for DynamoDB, without
    its model-driven parsing, endpoint resolution, event hooks and user-agent building).
    It shows what the product could save per feed request; errors are raised, not retried."""

    _TARGET = "DynamoDB_20120810."

    def __init__(self, session: Any, *, endpoint_url: str, region: str, timeout_s: float) -> None:
        import botocore.session
        from botocore.auth import SigV4Auth

        credentials = botocore.session.get_session().get_credentials()
        if credentials is None:
            raise RuntimeError("no AWS credentials for the signed-JSON DynamoDB client")
        self._session = session
        self._url = endpoint_url or f"https://dynamodb.{region}.amazonaws.com/"
        self._auth = SigV4Auth(credentials, "dynamodb", region)
        self._timeout_s = timeout_s

    async def _call(self, operation: str, kwargs: dict[str, Any]) -> Any:
        import aiohttp
        import orjson
        from botocore.awsrequest import AWSRequest

        body = orjson.dumps(kwargs)
        request = AWSRequest(
            method="POST",
            url=self._url,
            data=body,
            headers={
                "Content-Type": "application/x-amz-json-1.0",
                "X-Amz-Target": self._TARGET + operation,
            },
        )
        self._auth.add_auth(request)
        async with self._session.post(
            self._url,
            data=body,
            headers=dict(request.headers.items()),
            timeout=aiohttp.ClientTimeout(total=self._timeout_s),
        ) as response:
            payload = await response.read()
            if response.status != 200:
                raise RuntimeError(f"DynamoDB {operation}: HTTP {response.status}")
        return orjson.loads(payload)

    async def query(self, **kwargs: Any) -> Any:
        return await self._call("Query", kwargs)

    async def batch_write_item(self, **kwargs: Any) -> Any:
        return await self._call("BatchWriteItem", kwargs)


# --- responses=pydantic -----------------------------------------------------------------------


class ItemModel(BaseModel):
    """`app.results.RecommendedItem` as a Pydantic model (read from attributes, ORM style)."""

    model_config = ConfigDict(from_attributes=True)

    item_id: str
    score: float
    source: str
    title: str | None = None
    category: str | None = None
    price: float | None = None
    region: str | None = None
    seller_id: str | None = None


class PageModel(BaseModel):
    """`app.results.RecommendationPage` as a Pydantic model."""

    model_config = ConfigDict(from_attributes=True)

    items: list[ItemModel]
    model_version: str
    degraded: list[str] = []
    next_cursor: str | None = None


def unserialized(page: Any) -> Any:
    """Stands in for `app.api.serialization.page_response`: hands the page back to FastAPI,
    which validates it against the route's `response_model` and serializes it itself."""
    return page


# --- catalog_http=httpx -----------------------------------------------------------------------


def build_default_http_client(
    base_url: str, *, timeout_s: float, max_connections: int
) -> httpx.AsyncClient:
    """`app.sources.catalog.build_http_client` without the aiohttp transport: the same pool
    and timeout on httpx's default transport (httpcore)."""
    limits = httpx.Limits(
        max_connections=max_connections, max_keepalive_connections=max_connections
    )
    return httpx.AsyncClient(base_url=base_url, timeout=httpx.Timeout(timeout_s), limits=limits)


# --- instrumentation=off ----------------------------------------------------------------------


class UninstrumentedMetrics(Metrics):
    """The product's `Metrics` with every hot-path probe removed: dependency calls are not
    timed, the loop-lag sampler and the GC callback never start. /metrics still answers."""

    def timed(self, dependency: str, operation: str, call: Any) -> Any:
        return call

    async def sample_loop_lag(self, interval_s: float = 0.05) -> None:
        return None

    def watch_gc(self) -> Callable[[], None]:
        return lambda: None

"""The item catalog client: metadata for many items in one batched HTTP call.

It knows the catalog only by base URL and response contract:

    POST {base}/items/lookup {"ids": ["a", "b", "c"]}
        -> 200 {"items": [{"item_id", "title", "category", "price", "region", "seller_id",
                           "active"}, ...]}

The ids go in the body, not in `GET /items?ids=...`: httpx encodes and checks a query string
in Python, character by character, at several times the CPU of a JSON body
(docs/performance.md).

Unknown ids are simply absent. The client takes a ready `httpx.AsyncClient` (built once in the
lifespan by `build_http_client`), so tests can hand it any transport.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Final

import httpx
import orjson

from app.domain import CatalogItem

# The reference catalog accepts up to 500 ids per call; larger lookups go out concurrently.
MAX_IDS_PER_CALL: Final = 500


_JSON: Final = {"content-type": "application/json"}

# Put in place of a read response's stream. httpx binds a response and its stream to each
# other, a reference cycle that keeps the response, its request and the transport's objects
# (about 40 per call) alive until the garbage collector finds them; cutting it lets reference
# counting free them at once, and the feed's young collections run a fraction as often
# (docs/performance.md).
_SPENT_STREAM: Final = httpx.ByteStream(b"")


class CatalogError(RuntimeError):
    """The catalog answered with something other than its contract."""


class HttpCatalog:
    """Implements `CatalogReader` over HTTP."""

    def __init__(self, client: httpx.AsyncClient, *, max_ids_per_call: int = MAX_IDS_PER_CALL):
        self._client = client
        self._max_ids = max_ids_per_call

    async def items(self, item_ids: Sequence[str]) -> dict[str, CatalogItem]:
        if not item_ids:
            return {}
        if len(item_ids) <= self._max_ids:
            return await self._fetch(item_ids)
        chunks = [
            item_ids[start : start + self._max_ids]
            for start in range(0, len(item_ids), self._max_ids)
        ]
        found: dict[str, CatalogItem] = {}
        for part in await asyncio.gather(*(self._fetch(chunk) for chunk in chunks)):
            found.update(part)
        return found

    async def _fetch(self, item_ids: Sequence[str]) -> dict[str, CatalogItem]:
        try:
            response = await self._client.post(
                "/items/lookup", content=orjson.dumps({"ids": list(item_ids)}), headers=_JSON
            )
        except (httpx.ReadTimeout, httpx.WriteTimeout, httpx.PoolTimeout) as exc:
            # The interface's timeout, so metrics count it with every dependency's timeouts.
            # Not ConnectTimeout: the aiohttp transport reports a refused connection as one.
            raise TimeoutError(f"catalog: {exc!r}") from exc
        response.stream = _SPENT_STREAM  # `post` has read the body: see _SPENT_STREAM
        if response.status_code != 200:
            raise CatalogError(f"catalog answered {response.status_code}")
        try:
            rows = orjson.loads(response.content)["items"]
            return {row["item_id"]: _item(row) for row in rows}
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise CatalogError(f"catalog response breaks the contract: {exc}") from None


def _item(row: dict[str, Any]) -> CatalogItem:
    price = row.get("price")
    return CatalogItem(
        item_id=row["item_id"],
        title=row.get("title"),
        category=row.get("category"),
        price=float(price) if price is not None else None,
        region=row.get("region"),
        seller_id=row.get("seller_id"),
        active=bool(row.get("active", True)),
    )


def build_http_client(
    base_url: str, *, timeout_s: float, max_connections: int
) -> httpx.AsyncClient:
    """An httpx client on the aiohttp transport, keep-alive pool sized from settings.

    httpx's default transport costs more CPU per call than aiohttp's (docs/performance.md).
    """
    from httpx_aiohttp import AiohttpTransport

    limits = httpx.Limits(
        max_connections=max_connections, max_keepalive_connections=max_connections
    )
    return httpx.AsyncClient(
        base_url=base_url,
        transport=AiohttpTransport(limits=limits),
        timeout=httpx.Timeout(timeout_s),
        limits=limits,
    )

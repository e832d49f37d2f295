"""app.sources.catalog against the real reference catalog service."""

from __future__ import annotations

import gc
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import httpx
import pytest

from app.domain import CatalogItem
from app.sources.cache import catalog_cache
from app.sources.catalog import CatalogError, HttpCatalog, build_http_client
from tests.support import CatalogProcess

pytestmark = pytest.mark.integration

ITEMS = [
    {
        "item_id": f"c-{n}",
        "title": f"Bike {n}",
        "category": "bikes",
        "price": 10.0 + n,
        "region": "berlin",
        "seller_id": f"s-{n % 3}",
        "active": n % 5 != 0,
    }
    for n in range(1200)
]


@pytest.fixture(scope="module")
def loaded(catalog_service: CatalogProcess) -> CatalogProcess:
    body = "\n".join(httpx.Response(200, json=item).text for item in ITEMS)
    response = httpx.put(f"{catalog_service.url}/items", content=body.encode(), timeout=30)
    assert response.status_code == 200
    return catalog_service


@pytest.fixture
async def http(loaded: CatalogProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with build_http_client(loaded.url, timeout_s=2.0, max_connections=8) as client:
        yield client


async def test_batch_lookup_returns_metadata_and_omits_unknown_ids(
    http: httpx.AsyncClient,
) -> None:
    found = await HttpCatalog(http).items(["c-1", "c-5", "missing"])
    assert set(found) == {"c-1", "c-5"}
    assert found["c-1"] == CatalogItem("c-1", "Bike 1", "bikes", 11.0, "berlin", "s-1", True)
    assert found["c-5"].active is False


async def test_more_ids_than_one_call_takes_go_out_concurrently(http: httpx.AsyncClient) -> None:
    ids = [f"c-{n}" for n in range(1200)]
    found = await HttpCatalog(http, max_ids_per_call=500).items(ids)
    assert len(found) == 1200


async def test_a_lookup_leaves_no_cyclic_garbage(http: httpx.AsyncClient) -> None:
    # Cyclic garbage waits for the collector, whose pauses land in the tail latency: a
    # lookup's response, request and transport objects must go by reference counting.
    catalog = HttpCatalog(http)
    await catalog.items(["c-1"])  # the connection and anything made once
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for n in range(20):
            assert await catalog.items([f"c-{n}", f"c-{n + 1}"])
        gc.collect()
        left = {
            type(obj).__module__
            for obj in gc.garbage
            if type(obj).__module__.split(".")[0] in {"httpx", "httpx_aiohttp", "aiohttp"}
        }
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        if was_enabled:
            gc.enable()
    assert left == set()


async def test_a_broken_contract_is_an_error(http: httpx.AsyncClient) -> None:
    broken = httpx.AsyncClient(
        base_url="http://catalog",
        transport=httpx.MockTransport(lambda request: httpx.Response(200, json={"rows": []})),
    )
    with pytest.raises(CatalogError, match="contract"):
        await HttpCatalog(broken).items(["c-1"])
    failing = httpx.AsyncClient(
        base_url="http://catalog",
        transport=httpx.MockTransport(lambda request: httpx.Response(500)),
    )
    with pytest.raises(CatalogError, match="500"):
        await HttpCatalog(failing).items(["c-1"])


async def test_a_slow_catalog_times_out_within_its_bound(tmp_path: Path) -> None:
    slow = CatalogProcess(data=tmp_path / "items.jsonl", delay_ms=10_000)
    slow.start()
    try:
        async with build_http_client(slow.url, timeout_s=0.1, max_connections=4) as client:
            started = time.monotonic()
            with pytest.raises(TimeoutError) as raised:
                await HttpCatalog(client).items(["c-1"])
            assert isinstance(raised.value.__cause__, httpx.TimeoutException)
            assert time.monotonic() - started < 5.0  # the 0.1 s timeout, not the 10 s delay
    finally:
        slow.stop()


async def test_a_stopped_catalog_fails_fast(tmp_path: Path) -> None:
    gone = CatalogProcess(data=tmp_path / "items.jsonl")
    gone.start()
    gone.stop()
    async with build_http_client(gone.url, timeout_s=30.0, max_connections=4) as client:
        started = time.monotonic()
        with pytest.raises(httpx.TransportError):
            await HttpCatalog(client).items(["c-1"])
        assert time.monotonic() - started < 10.0  # refused at once, not the 30 s timeout


async def test_cached_lookups_skip_the_network_until_the_ttl(http: httpx.AsyncClient) -> None:
    calls = 0
    catalog = HttpCatalog(http)

    async def counted(ids: Sequence[str]) -> dict[str, CatalogItem]:
        nonlocal calls
        calls += 1
        return await catalog.items(ids)

    cache = catalog_cache(counted, max_mb=8, ttl_s=60, refresh_s=10)
    first = await cache.get_many("", ["c-1", "c-2", "nope"], timeout=2)
    second = await cache.get_many("", ["c-1", "c-2", "nope"], timeout=2)
    assert first.found == second.found and set(first.found) == {"c-1", "c-2"}
    assert calls == 1

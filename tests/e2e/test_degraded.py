"""A failing catalog degrades answers (named in `degraded`) within bounded latency."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import Dataset
from tests.support import CatalogProcess, ServiceProcess, record

pytestmark = pytest.mark.e2e

CATALOG_TIMEOUT_MS = 80


def own_catalog(dataset: Dataset, path: Path, delay_ms: int = 0) -> CatalogProcess:
    catalog = CatalogProcess(data=path, delay_ms=delay_ms)
    catalog.start()
    body = (dataset.path / "catalog.jsonl").read_bytes()
    assert httpx.put(f"{catalog.url}/items", content=body, timeout=30).status_code == 200
    return catalog


def service_with(loaded_env: dict[str, str], catalog: CatalogProcess, log: Path) -> ServiceProcess:
    service = ServiceProcess(
        env={
            **loaded_env,
            "RECS_CATALOG_URL": catalog.url,
            "RECS_CATALOG_TIMEOUT_MS": str(CATALOG_TIMEOUT_MS),
            "RECS_CATALOG_CACHE_TTL_S": "0",  # every request asks the catalog
        },
        log=log,
    )
    service.start()
    return service


@pytest.fixture
def stoppable(
    loaded_env: dict[str, str], dataset: Dataset, tmp_path: Path
) -> Iterator[tuple[ServiceProcess, CatalogProcess]]:
    catalog = own_catalog(dataset, tmp_path / "items.jsonl")
    service = service_with(loaded_env, catalog, tmp_path / "service.log")
    yield service, catalog
    service.stop()
    catalog.stop()


def timed_get(client: httpx.Client, path: str) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = client.get(path)
    return response, time.monotonic() - started


def active_user(dataset: Dataset) -> str:
    return next(u for u, h in sorted(dataset.histories.items()) if len(h) >= 15)


def test_catalog_down_serves_items_without_metadata_then_recovers(
    stoppable: tuple[ServiceProcess, CatalogProcess], dataset: Dataset
) -> None:
    service, catalog = stoppable
    user = active_user(dataset)
    with httpx.Client(base_url=service.url, timeout=5) as client:
        healthy = client.get(f"/v1/users/{user}/recommendations").json()
        assert healthy["degraded"] == [] and healthy["items"][0]["title"]

        catalog.stop()
        down_ms: dict[str, float] = {}
        for path in (
            f"/v1/users/{user}/recommendations",
            "/v1/items/item-1/similar",
            "/v1/popular?category=bikes",
        ):
            response, elapsed = timed_get(client, path)
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["degraded"] == ["catalog"]
            assert body["items"], path
            assert all(item["title"] is None for item in body["items"])
            # Ten times the request deadline: bounded, not waiting on the dead catalog.
            assert elapsed < 2.5, f"{path} took {elapsed:.3f} s with the catalog down"
            down_ms[path.split("?")[0].replace(user, "{user}")] = round(elapsed * 1000, 1)
        # With a category filter and no catalog, only the category's popular list qualifies.
        bikes = client.get("/v1/popular?category=bikes").json()["items"]
        assert {dataset.catalog[i["item_id"]].category for i in bikes} == {"bikes"}

        catalog.start()
        restarted = time.monotonic()
        recovered = client.get(f"/v1/users/{user}/recommendations").json()
        assert recovered["degraded"] == [] and recovered["items"][0]["title"]
    record(
        "catalog_down",
        latency_ms=down_ms,
        errors=0,
        recovered_s_after_restart=round(time.monotonic() - restarted, 2),
    )


def test_catalog_slower_than_its_timeout_degrades_within_the_bound(
    loaded_env: dict[str, str], dataset: Dataset, tmp_path: Path
) -> None:
    slow = own_catalog(dataset, tmp_path / "items.jsonl", delay_ms=1000)
    service = service_with(loaded_env, slow, tmp_path / "service.log")
    try:
        latencies: list[float] = []
        with httpx.Client(base_url=service.url, timeout=5) as client:
            for _ in range(3):
                response, elapsed = timed_get(
                    client, f"/v1/users/{active_user(dataset)}/recommendations"
                )
                assert response.status_code == 200
                assert response.json()["degraded"] == ["catalog"]
                assert response.json()["items"]
                assert elapsed < CATALOG_TIMEOUT_MS / 1000 + 0.3, f"took {elapsed:.3f} s"
                latencies.append(round(elapsed * 1000, 1))
        record(
            "catalog_slow",
            catalog_delay_ms=1000,
            timeout_ms=CATALOG_TIMEOUT_MS,
            latency_ms=latencies,
        )
    finally:
        service.stop()
        slow.stop()

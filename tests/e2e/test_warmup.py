"""The neighbour warm-up against the real stack: a service that says it is ready already holds
the popular items' neighbour lists, read from Cassandra before the first request."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.support import ServiceProcess

pytestmark = pytest.mark.e2e

NEIGHBOUR_READS = (
    'recs_dependency_duration_seconds_count{dependency="scylla",operation="neighbours"}'
)
NEIGHBOUR_ENTRIES = 'recs_cache_entries{cache="neighbours"}'


def sample(http: httpx.Client, name: str) -> float:
    lines = [line for line in http.get("/metrics").text.splitlines() if line.startswith(name)]
    return float(lines[0].rsplit(" ", 1)[1]) if lines else 0.0


def started(loaded_env: dict[str, str], log: Path, warmup_items: str) -> ServiceProcess:
    service = ServiceProcess(
        env={**loaded_env, "RECS_NEIGHBOUR_WARMUP_ITEMS": warmup_items}, log=log
    )
    service.start()
    return service


def test_a_ready_service_holds_the_popular_items_neighbour_lists(
    loaded_env: dict[str, str], tmp_path: Path
) -> None:
    service = started(loaded_env, tmp_path / "service.log", "200")
    try:
        with httpx.Client(base_url=service.url, timeout=5) as http:
            assert sample(http, NEIGHBOUR_ENTRIES) == 200
            reads = sample(http, NEIGHBOUR_READS)
            assert reads >= 1
            # The most popular items' pages need no Cassandra read.
            top = http.get("/v1/popular", params={"limit": 3}).json()["items"]
            assert len(top) == 3
            for item in top:
                page = http.get(f"/v1/items/{item['item_id']}/similar", params={"limit": 5})
                assert page.status_code == 200 and page.json()["items"]
            assert sample(http, NEIGHBOUR_READS) == reads
    finally:
        service.stop()
    assert '"message":"neighbour cache warmed"' in (tmp_path / "service.log").read_text()


def test_without_the_warmup_the_cache_starts_empty(
    loaded_env: dict[str, str], tmp_path: Path
) -> None:
    service = started(loaded_env, tmp_path / "service.log", "0")
    try:
        with httpx.Client(base_url=service.url, timeout=5) as http:
            assert sample(http, NEIGHBOUR_ENTRIES) == 0
            assert sample(http, NEIGHBOUR_READS) == 0
            top = http.get("/v1/popular", params={"limit": 1}).json()["items"]
            http.get(f"/v1/items/{top[0]['item_id']}/similar", params={"limit": 5})
            assert sample(http, NEIGHBOUR_READS) == 1
    finally:
        service.stop()

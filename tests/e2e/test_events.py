"""POST /v1/events over HTTP: authentication, validation, idempotent storage, fresh feeds."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import httpx
import orjson
import pytest

from app.config import Settings
from tests.conftest import Dataset
from tests.e2e.conftest import API_KEYS

pytestmark = pytest.mark.e2e

AUTH = {"Authorization": f"Bearer {API_KEYS[1]}"}


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def event(user: str, n: int, **overrides: Any) -> dict[str, Any]:
    base = {
        "event_id": f"{user}-e{n}",
        "user_id": user,
        "item_id": f"item-{n + 1}",
        "event_type": "view",
        "ts_ms": now_ms() - n,
    }
    return base | overrides


def stored(settings: Settings, user: str) -> list[dict[str, Any]]:
    client = boto3.client(
        "dynamodb",
        region_name=settings.dynamodb_region,
        endpoint_url=settings.dynamodb_endpoint_url,
    )
    items: list[dict[str, Any]] = client.query(
        TableName=settings.dynamodb_table,
        KeyConditionExpression="user_id = :u",
        ExpressionAttributeValues={":u": {"S": user}},
        ConsistentRead=True,
    )["Items"]
    return items


def test_writes_need_a_valid_key(http: httpx.Client) -> None:
    body = {"events": [event("auth-user", 0)]}
    missing = http.post("/v1/events", json=body)
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "unauthorized"
    assert missing.headers["www-authenticate"] == "Bearer"
    wrong = http.post("/v1/events", json=body, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 403 and wrong.json()["error"]["code"] == "forbidden"
    basic = http.post("/v1/events", json=body, headers={"Authorization": "Basic abc"})
    assert basic.status_code == 401
    assert http.post("/v1/events", json=body, headers=AUTH).status_code == 200


def test_valid_events_are_stored_invalid_ones_rejected_with_reasons(
    http: httpx.Client, settings: Settings
) -> None:
    user = f"ev-{uuid.uuid4().hex[:8]}"
    batch: list[Any] = [
        event(user, 0),
        event(user, 1, event_type="teleport"),
        event(user, 2, ts_ms=now_ms() + 3_600_000),
        event(user, 3, item_id="bad item"),
        event(user, 4, event_type="purchase", surface="item_page", model_version="nb-x"),
        "not an event",
    ]
    response = http.post("/v1/events", json={"events": batch}, headers=AUTH)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["accepted"] == [f"{user}-e0", f"{user}-e4"] and body["failed"] == []
    assert [(r["index"], r["event_id"]) for r in body["rejected"]] == [
        (1, f"{user}-e1"),
        (2, f"{user}-e2"),
        (3, f"{user}-e3"),
        (5, None),  # a non-object is one bad event, not a bad batch
    ]
    assert all(r["reason"] for r in body["rejected"])
    items = {i["event_id"]["S"]: i for i in stored(settings, user)}
    assert set(items) == {f"{user}-e0", f"{user}-e4"}
    assert items[f"{user}-e4"]["surface"]["S"] == "item_page"


def test_duplicates_and_retries_are_stored_once(http: httpx.Client, settings: Settings) -> None:
    user = f"dup-{uuid.uuid4().hex[:8]}"
    batch = [event(user, n) for n in range(30)]
    first = http.post("/v1/events", json={"events": batch + batch[:5]}, headers=AUTH)
    assert first.status_code == 200 and len(first.json()["accepted"]) == 35
    again = http.post("/v1/events", json={"events": batch}, headers=AUTH)  # a client retry
    assert again.status_code == 200
    assert len(stored(settings, user)) == 30


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"{}",
        b'{"events": []}',
        b'{"events": "nope"}',
        b'{"events": [' + b",".join([b"{}"] * 501) + b"]}",
        b'{"events": ' + b"[" * 10_000 + b"]" * 10_000 + b"}",  # deeper than any parser allows
        b'{"events": [{"user_id": "\xff"}]}',  # not UTF-8
    ],
)
def test_malformed_batches_are_400_and_store_nothing(http: httpx.Client, body: bytes) -> None:
    response = http.post(
        "/v1/events", content=body, headers=AUTH | {"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_parameter"


def test_a_body_over_the_limit_is_413_declared_or_chunked(http: httpx.Client) -> None:
    body = orjson.dumps({"events": [event("big", 0, surface="x" * 300_000)]})
    declared = http.post("/v1/events", content=body, headers=AUTH)
    assert declared.status_code == 413
    assert declared.json()["error"]["code"] == "body_too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: Transfer-Encoding chunked
        for start in range(0, len(body), 16_384):
            yield body[start : start + 16_384]

    chunked = http.post("/v1/events", content=chunks(), headers=AUTH)
    assert chunked.status_code == 413
    assert chunked.json()["error"]["code"] == "body_too_large"


def test_a_fresh_action_changes_the_very_next_feed(http: httpx.Client, dataset: Dataset) -> None:
    user = f"fresh-{uuid.uuid4().hex[:8]}"
    cold = [i["item_id"] for i in http.get(f"/v1/users/{user}/recommendations").json()["items"]]
    target = next(i for i, n in sorted(dataset.neighbours.items()) if len(n) >= 20)
    posted = http.post(
        "/v1/events",
        json={"events": [event(user, 0, item_id=target, event_type="add_to_cart")]},
        headers=AUTH,
    )
    assert posted.status_code == 200
    warm = http.get(f"/v1/users/{user}/recommendations").json()["items"]
    assert [i["item_id"] for i in warm] != cold
    assert any(i["source"] == "personalized" for i in warm)
    assert target not in {i["item_id"] for i in warm}


def test_request_ids_are_echoed_or_made_up(http: httpx.Client) -> None:
    echoed = http.get("/v1/popular", headers={"X-Request-ID": "abc-123"})
    assert echoed.headers["x-request-id"] == "abc-123"
    made = http.get("/v1/popular", headers={"X-Request-ID": "not sane"})
    assert made.headers["x-request-id"] != "not sane" and len(made.headers["x-request-id"]) == 32


def test_metrics_show_requests_dependencies_loop_gc_pool_caches_and_versions(
    http: httpx.Client, dataset: Dataset
) -> None:
    # A short load run: GC collections are rare by design (thresholds 7000,20,20 and most
    # request objects die young), so it takes a few hundred requests to see some.
    users = sorted(u for u, h in dataset.histories.items() if len(h) >= 5)[:40]
    paths = [f"/v1/users/{u}/recommendations" for u in users] + [
        f"/v1/items/item-{n}/similar" for n in range(1, 41)
    ]

    def hit(path: str) -> int:
        with httpx.Client(base_url=http.base_url, timeout=5) as client:
            return sum(client.get(path).status_code == 200 for _ in range(6))

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert sum(pool.map(hit, paths)) == 6 * len(paths)
    time.sleep(0.2)
    text = http.get("/metrics").text

    def value(line_start: str) -> float:
        lines = [line for line in text.splitlines() if line.startswith(line_start)]
        assert lines, f"no sample {line_start!r}"
        return sum(float(line.rsplit(" ", 1)[1]) for line in lines)

    feed = (
        'recs_http_request_duration_seconds_count{method="GET",'
        'route="/v1/users/{user_id}/recommendations",status="200"}'
    )
    assert value(feed) >= 6 * 40
    for dependency in ("scylla", "dynamodb", "catalog"):
        assert value(f'recs_dependency_duration_seconds_count{{dependency="{dependency}"') > 0
    assert value("recs_event_loop_lag_seconds_count") > 0
    assert value('recs_gc_pause_seconds_count{generation="0"}') > 0
    assert value("recs_cql_pool_threads") > 0 and value("recs_cql_pool_hops_total") > 0
    assert value("recs_cql_pool_busy_threads_count") > 0
    assert value("recs_cql_pool_queue_depth_count") > 0
    assert value('recs_cache_hit_ratio{cache="neighbours"}') > 0
    assert value('recs_cache_entries{cache="catalog"}') > 0
    assert value('recs_model_version_info{model="neighbours"') == 1
    assert value("recs_scylla_shard_aware") == 0  # Cassandra: no shards

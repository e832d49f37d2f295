"""Faults injected into the real stack while the service serves: each test asserts the error
count, a latency bound and recovery, and records what it measured in reports/faults.json
(docs/reliability.md quotes it).

Run last (tests/conftest.py orders `fault` tests after the rest): they kill and freeze the
shared servers. The catalog's faults (down, slower than its timeout) are in
tests/e2e/test_degraded.py.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from app.config import Settings
from app.schema import dynamodb as dynamodb_schema
from scripts import stack
from scripts.stats import percentile
from tests.conftest import Dataset
from tests.support import (
    Probe,
    Sample,
    ServiceProcess,
    record,
    wait_for,
)

pytestmark = pytest.mark.fault

KEY = "fault-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
# What "bounded" means here: ten times the request deadline (250 ms), which a request that
# waited on a dead dependency would exceed and scheduling noise on a busy machine would not.
# The measured latencies go to reports/faults.json and docs/reliability.md.
LATENCY_BOUND_S = 2.5
RECOVERY_BOUND_S = 20.0


def summary(samples: list[Sample]) -> dict[str, Any]:
    latencies = [s.seconds for s in samples]

    def ms(q: float) -> float | None:
        return round(percentile(latencies, q) * 1000, 1) if latencies else None

    return {
        "requests": len(samples),
        "errors": sum(1 for s in samples if s.status != 200),
        "degraded": sum(1 for s in samples if s.body.get("degraded")),
        "p50_ms": ms(50),
        "p99_ms": ms(99),
        "max_ms": ms(100),
    }


@pytest.fixture
def service(loaded_env: dict[str, str], tmp_path: Path) -> Iterator[ServiceProcess]:
    process = ServiceProcess(
        env={
            **loaded_env,
            "RECS_API_KEYS": KEY,
            "RECS_MODEL_REFRESH_S": "0.5",
            "RECS_BREAKER_RESET_S": "0.5",
            "RECS_LOG_LEVEL": "warning",
        },
        log=tmp_path / "service.log",
    )
    process.start()
    yield process
    process.stop()


def freeze(pid: int, seconds: float) -> tuple[float, float]:
    """SIGSTOP a server for `seconds`, SIGCONT it whatever happens; when it froze and thawed."""
    os.kill(pid, signal.SIGSTOP)
    frozen = time.monotonic()
    try:
        time.sleep(seconds)
    finally:
        os.kill(pid, signal.SIGCONT)
    return frozen, time.monotonic()


def feed_traffic(dataset: Dataset) -> Any:
    """Warm users (cached neighbour lists), fresh users (every read a Scylla miss), items."""
    warm = sorted(u for u, h in dataset.histories.items() if len(h) >= 10)[:5]
    items = sorted(dataset.neighbours)

    def request(client: httpx.Client, n: int) -> tuple[str, httpx.Response]:
        if n % 3 == 0:
            return "warm", client.get(f"/v1/users/{warm[n % len(warm)]}/recommendations")
        if n % 3 == 1:
            # A fresh item's neighbours are not cached: the request must go to Scylla.
            item = items[(n * 7919) % len(items)]
            return "similar", client.get(f"/v1/items/{item}/similar")
        return "popular", client.get("/v1/popular")

    return warm, request


def scylla_is_back(url: str, dataset: Dataset) -> bool:
    """A read that must reach Scylla (an item not read before) comes back whole."""
    item = sorted(dataset.neighbours)[uuid.uuid4().int % len(dataset.neighbours)]
    body = httpx.get(f"{url}/v1/items/{item}/similar?exclude=item-{uuid.uuid4().hex[:6]}").json()
    return bool(body["degraded"] == [] and body["items"][0]["source"] == "similar")


def test_cassandra_killed_while_serving_then_restarted(
    service: ServiceProcess, dataset: Dataset
) -> None:
    warm, request = feed_traffic(dataset)
    for user in warm:  # cache their neighbour lists
        httpx.get(f"{service.url}/v1/users/{user}/recommendations")
    with Probe(service.url, request) as probe:
        time.sleep(1.0)
        pid = stack.pid_of("cassandra")
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        killed = time.monotonic()
        time.sleep(4.0)
        outage_end = time.monotonic()
        stack.restart("cassandra")
        back = time.monotonic()
        recovered_after = wait_for(lambda: scylla_is_back(service.url, dataset), RECOVERY_BOUND_S)
        time.sleep(0.5)
    outage = probe.between(killed, outage_end)
    restarting = probe.between(outage_end, back)
    record(
        "cassandra_killed",
        outage=summary(outage),
        during_restart=summary(restarting),
        restart_s=round(back - outage_end, 1),
        recovered_s_after_ready=round(recovered_after, 1),
    )
    assert outage and all(s.status == 200 for s in probe.samples)
    assert max(s.seconds for s in outage + restarting) < LATENCY_BOUND_S
    assert all(s.body["items"] for s in outage)
    assert any("scylla" in s.body["degraded"] for s in outage if s.kind == "similar")
    # Cached neighbour lists keep warm users personalized through the outage.
    assert any(
        item["source"] == "personalized"
        for s in outage
        if s.kind == "warm"
        for item in s.body["items"]
    )


def test_cassandra_frozen_then_thawed(service: ServiceProcess, dataset: Dataset) -> None:
    """SIGSTOP: the node keeps its connections open and never answers."""
    pid = stack.pid_of("cassandra")
    assert pid is not None
    _, request = feed_traffic(dataset)
    with Probe(service.url, request) as probe:
        time.sleep(1.0)
        frozen, thawed = freeze(pid, 5.0)
        recovered_after = wait_for(lambda: scylla_is_back(service.url, dataset), RECOVERY_BOUND_S)
        time.sleep(0.5)
    outage = probe.between(frozen, thawed)
    record("cassandra_frozen", outage=summary(outage), recovered_s=round(recovered_after, 1))
    assert outage and all(s.status == 200 for s in probe.samples)
    assert max(s.seconds for s in outage) < LATENCY_BOUND_S
    assert any("scylla" in s.body["degraded"] for s in outage)
    assert all(s.body["items"] for s in outage)


def event_traffic(user_prefix: str) -> Any:
    def request(client: httpx.Client, n: int) -> tuple[str, httpx.Response]:
        if n % 2 == 0:
            return "feed", client.get(f"/v1/users/{user_prefix}-{n % 7}/recommendations")
        events = [
            {
                "event_id": f"{user_prefix}-{n}-{k}",
                "user_id": f"{user_prefix}-{n % 7}",
                "item_id": f"item-{k + 1}",
                "event_type": "view",
                "ts_ms": time.time_ns() // 1_000_000,
            }
            for k in range(5)
        ]
        return "events", client.post("/v1/events", json={"events": events}, headers=AUTH)

    return request


def stored_event_ids(settings: Settings, user_prefix: str) -> set[str]:
    client = boto3.client(
        "dynamodb",
        region_name=settings.dynamodb_region,
        endpoint_url=settings.dynamodb_endpoint_url,
    )
    ids: set[str] = set()
    for n in range(7):
        response = client.query(
            TableName=settings.dynamodb_table,
            KeyConditionExpression="user_id = :u",
            ExpressionAttributeValues={":u": {"S": f"{user_prefix}-{n}"}},
            ConsistentRead=True,
        )
        ids.update(item["event_id"]["S"] for item in response["Items"])
    return ids


def accepted_ids(samples: list[Sample]) -> set[str]:
    return {i for s in samples if s.kind == "events" for i in s.body.get("accepted", [])}


def events_flow(url: str) -> bool:
    event = {
        "event_id": uuid.uuid4().hex,
        "user_id": "probe-user",
        "item_id": "item-1",
        "event_type": "view",
        "ts_ms": time.time_ns() // 1_000_000,
    }
    return httpx.post(f"{url}/v1/events", json={"events": [event]}, headers=AUTH).status_code == 200


def test_dynamodb_frozen_then_thawed(service: ServiceProcess, settings: Settings) -> None:
    pid = stack.pid_of("dynamodb")
    assert pid is not None
    prefix = f"frz-{uuid.uuid4().hex[:6]}"
    with Probe(service.url, event_traffic(prefix)) as probe:
        time.sleep(1.0)
        frozen, thawed = freeze(pid, 4.0)
        recovered_after = wait_for(lambda: events_flow(service.url), RECOVERY_BOUND_S)
        time.sleep(0.5)
    outage = probe.between(frozen + 0.1, thawed)
    feeds = [s for s in outage if s.kind == "feed"]
    writes = [s for s in outage if s.kind == "events"]
    record(
        "dynamodb_frozen",
        feed=summary(feeds),
        events=summary(writes),
        events_503=sum(1 for s in writes if s.status == 503),
        recovered_s=round(recovered_after, 1),
    )
    assert feeds and all(s.status == 200 and s.body["items"] for s in feeds)
    assert any("dynamodb" in s.body["degraded"] for s in feeds)
    assert max(s.seconds for s in feeds) < LATENCY_BOUND_S
    assert writes and all(s.status in (200, 503) for s in writes)
    assert any(s.status == 503 for s in writes)
    assert all(
        s.body["accepted"] == [] and s.headers.get("retry-after") for s in writes if s.status == 503
    )
    # The first writes spend their attempts opening the breaker; then 503s come at once.
    assert max(s.seconds for s in writes) < 1.5 + LATENCY_BOUND_S  # the write deadline + noise
    assert percentile([s.seconds for s in writes], 50) < LATENCY_BOUND_S
    # Never a false acceptance: everything reported accepted is in DynamoDB.
    assert accepted_ids(probe.samples) <= stored_event_ids(settings, prefix)


def test_dynamodb_stopped_then_restarted(service: ServiceProcess, settings: Settings) -> None:
    """Last: DynamoDB Local keeps its data in memory, so a restart starts it empty."""
    prefix = f"stp-{uuid.uuid4().hex[:6]}"
    with Probe(service.url, event_traffic(prefix)) as probe:
        time.sleep(1.0)
        stack.stop("dynamodb")
        stopped = time.monotonic()
        time.sleep(3.0)
        outage_end = time.monotonic()
        stack.start("dynamodb")
        dynamodb_schema.ensure_table(
            boto3.client(
                "dynamodb",
                region_name=settings.dynamodb_region,
                endpoint_url=settings.dynamodb_endpoint_url,
            ),
            settings.dynamodb_table,
        )
        back = time.monotonic()
        recovered_after = wait_for(lambda: events_flow(service.url), RECOVERY_BOUND_S)
        recovered = back + recovered_after
        # The probe's writes after recovery: wait for a few rather than a fixed time (one
        # thread sends them, and its first write to the restarted server may be slow).
        wait_for(lambda: len(probe.between(recovered, time.monotonic(), "events")) >= 3, 10.0)
    outage = probe.between(stopped + 0.1, outage_end)
    feeds = [s for s in outage if s.kind == "feed"]
    writes = [s for s in outage if s.kind == "events"]
    record(
        "dynamodb_stopped",
        feed=summary(feeds),
        events=summary(writes),
        restart_s=round(back - outage_end, 1),
        recovered_s_after_ready=round(recovered_after, 1),
    )
    assert feeds and all(s.status == 200 and s.body["items"] for s in feeds)
    assert all("dynamodb" in s.body["degraded"] for s in feeds)
    assert max(s.seconds for s in feeds) < LATENCY_BOUND_S
    assert writes and all(s.status == 503 and s.body["accepted"] == [] for s in writes)
    assert all(s.headers.get("retry-after") for s in writes)
    # The first writes spend their attempts opening the breaker; then 503s come at once.
    assert max(s.seconds for s in writes) < 1.5 + LATENCY_BOUND_S
    assert percentile([s.seconds for s in writes], 50) < LATENCY_BOUND_S
    after = [s for s in probe.samples if s.at > recovered and s.kind == "events"]
    assert after and all(s.status == 200 for s in after)
    assert accepted_ids(after) <= stored_event_ids(settings, prefix)

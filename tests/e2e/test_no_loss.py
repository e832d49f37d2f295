"""Nothing lost, nothing doubled: many clients send events concurrently, with duplicates
inside and across batches and retries after client-side timeouts; DynamoDB, read directly,
ends up holding exactly the unique events."""

from __future__ import annotations

import random
import threading
import time
import uuid
from typing import Any

import boto3
import httpx
import pytest

from app.config import Settings
from tests.e2e.conftest import API_KEYS
from tests.support import ServiceProcess, record

pytestmark = pytest.mark.e2e

AUTH = {"Authorization": f"Bearer {API_KEYS[0]}"}
UNIQUE_EVENTS = 2000
USERS = 25
CLIENTS = 12


def test_concurrent_duplicated_retried_events_are_stored_exactly_once(
    service: ServiceProcess, settings: Settings
) -> None:
    run = uuid.uuid4().hex[:6]
    rng = random.Random(7)
    now = time.time_ns() // 1_000_000
    events = [
        {
            "event_id": f"nl-{run}-{n}",
            "user_id": f"nl-{run}-u{n % USERS}",
            "item_id": f"item-{rng.randint(1, 3000)}",
            "event_type": rng.choice(["view", "favorite", "add_to_cart"]),
            "ts_ms": now - rng.randint(0, 3_600_000),
        }
        for n in range(UNIQUE_EVENTS)
    ]
    # Every event once, 15 % of them a second time (some inside the same batch).
    stream = events + rng.sample(events, UNIQUE_EVENTS * 15 // 100)
    rng.shuffle(stream)
    batches: list[list[dict[str, Any]]] = []
    while stream:
        size = rng.randint(5, 120)
        batch, stream = stream[:size], stream[size:]
        if rng.random() < 0.2:
            batch = batch + batch[: rng.randint(1, 5)]  # duplicates within one batch
        batches.append(batch)

    timeouts = retries = 0
    lock = threading.Lock()
    pending = list(batches)

    def client(seed: int) -> None:
        nonlocal timeouts, retries
        local = random.Random(seed)
        with httpx.Client(base_url=service.url) as http:
            while True:
                with lock:
                    if not pending:
                        return
                    batch = pending.pop()
                # An impatient first try (it may time out while the server goes on), then
                # retries of the very same batch until the service confirms it.
                timeout = local.choice([0.005, 0.02, 5.0])
                while True:
                    try:
                        response = http.post(
                            "/v1/events", json={"events": batch}, headers=AUTH, timeout=timeout
                        )
                    except httpx.TimeoutException:
                        with lock:
                            timeouts += 1
                        timeout = 5.0
                        continue
                    if response.status_code == 200:
                        assert response.json()["rejected"] == []
                        break
                    assert response.status_code == 503, response.text
                    with lock:
                        retries += 1
                    time.sleep(float(response.headers.get("retry-after", "1")))

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(thread.is_alive() for thread in threads)
    assert timeouts > 0, "the test must exercise retries after client timeouts"

    dynamodb = boto3.client(
        "dynamodb",
        region_name=settings.dynamodb_region,
        endpoint_url=settings.dynamodb_endpoint_url,
    )
    stored: list[str] = []
    for user in range(USERS):
        kwargs: dict[str, Any] = {
            "TableName": settings.dynamodb_table,
            "KeyConditionExpression": "user_id = :u",
            "ExpressionAttributeValues": {":u": {"S": f"nl-{run}-u{user}"}},
            "ConsistentRead": True,
        }
        while True:
            page = dynamodb.query(**kwargs)
            stored += [item["event_id"]["S"] for item in page["Items"]]
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    assert len(stored) == UNIQUE_EVENTS  # nothing doubled ...
    assert set(stored) == {e["event_id"] for e in events}  # ... nothing lost
    record(
        "no_loss",
        unique_events=UNIQUE_EVENTS,
        sent_events=sum(len(batch) for batch in batches),
        batches=len(batches),
        clients=CLIENTS,
        client_timeouts_retried=timeouts,
        retries_after_503=retries,
        stored=len(stored),
    )

"""app.sources.dynamo against the real DynamoDB Local.

DynamoDB Local never throttles, so the retry paths (UnprocessedItems, failed calls) are
exercised by a thin wrapper that injects those answers in front of the real client.
"""

from __future__ import annotations

import gc
import time
import uuid
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import aioboto3
import boto3
import pytest
from botocore.parsers import ResponseParser

from app.config import Settings
from app.domain import Event
from app.observability.metrics import Metrics
from app.resilience import CircuitBreaker, protect
from app.sources.dynamo import DynamoInteractions, connect, sort_key

pytestmark = pytest.mark.integration

NOW = 1_800_000_000_000


@pytest.fixture
async def client(settings: Settings, dynamodb_table: str) -> AsyncIterator[Any]:
    """The client the service builds (its own response parser and User-Agent)."""
    async with connect(settings, max_connections=8, timeout_s=5.0) as dynamodb:
        yield dynamodb


def user() -> str:
    return f"u-{uuid.uuid4().hex[:10]}"


def events(user_id: str, count: int, start: int = 0) -> list[Event]:
    return [
        Event(f"e{n}", user_id, f"item-{n}", "view", NOW + n * 1000) for n in range(start, count)
    ]


def stored_items(settings: Settings, user_id: str) -> list[dict[str, Any]]:
    """What DynamoDB holds, read directly (not through the code under test)."""
    direct = boto3.client(
        "dynamodb",
        region_name=settings.dynamodb_region,
        endpoint_url=settings.dynamodb_endpoint_url,
    )
    response = direct.query(
        TableName=settings.dynamodb_table,
        KeyConditionExpression="user_id = :u",
        ExpressionAttributeValues={":u": {"S": user_id}},
        ConsistentRead=True,
    )
    items: list[dict[str, Any]] = response["Items"]
    return items


async def test_write_then_read_newest_first(client: Any, settings: Settings) -> None:
    store = DynamoInteractions(client, table=settings.dynamodb_table, retention_days=30)
    u = user()
    outcome = await store.write(events(u, 60), deadline_s=10)
    assert len(outcome.stored) == 60 and outcome.failed == []
    recent = await store.recent(u, 50)
    assert len(recent) == 50
    assert [i.ts_ms for i in recent] == sorted((i.ts_ms for i in recent), reverse=True)
    assert recent[0].item_id == "item-59" and recent[0].event_type == "view"
    assert recent[0].ts_ms == NOW + 59_000  # an integer end to end


async def test_item_layout_and_ttl(client: Any, settings: Settings) -> None:
    store = DynamoInteractions(client, table=settings.dynamodb_table, retention_days=30)
    u = user()
    event = Event("e-1", u, "item-9", "purchase", NOW, surface="home", model_version="nb-1")
    await store.write([event], deadline_s=10)
    (item,) = stored_items(settings, u)
    assert item["sk"]["S"] == sort_key(NOW, "e-1") == f"{NOW:013d}#e-1"
    assert item["expires_at"]["N"] == str(NOW // 1000 + 30 * 86_400)
    assert item["surface"]["S"] == "home" and item["model_version"]["S"] == "nb-1"


async def test_duplicates_in_a_batch_and_across_retries_are_stored_once(
    client: Any, settings: Settings
) -> None:
    store = DynamoInteractions(client, table=settings.dynamodb_table)
    u = user()
    batch = events(u, 30)
    outcome = await store.write(batch + batch[:10], deadline_s=10)  # BatchWriteItem alone rejects
    assert len(outcome.stored) == 40 and outcome.failed == []
    await store.write(batch, deadline_s=10)  # a client retry
    assert len(stored_items(settings, u)) == 30


async def test_read_your_writes(client: Any, settings: Settings) -> None:
    store = DynamoInteractions(client, table=settings.dynamodb_table)
    u = user()
    for n in range(5):
        await store.write([Event(f"e{n}", u, f"item-{n}", "view", NOW + n)], deadline_s=5)
        assert (await store.recent(u, 1))[0].item_id == f"item-{n}"


class _Flaky:
    """The real client, but BatchWriteItem first leaves some items unprocessed or fails."""

    def __init__(self, real: Any, *, unprocessed_calls: int, raise_calls: int = 0) -> None:
        self._real = real
        self.unprocessed_calls = unprocessed_calls
        self.raise_calls = raise_calls
        self.calls = 0

    async def batch_write_item(self, RequestItems: dict[str, list[Any]]) -> dict[str, Any]:
        self.calls += 1
        if self.raise_calls > 0:
            self.raise_calls -= 1
            raise ConnectionError("injected: endpoint unreachable")
        if self.unprocessed_calls > 0:
            self.unprocessed_calls -= 1
            ((table, requests),) = RequestItems.items()
            half = len(requests) // 2
            await self._real.batch_write_item(RequestItems={table: requests[:half]})
            return {"UnprocessedItems": {table: requests[half:]}}
        result: dict[str, Any] = await self._real.batch_write_item(RequestItems=RequestItems)
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


async def test_unprocessed_items_and_failed_calls_are_retried(
    client: Any, settings: Settings
) -> None:
    flaky = _Flaky(client, unprocessed_calls=3, raise_calls=1)
    store = DynamoInteractions(flaky, table=settings.dynamodb_table)
    u = user()
    outcome = await store.write(events(u, 25), deadline_s=10)
    assert len(outcome.stored) == 25 and outcome.failed == []
    assert flaky.calls >= 5
    assert len(stored_items(settings, u)) == 25


async def test_nothing_is_reported_stored_unless_it_was(client: Any, settings: Settings) -> None:
    flaky = _Flaky(client, unprocessed_calls=10_000)  # never fully processed
    store = DynamoInteractions(flaky, table=settings.dynamodb_table)
    u = user()
    outcome = await store.write(events(u, 20), deadline_s=0.3)
    stored_now = {item["event_id"]["S"] for item in stored_items(settings, u)}
    assert outcome.failed, "the deadline must leave some events unwritten"
    assert {e.event_id for e in outcome.stored} <= stored_now
    assert len(outcome.stored) + len(outcome.failed) == 20


async def test_unreachable_store_fails_every_event(client: Any, settings: Settings) -> None:
    flaky = _Flaky(client, unprocessed_calls=0, raise_calls=10_000)
    store = DynamoInteractions(flaky, table=settings.dynamodb_table)
    outcome = await store.write(events(user(), 30), deadline_s=0.2)
    assert outcome.stored == [] and len(outcome.failed) == 30


async def test_an_open_breaker_ends_the_retries_at_once(client: Any, settings: Settings) -> None:
    """An unreachable store must not cost every write its whole deadline."""
    breaker = CircuitBreaker("dynamodb", failure_threshold=3, reset_s=60)
    flaky = _Flaky(client, unprocessed_calls=0, raise_calls=10_000)
    guarded = SimpleNamespace(
        batch_write_item=protect(
            flaky.batch_write_item,
            breaker=breaker,
            metrics=Metrics(),
            dependency="dynamodb",
            operation="batch_write_item",
        )
    )
    store = DynamoInteractions(guarded, table=settings.dynamodb_table)
    started = time.monotonic()
    outcome = await store.write(events(user(), 30), deadline_s=60.0)
    assert len(outcome.failed) == 30 and outcome.stored == []
    assert breaker.state == "open"
    assert time.monotonic() - started < 10.0  # the breaker, not the 60 s deadline
    again = time.monotonic()
    await store.write(events(user(), 5), deadline_s=60.0)
    assert time.monotonic() - again < 10.0  # refused at once, not retried to the deadline


async def test_the_service_client_reads_what_stock_aioboto3_reads(
    client: Any, settings: Settings
) -> None:
    """Items of every attribute type, binary and nested included, read back through the
    service's client (its own response parser) and through aioboto3 as it comes."""
    u = user()
    blob = b"\x00\xffbinary"
    items: list[dict[str, Any]] = [
        {"user_id": {"S": u}, "sk": {"S": "1#plain"}, "n": {"N": "12"}, "t": {"BOOL": True}},
        {
            "user_id": {"S": u},
            "sk": {"S": "2#every-type"},
            "b": {"B": blob},
            "bs": {"BS": [blob, b"other"]},
            "ss": {"SS": ["a", "b"]},
            "ns": {"NS": ["1", "2.5"]},
            "null": {"NULL": True},
            "m": {"M": {"b": {"B": blob}, "l": {"L": [{"S": "x"}, {"N": "1"}]}}},
        },
    ]
    direct = boto3.client(
        "dynamodb",
        region_name=settings.dynamodb_region,
        endpoint_url=settings.dynamodb_endpoint_url,
    )
    for item in items:
        direct.put_item(TableName=settings.dynamodb_table, Item=item)
    query = {
        "TableName": settings.dynamodb_table,
        "KeyConditionExpression": "user_id = :u",
        "ExpressionAttributeValues": {":u": {"S": u}},
        "ConsistentRead": True,
    }
    async with aioboto3.Session().client(
        "dynamodb",
        region_name=settings.dynamodb_region,
        endpoint_url=settings.dynamodb_endpoint_url,
    ) as stock:
        expected = (await stock.query(**query))["Items"]
    got = (await client.query(**query))["Items"]
    assert got == expected
    assert got[1]["b"] == {"B": blob} and got[1]["m"]["M"]["b"] == {"B": blob}


async def test_queries_leave_no_parser_for_the_garbage_collector(
    client: Any, settings: Settings
) -> None:
    """botocore asks for a parser per response, and a parser is a reference cycle: a parser
    per Query would leave cyclic garbage behind every feed request. The client reuses one."""
    reader = DynamoInteractions(client, table=settings.dynamodb_table)
    await reader.recent(user(), 10)
    flags = gc.get_debug()
    gc.collect()
    gc.disable()
    gc.set_debug(flags | gc.DEBUG_SAVEALL)
    try:
        for _ in range(20):
            await reader.recent(user(), 10)
        gc.collect()
        parsers = [o for o in gc.garbage if isinstance(o, ResponseParser)]
    finally:
        gc.garbage.clear()
        gc.set_debug(flags)
        gc.enable()
    assert parsers == []

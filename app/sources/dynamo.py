"""DynamoDB: each user's recent interactions, through one aioboto3 client per process.

Item layout (table `RECS_DYNAMODB_TABLE`), one item per event:

    user_id     S  partition key
    sk          S  sort key: "<ts_ms, 13 digits>#<event_id>", so a Query with
                   ScanIndexForward=false reads a user's newest events first
    item_id     S
    event_type  S
    ts_ms       N  epoch milliseconds (an integer across every boundary)
    event_id    S
    expires_at  N  TTL attribute, epoch seconds
    surface, model_version   S, optional attribution context

The sort key holds the event id, so writing the same event twice writes the same item:
storage is idempotent by event id without a conditional write.

`connect` builds the process's one client. The DynamoDB Query is a large share of the feed's
CPU (docs/performance.md); three parts of it are avoidable without
leaving aioboto3 (`app.sources._dynamodb_parsing`): botocore walks every attribute value
through the model's 10-member AttributeValue shape to return what the JSON already holds,
builds a new response parser (a reference cycle) for every response, and rebuilds the
User-Agent header from some 30 parts on every call.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Final

from app.config import Settings
from app.domain import Event, Interaction, WriteOutcome
from app.resilience import CircuitOpen

TTL_ATTRIBUTE: Final = "expires_at"
BATCH_WRITE_MAX: Final = 25  # DynamoDB's BatchWriteItem limit
_BACKOFF_BASE_S: Final = 0.01
_BACKOFF_CAP_S: Final = 0.5


def _key(event: Event) -> tuple[str, str]:
    """The event's DynamoDB primary key."""
    return event.user_id, sort_key(event.ts_ms, event.event_id)


def derived_event_id(user_id: str, item_id: str, event_type: str, ts_ms: int) -> str:
    """A stable id for a logged interaction that has none, so reloading a log is idempotent."""
    key = f"{user_id}\x1f{item_id}\x1f{event_type}\x1f{ts_ms}".encode()
    return hashlib.blake2b(key, digest_size=12).hexdigest()


def sort_key(ts_ms: int, event_id: str) -> str:
    return f"{ts_ms:013d}#{event_id}"


def connect(
    settings: Settings,
    *,
    max_connections: int,
    timeout_s: float | None = None,
    max_attempts: int | None = None,
) -> AbstractAsyncContextManager[Any]:
    """An aioboto3 DynamoDB client (enter it once per process), with three CPU savings:
    responses parsed by `_dynamodb_parsing.AttributeValueParser`, one such parser for the
    client's life (`ParserFactory`), and a fixed User-Agent (a supplied one is used as is
    instead of being rebuilt per call). docs/performance.md has what each saves."""
    import aioboto3
    from aiobotocore.config import AioConfig
    from aiobotocore.session import AioSession

    from app.sources._dynamodb_parsing import USER_AGENT, ParserFactory

    botocore_session = AioSession()
    botocore_session.register_component("response_parser_factory", ParserFactory())
    options: dict[str, Any] = {
        "max_pool_connections": max_connections,
        "user_agent": USER_AGENT,
    }
    if timeout_s is not None:
        options["connect_timeout"] = options["read_timeout"] = timeout_s
    if max_attempts is not None:
        options["retries"] = {"max_attempts": max_attempts, "mode": "standard"}
    client: AbstractAsyncContextManager[Any] = aioboto3.Session(
        botocore_session=botocore_session
    ).client(
        "dynamodb",
        region_name=settings.dynamodb_region,
        endpoint_url=settings.dynamodb_endpoint_url or None,
        config=AioConfig(**options),
    )
    return client


class DynamoInteractions:
    """Implements `InteractionReader` over an aiobotocore DynamoDB client."""

    def __init__(self, client: Any, *, table: str, retention_days: int = 90) -> None:
        self._client = client
        self._table = table
        self._retention_s = retention_days * 86_400

    async def recent(self, user_id: str, limit: int) -> list[Interaction]:
        response = await self._client.query(
            TableName=self._table,
            KeyConditionExpression="user_id = :u",
            ExpressionAttributeValues={":u": {"S": user_id}},
            ProjectionExpression="item_id, event_type, ts_ms",
            ScanIndexForward=False,
            Limit=limit,
            # Read-your-writes: an event accepted a moment ago must shape the next feed.
            ConsistentRead=True,
        )
        return [
            Interaction(item["item_id"]["S"], item["event_type"]["S"], int(item["ts_ms"]["N"]))
            for item in response["Items"]
        ]

    async def write(self, events: Sequence[Event], *, deadline_s: float) -> WriteOutcome:
        """Store events with BatchWriteItem, 25 per call, all calls in flight at once.

        The same event twice (same user, time and id) is one item, so duplicates inside a
        batch, which BatchWriteItem rejects, are sent once, and client retries are harmless.
        UnprocessedItems and failed calls are retried with capped exponential backoff and full
        jitter while the deadline allows; what is still unwritten then is reported failed.
        """
        end = time.monotonic() + deadline_s
        unique = list({_key(event): event for event in reversed(events)}.values())
        chunks = [unique[i : i + BATCH_WRITE_MAX] for i in range(0, len(unique), BATCH_WRITE_MAX)]
        failed_keys: set[tuple[str, str]] = set()
        for failed in await asyncio.gather(*(self._write_chunk(chunk, end) for chunk in chunks)):
            failed_keys.update(_key(event) for event in failed)
        outcome = WriteOutcome()
        for event in events:
            (outcome.failed if _key(event) in failed_keys else outcome.stored).append(event)
        return outcome

    async def _write_chunk(self, chunk: list[Event], end: float) -> list[Event]:
        """Write one chunk; returns the events still unwritten when the deadline came."""
        pending = {_key(event): event for event in chunk}
        attempt = 0
        while pending:
            remaining = end - time.monotonic()
            if remaining <= 0:
                break
            requests = [{"PutRequest": {"Item": self._item(e)}} for e in pending.values()]
            try:
                async with asyncio.timeout(remaining):
                    response = await self._client.batch_write_item(
                        RequestItems={self._table: requests}
                    )
            except CircuitOpen:
                break  # known to be down: fail now, not at the deadline
            except Exception:  # throttled, timed out, unreachable: retry the whole chunk
                pass
            else:
                unprocessed = response.get("UnprocessedItems", {}).get(self._table, [])
                still = {
                    (r["PutRequest"]["Item"]["user_id"]["S"], r["PutRequest"]["Item"]["sk"]["S"])
                    for r in unprocessed
                }
                pending = {key: event for key, event in pending.items() if key in still}
                if not pending:
                    break
            attempt += 1
            backoff = random.uniform(0, min(_BACKOFF_CAP_S, _BACKOFF_BASE_S * 2**attempt))
            await asyncio.sleep(min(backoff, max(0.0, end - time.monotonic())))
        return list(pending.values())

    def _item(self, event: Event) -> dict[str, dict[str, str]]:
        item = {
            "user_id": {"S": event.user_id},
            "sk": {"S": sort_key(event.ts_ms, event.event_id)},
            "item_id": {"S": event.item_id},
            "event_type": {"S": event.event_type},
            "ts_ms": {"N": str(event.ts_ms)},
            "event_id": {"S": event.event_id},
            TTL_ATTRIBUTE: {"N": str(event.ts_ms // 1000 + self._retention_s)},
        }
        if event.surface is not None:
            item["surface"] = {"S": event.surface}
        if event.model_version is not None:
            item["model_version"] = {"S": event.model_version}
        return item

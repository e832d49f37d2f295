"""POST /v1/events: a batch of user interactions, each validated on its own.

A malformed batch (not JSON, no `events` list, 0 or more than 500 events) is a 400 and
changes nothing. Within a well-formed batch, invalid events are rejected one by one with a
reason and the valid ones are stored. Only events DynamoDB confirmed are reported accepted;
when some could not be stored, the answer is a 503 with Retry-After (sending the same batch
again is safe: storage is idempotent by event id).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Annotated, Any, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.domain import ID_CHARSET_DESCRIPTION, ID_PATTERN, MAX_ID_LENGTH, MIN_TS_MS, Event

MAX_EVENTS: Final = 500
# Clocks drift; an event from further in the future than this is a bug, not a skew.
MAX_FUTURE_MS: Final = 5 * 60 * 1000

_ID = Annotated[
    str,
    Field(
        pattern=ID_PATTERN,
        max_length=MAX_ID_LENGTH,
        description=ID_CHARSET_DESCRIPTION,
    ),
]


class EventIn(BaseModel):
    """One interaction, as a client sends it."""

    model_config = ConfigDict(extra="forbid", strict=True)

    event_id: _ID = Field(description="Unique per event: a retried event is stored once.")
    user_id: _ID
    item_id: _ID
    event_type: str = Field(description="One of the configured event types.", examples=["view"])
    ts_ms: int = Field(description="When it happened, epoch milliseconds.", ge=MIN_TS_MS)
    surface: str | None = Field(
        default=None,
        max_length=64,
        description="Where it happened (attribution).",
        examples=["home_feed"],
    )
    model_version: str | None = Field(
        default=None,
        max_length=128,
        description="The model_version that showed the item.",
    )


def _per_event_schema() -> dict[str, Any]:
    # Each element is judged on its own and a bad one is listed in `rejected` of a 200, so any
    # JSON value is a well-formed element: the document says so, and names the valid shape in
    # the `Event` component.
    return {
        "description": "One interaction, any JSON value. Only one of the `Event` shape "
        "(components/schemas/Event) is stored; any other (a missing or extra field, a wrong "
        "type, not an object) is listed in `rejected` with the reason.",
    }


def event_schema() -> dict[str, Any]:
    """The `Event` component: what a storable element of `events` looks like."""
    schema = EventIn.model_json_schema()
    schema["title"] = "Event"
    return schema


class EventBatch(BaseModel):
    events: Annotated[
        # Any element: a non-object is rejected on its own by validate(), like any bad event.
        list[Any],
        Field(
            min_length=1,
            max_length=MAX_EVENTS,
            description=f"1 to {MAX_EVENTS} events; each is validated on its own.",
            # Each event is judged on its own (a bad one is listed in `rejected` of a 200), so
            # the document requires no field of an event: it states what a valid one holds.
            json_schema_extra={"items": _per_event_schema()},
        ),
    ]


@dataclass(slots=True)
class Rejection:
    index: int
    event_id: str | None
    reason: str


@dataclass(slots=True)
class EventsResult:
    # Ids of the events stored (duplicates of one event each listed).
    accepted: list[str] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    # Ids of valid events that could not be stored (503 only): send them again.
    failed: list[str] = field(default_factory=list)


def validate(
    raw_events: list[Any], event_types: frozenset[str], now_ms: int | None = None
) -> tuple[list[Event], list[Rejection]]:
    now_ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    valid: list[Event] = []
    rejected: list[Rejection] = []
    for index, raw in enumerate(raw_events):
        raw_id = raw.get("event_id") if isinstance(raw, dict) else None
        event_id = raw_id if isinstance(raw_id, str) else None
        try:
            event = EventIn.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "event"
            rejected.append(Rejection(index, event_id, f"{where}: {first['msg']}"))
            continue
        if event.event_type not in event_types:
            allowed = ", ".join(sorted(event_types))
            reason = f"event_type: {event.event_type[:40]!r} is not one of {allowed}"
            rejected.append(Rejection(index, event_id, reason))
            continue
        if event.ts_ms > now_ms + MAX_FUTURE_MS:
            rejected.append(Rejection(index, event_id, "ts_ms: more than 5 minutes in the future"))
            continue
        valid.append(
            Event(
                event.event_id,
                event.user_id,
                event.item_id,
                event.event_type,
                event.ts_ms,
                event.surface,
                event.model_version,
            )
        )
    return valid, rejected

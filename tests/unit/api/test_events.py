from typing import Any

from app.api.events import MAX_FUTURE_MS, validate
from app.domain import EVENT_TYPE_NAMES, MIN_TS_MS

NOW = 1_800_000_000_000


def event(**overrides: Any) -> dict[str, Any]:
    base = {"event_id": "e1", "user_id": "u1", "item_id": "i1", "event_type": "view", "ts_ms": NOW}
    return base | overrides


def reasons(raw: list[dict[str, Any]]) -> list[tuple[int, str | None, str]]:
    _, rejected = validate(raw, EVENT_TYPE_NAMES, now_ms=NOW)
    return [(r.index, r.event_id, r.reason) for r in rejected]


def test_valid_events_become_events_with_context() -> None:
    valid, rejected = validate(
        [event(), event(event_id="e2", surface="home", model_version="nb-1")],
        EVENT_TYPE_NAMES,
        now_ms=NOW,
    )
    assert rejected == []
    assert [(e.event_id, e.surface, e.model_version) for e in valid] == [
        ("e1", None, None),
        ("e2", "home", "nb-1"),
    ]


def test_each_invalid_event_is_rejected_with_its_own_reason() -> None:
    got = reasons(
        [
            event(),
            event(event_id="e2", event_type="share"),
            event(event_id="e3", ts_ms=MIN_TS_MS - 1),
            event(event_id="e4", ts_ms=NOW + MAX_FUTURE_MS + 1),
            event(event_id="e5", user_id="bad id"),
            event(event_id="e6", ts_ms="1800000000000"),  # a string is not an integer
            event(event_id="e7", ts_ms=1.8e12),
            {"event_id": "e8"},
            event(event_id="e9", colour="red"),
            "not an object",  # type: ignore[list-item]
        ]
    )
    assert [(index, event_id) for index, event_id, _ in got] == [
        (1, "e2"), (2, "e3"), (3, "e4"), (4, "e5"), (5, "e6"), (6, "e7"), (7, "e8"), (8, "e9"),
        (9, None),
    ]  # fmt: skip
    text = dict((index, reason) for index, _, reason in got)
    assert "event_type" in text[1] and "share" in text[1]
    assert text[2].startswith("ts_ms") and "future" in text[3]
    assert text[4].startswith("user_id")
    assert text[5].startswith("ts_ms") and text[6].startswith("ts_ms")
    assert "user_id" in text[7] and "colour" in text[8]


def test_only_the_configured_event_types_are_accepted() -> None:
    valid, rejected = validate([event(event_type="purchase")], frozenset({"view"}), now_ms=NOW)
    assert valid == [] and "not one of view" in rejected[0].reason

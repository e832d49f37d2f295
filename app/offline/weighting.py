"""How much one interaction counts in a build: its event type's weight times a recency factor.

`weight = event_weights[event_type] * 2 ** -(age / half_life)`, with recency off by default
(`half_life_ms=None`: every event counts fully, whatever the log's time span). When on, the
age is measured from a reference the builder knows before it counts: each user's own newest
event for co-occurrence (`newest_by_user`), the log's newest event for popularity. Ages beyond
`MAX_HALF_LIVES` keep the floor weight `2 ** -MAX_HALF_LIVES`, so no weight overflows or
underflows, whatever the timestamps (a log from 1970 on).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

from app.domain import DEFAULT_EVENT_WEIGHTS, MAX_HALF_LIVES, EventType
from app.offline.formats import InteractionRow

__all__ = [
    "DAY_MS",
    "DEFAULT_EVENT_WEIGHTS",
    "MAX_HALF_LIVES",
    "Weighting",
    "newest_by_user",
    "newest_ts",
    "recency",
    "replayable",
]

DAY_MS: Final = 86_400_000


@dataclass(frozen=True, slots=True)
class Weighting:
    """Event-type weights and the recency half-life (None: no recency decay)."""

    event_weights: Mapping[EventType, float] = field(default_factory=lambda: DEFAULT_EVENT_WEIGHTS)
    half_life_ms: float | None = None

    def __post_init__(self) -> None:
        missing = [e.value for e in EventType if e not in self.event_weights]
        if missing:
            raise ValueError(f"event_weights lacks {', '.join(missing)}")
        for event, weight in self.event_weights.items():
            if not (math.isfinite(weight) and weight > 0):
                raise ValueError(f"event weight of {event.value} must be > 0, got {weight}")
        if self.half_life_ms is not None and not (
            math.isfinite(self.half_life_ms) and self.half_life_ms > 0
        ):
            raise ValueError(f"half_life_ms must be > 0 or None, got {self.half_life_ms}")

    @property
    def decays(self) -> bool:
        return self.half_life_ms is not None

    def type_weights(self) -> dict[EventType, float]:
        """A plain dict for hot loops (also found by the plain string value)."""
        return {event: float(self.event_weights[event]) for event in EventType}

    def inv_half_life(self) -> float:
        return 0.0 if self.half_life_ms is None else 1.0 / self.half_life_ms


def recency(age_ms: int, inv_half_life: float) -> float:
    """`2 ** -(age / half_life)`, floored at MAX_HALF_LIVES; an age below 0 counts as 0."""
    return math.exp2(-min(max(age_ms, 0) * inv_half_life, MAX_HALF_LIVES))


def newest_by_user(rows: Iterable[InteractionRow]) -> dict[str, int]:
    """Each user's newest timestamp: the reference of per-user recency (a first pass)."""
    newest: dict[str, int] = {}
    get = newest.get
    for user, _item, _event, ts in rows:
        if ts > get(user, -1):
            newest[user] = ts  # noqa: PERF403 (a running maximum, not a mapping)
    return newest


def newest_ts(rows: Iterable[InteractionRow]) -> int | None:
    """The log's newest timestamp (None for an empty log)."""
    return max((ts for _user, _item, _event, ts in rows), default=None)


def replayable(rows: Iterable[InteractionRow]) -> Iterable[InteractionRow]:
    """`rows` in a form that can be read twice: itself, unless it is a one-shot iterator
    (a generator), which is read into memory. Pass a list or an `InteractionLog` to stream."""
    return list(rows) if iter(rows) is rows else rows

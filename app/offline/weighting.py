"""How much one interaction counts: its event type's weight times a recency decay.

`weight = event_weights[event_type] * 2 ** -((newest_ts - ts) / half_life)`, `newest_ts`
being the newest interaction of the log. Co-occurrence and popularity use the same rule.

Streaming: `newest_ts` is unknown until the end, so builders weigh each event against a
fixed reference (`Decay.ref_ts`, the first timestamp seen): `2 ** ((ts - ref) / half_life)`,
and multiply by `Decay.to_newest()` at the end. Only ratios between events matter until
then. When an event is more than `Decay.REBASE_HALF_LIVES` half-lives newer than the
reference, the builder moves the reference forward and rescales what it has summed
(`Decay.rebase`), so nothing overflows. An event ~1000 half-lives older than the newest
(38 years at 14 days) weighs nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from app.domain import DEFAULT_EVENT_WEIGHTS, EventType

__all__ = ["DAY_MS", "DEFAULT_EVENT_WEIGHTS", "DEFAULT_HALF_LIFE_MS", "Decay", "Weighting"]

DAY_MS: Final = 86_400_000
DEFAULT_HALF_LIFE_MS: Final = 14 * DAY_MS


@dataclass(frozen=True, slots=True)
class Weighting:
    """Event-type weights and the recency half-life (None: no decay)."""

    event_weights: Mapping[EventType, float] = field(default_factory=lambda: DEFAULT_EVENT_WEIGHTS)
    half_life_ms: float | None = DEFAULT_HALF_LIFE_MS

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

    def type_weights(self) -> dict[EventType, float]:
        """A plain dict for hot loops (also found by the plain string value)."""
        return {event: float(self.event_weights[event]) for event in EventType}


class Decay:
    """Exponential recency decay against a movable reference time (see the module doc)."""

    REBASE_HALF_LIVES: Final = 512.0

    __slots__ = ("inv_half_life", "newest_ts", "ref_ts")

    def __init__(self, half_life_ms: float | None) -> None:
        self.inv_half_life = 0.0 if half_life_ms is None else 1.0 / half_life_ms
        self.ref_ts: int | None = None
        self.newest_ts: int | None = None

    def rebase(self, ts_ms: int) -> float:
        """Moves the reference to `ts_ms`; returns the factor to multiply sums by."""
        old = ts_ms if self.ref_ts is None else self.ref_ts
        self.ref_ts = ts_ms
        return math.exp2((old - ts_ms) * self.inv_half_life)

    def to_newest(self) -> float:
        """Factor turning reference-relative sums into newest-relative ones."""
        if self.ref_ts is None or self.newest_ts is None:
            return 1.0
        return math.exp2((self.ref_ts - self.newest_ts) * self.inv_half_life)

"""Value types of the ranking core."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, NamedTuple

# Where an item on a page came from, as reported in each item's `source`.
SOURCE_PERSONALIZED: Final = "personalized"
SOURCE_SIMILAR: Final = "similar"
SOURCE_POPULAR: Final = "popular"


@dataclass(frozen=True, slots=True)
class ScoredList:
    """An immutable ranked list: a neighbour list or a popular list, best first."""

    item_ids: tuple[str, ...]
    scores: tuple[float, ...]

    def __len__(self) -> int:
        return len(self.item_ids)


EMPTY_LIST: Final = ScoredList((), ())


class Scored(NamedTuple):
    """A candidate for a page: an item, its score and the path that produced it.

    Immutable (the popular fill's candidates are built once and shared by every request) and
    cheap to build: a request builds one per neighbour or top candidate, 45 to 80 of them,
    and a NamedTuple builds in half a frozen slotted dataclass's time (docs/performance.md)."""

    item_id: str
    score: float
    source: str
    # For popular candidates: the segment list they came from (`category:bikes`...). When the
    # catalog is unavailable, segment membership is the only evidence that a filter holds.
    segment: str | None = None

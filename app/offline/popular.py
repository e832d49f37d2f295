"""Popular lists per segment: event-weighted interaction counts.

An item's popularity is the sum of its events' weights (`app.offline.weighting`: view 1
... purchase 8), so a score reads as "views' worth". With a recency half-life, each event
is also weighed by its age before the log's newest event (floored, never zero). Segments
are `global`, `category:<c>` and `region:<r>` from the catalog; each keeps its best `top_n`
items (default 200), score descending, ties by id. Only active catalog items are listed:
inactive ones and items missing from the catalog (deleted listings, or a stale catalog) are
left out and counted. A segment holds fewer than `top_n` items only when fewer eligible
items were interacted with.

Memory: one float per item seen, plus the catalog mapping and segments × 2·top_n.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Final

from app.domain import (
    GLOBAL_SEGMENT,
    CatalogItem,
    category_segment,
    is_valid_segment,
    region_segment,
)
from app.offline._gc import paused_gc
from app.offline.formats import (
    InteractionRow,
    PathLike,
    ReadStats,
    read_catalog,
    read_interactions,
    write_popular,
)
from app.offline.topk import ScoredLists, iter_rows, top_k_popular
from app.offline.weighting import Weighting, newest_ts, recency, replayable

__all__ = [
    "DEFAULT_TOP_N",
    "PopularBuild",
    "PopularConfig",
    "PopularityCounter",
    "build_popular_file",
    "item_popularity",
    "popular_lists",
    "write_popular_csv",
]


DEFAULT_TOP_N: Final = 200


@dataclass(frozen=True, slots=True)
class PopularConfig:
    top_n: int = DEFAULT_TOP_N
    weighting: Weighting = field(default_factory=Weighting)

    def __post_init__(self) -> None:
        if self.top_n < 1:
            raise ValueError(f"top_n must be >= 1, got {self.top_n}")


class PopularityCounter:
    """Streams interaction rows into per-item weighted counts.

    With recency on, `newest_ts` (the log's newest timestamp: a first pass) is the reference.
    """

    def __init__(self, weighting: Weighting | None = None, *, newest_ts: int | None = None) -> None:
        weighting = weighting if weighting is not None else Weighting()
        if weighting.decays and newest_ts is None:
            raise ValueError("recency needs the log's newest timestamp (newest_ts)")
        self._decays = weighting.decays
        self._inv_half_life = weighting.inv_half_life()
        self._newest_ts = newest_ts
        self._type_weights = weighting.type_weights()
        self._counts: dict[str, float] = {}
        self.interactions = 0

    def add(self, rows: Iterable[InteractionRow]) -> None:
        counts = self._counts
        type_weights = self._type_weights
        interactions = 0
        try:
            if not self._decays:
                for _user, item, event, _ts in rows:
                    interactions += 1
                    counts[item] = counts.get(item, 0.0) + type_weights[event]
                return
            inv_half_life = self._inv_half_life
            newest = self._newest_ts or 0
            for _user, item, event, ts in rows:
                interactions += 1
                weight = type_weights[event] * recency(newest - ts, inv_half_life)
                counts[item] = counts.get(item, 0.0) + weight
        finally:
            self.interactions += interactions

    def scores(self) -> dict[str, float]:
        """item → popularity."""
        return dict(self._counts)


def item_popularity(
    rows: Iterable[InteractionRow], weighting: Weighting | None = None
) -> dict[str, float]:
    weighting = weighting if weighting is not None else Weighting()
    newest = None
    if weighting.decays:
        rows = replayable(rows)
        newest = newest_ts(rows) or 0  # an empty log has nothing to weigh
    counter = PopularityCounter(weighting, newest_ts=newest)
    with paused_gc():
        counter.add(rows)
    return counter.scores()


@dataclass(slots=True)
class _Eligibility:
    inactive: int = 0
    unknown: int = 0


def _segment_rows(
    popularity: Mapping[str, float], catalog: Mapping[str, CatalogItem], seen: _Eligibility
) -> Iterator[tuple[str, str, float]]:
    for item_id, score in popularity.items():
        item = catalog.get(item_id)
        if item is None:
            seen.unknown += 1
            continue
        if not item.active:
            seen.inactive += 1
            continue
        yield GLOBAL_SEGMENT, item_id, score
        if item.category is not None:
            segment = category_segment(item.category)
            if is_valid_segment(segment):
                yield segment, item_id, score
        if item.region is not None:
            segment = region_segment(item.region)
            if is_valid_segment(segment):
                yield segment, item_id, score


def popular_lists(
    popularity: Mapping[str, float],
    catalog: Mapping[str, CatalogItem],
    top_n: int = DEFAULT_TOP_N,
) -> ScoredLists:
    """segment → its best `top_n` active catalog items `(item_id, score)`, best first."""
    return top_k_popular(_segment_rows(popularity, catalog, _Eligibility()), top_n)


def write_popular_csv(path: PathLike, lists: ScoredLists) -> int:
    """Writes popular lists as a popular CSV (segments sorted); returns the row count."""
    return write_popular(path, iter_rows(lists))


@dataclass(frozen=True, slots=True)
class PopularBuild:
    """What `build_popular_file` read, computed and wrote."""

    interactions: ReadStats
    catalog: ReadStats
    items_ranked: int
    excluded_inactive: int
    excluded_unknown: int
    segments: int
    rows_written: int


def build_popular_file(
    interactions_path: PathLike,
    catalog_path: PathLike,
    popular_path: PathLike,
    config: PopularConfig | None = None,
    *,
    skip_invalid: bool = False,
) -> PopularBuild:
    """Interactions CSV + catalog JSONL in, popular CSV out."""
    config = config if config is not None else PopularConfig()
    catalog_stats = ReadStats()
    read = ReadStats()
    seen = _Eligibility()
    with paused_gc():
        catalog = {
            item.item_id: item
            for item in read_catalog(catalog_path, skip_invalid=skip_invalid, stats=catalog_stats)
        }
        newest = None
        if config.weighting.decays:
            newest = newest_ts(read_interactions(interactions_path, skip_invalid=True)) or 0
        counter = PopularityCounter(config.weighting, newest_ts=newest)
        counter.add(read_interactions(interactions_path, skip_invalid=skip_invalid, stats=read))
        popularity = counter.scores()
        lists = top_k_popular(_segment_rows(popularity, catalog, seen), config.top_n)
        written = write_popular_csv(popular_path, lists)
    ranked = len(popularity) - seen.inactive - seen.unknown
    return PopularBuild(
        read, catalog_stats, ranked, seen.inactive, seen.unknown, len(lists), written
    )

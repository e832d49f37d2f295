"""Popular lists per segment: recency-decayed, event-weighted interaction counts.

An item's popularity is the sum of its events' weights (`app.offline.weighting`: view 1
... purchase 8, half-life 14 days before the newest event of the log), so a score reads
as "fresh views' worth". Segments are `global`, `category:<c>` and `region:<r>` from the
catalog; each keeps its best `top_n` items (default 200), score descending, ties by id.
Only active catalog items are listed: inactive ones and items missing from the catalog
(deleted listings, or a stale catalog) are left out and counted. A segment holds fewer
than `top_n` items only when fewer eligible items were interacted with.

Memory: one float per item seen, plus the catalog mapping and segments × 2·top_n.
"""

from __future__ import annotations

import math
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
from app.offline.weighting import Decay, Weighting

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
    """Streams interaction rows into per-item decayed weighted counts."""

    def __init__(self, weighting: Weighting | None = None) -> None:
        weighting = weighting if weighting is not None else Weighting()
        self._decay = Decay(weighting.half_life_ms)
        self._type_weights = weighting.type_weights()
        self._counts: dict[str, float] = {}
        self.interactions = 0

    def add(self, rows: Iterable[InteractionRow]) -> None:
        decay = self._decay
        counts = self._counts
        type_weights = self._type_weights
        inv_half_life = decay.inv_half_life
        rebase_at = Decay.REBASE_HALF_LIVES
        exp2 = math.exp2
        ref = decay.ref_ts
        newest = decay.newest_ts
        interactions = 0
        try:
            for _user, item, event, ts in rows:
                interactions += 1
                if ref is None or newest is None:
                    decay.rebase(ts)
                    ref = newest = ts
                elif ts > newest:
                    newest = ts
                exponent = (ts - ref) * inv_half_life
                if exponent > rebase_at:
                    factor = decay.rebase(ts)
                    for key in counts:
                        counts[key] *= factor
                    ref = ts
                    exponent = 0.0
                counts[item] = counts.get(item, 0.0) + type_weights[event] * exp2(exponent)
        finally:
            decay.newest_ts = newest
            self.interactions += interactions

    def scores(self) -> dict[str, float]:
        """item → popularity relative to the newest event seen."""
        factor = self._decay.to_newest()
        return {item: count * factor for item, count in self._counts.items()}


def item_popularity(
    rows: Iterable[InteractionRow], weighting: Weighting | None = None
) -> dict[str, float]:
    counter = PopularityCounter(weighting)
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
        counter = PopularityCounter(config.weighting)
        counter.add(read_interactions(interactions_path, skip_invalid=skip_invalid, stats=read))
        popularity = counter.scores()
        lists = top_k_popular(_segment_rows(popularity, catalog, seen), config.top_n)
        written = write_popular_csv(popular_path, lists)
    ranked = len(popularity) - seen.inactive - seen.unknown
    return PopularBuild(
        read, catalog_stats, ranked, seen.inactive, seen.unknown, len(lists), written
    )

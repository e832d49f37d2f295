"""Neighbour lists loaded before a model snapshot serves.

The neighbour cache is keyed by version and item, so a new process, and every process at a
neighbours-version switch, starts with none of the new version's lists: each request's seeds
go to ScyllaDB until the working set is cached again. In the first 40 s after a start the
feed's p99 under the Locust mix was 170 ms against 42 to 92 ms after (docs/loadtest.md).
Before a new snapshot becomes current, this reads the new version's lists of

1. the items the previous version's cache holds, most recently used first (at a switch: the
   working set itself), then
2. the popular lists' items (at start-up the only hint), the global list's first,

a few hundred keys per hop. At start-up readiness waits for it; at a switch the previous
version serves meanwhile. Bounded by an item count and a time budget; a failure only leaves
the cache colder.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from app.domain import GLOBAL_SEGMENT
from app.model_versions import ModelSnapshot
from app.ranking.page import PopularCandidates
from app.ranking.types import ScoredList
from app.sources.cache import BatchCache

log = logging.getLogger(__name__)

# Keys per cache lookup: a few IN queries in one hop, each well inside the driver's timeout.
WARMUP_BATCH = 200


def popular_item_ids(popular: PopularCandidates, limit: int) -> list[str]:
    """Up to `limit` distinct items of the popular lists, rank by rank across segments (every
    segment's first, then every segment's second, ...): the global list first, then the
    others in name order."""
    ids: dict[str, None] = {}
    order = sorted(popular, key=lambda segment: (segment != GLOBAL_SEGMENT, segment))
    lists = [popular[segment] for segment in order]
    for rank in range(max((len(ranked) for ranked in lists), default=0)):
        for ranked in lists:
            if rank < len(ranked):
                ids[ranked[rank].item_id] = None
                if len(ids) == limit:
                    return list(ids)
    return list(ids)


def _batches(ids: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


class NeighbourWarmer:
    """Loads a new snapshot's neighbour lists into the cache (`ModelTracker`'s `prepare`)."""

    def __init__(
        self,
        neighbours: BatchCache[ScoredList],
        *,
        items: int,
        budget_s: float,
        batch: int = WARMUP_BATCH,
    ) -> None:
        self._neighbours = neighbours
        self._items = items
        self._budget_s = budget_s
        self._batch = batch

    def item_ids(self, snapshot: ModelSnapshot, previous: ModelSnapshot | None) -> list[str]:
        """What to load: the previous version's working set, then the popular items."""
        ids: dict[str, None] = {}
        previous_version = previous.neighbours_version if previous is not None else None
        if previous_version is not None and previous_version != snapshot.neighbours_version:
            ids.update(dict.fromkeys(self._neighbours.recent_keys(previous_version, self._items)))
        for item_id in popular_item_ids(snapshot.popular, self._items):
            if len(ids) >= self._items:
                break
            ids[item_id] = None
        return list(ids)

    async def __call__(self, snapshot: ModelSnapshot, previous: ModelSnapshot | None) -> int:
        """Returns how many of the items' lists the cache holds (or knows absent) afterwards."""
        version = snapshot.neighbours_version
        if version is None or self._items <= 0:
            return 0
        if previous is not None and previous.neighbours_version == version:
            return 0  # only the popular version changed: its items' lists are the same
        ids = self.item_ids(snapshot, previous)
        started = time.monotonic()
        end = started + self._budget_s
        loaded = 0
        for batch in _batches(ids, self._batch):
            remaining = end - time.monotonic()
            if remaining <= 0:
                break
            try:
                result = await self._neighbours.get_many(version, batch, timeout=remaining)
            except Exception as exc:
                log.warning("neighbour warm-up failed", extra={"error": repr(exc)})
                break
            # A read that timed out (a cold partition) or failed leaves those keys to be read
            # on demand; the next batch may fare better, and the budget bounds the whole.
            if result.complete:
                loaded += len(batch)
        log.info(
            "neighbour cache warmed",
            extra={
                "model_version": version,
                "warmup_items": loaded,
                "warmup_asked": len(ids),
                "warmup_ms": round((time.monotonic() - started) * 1000),
            },
        )
        return loaded

"""Item-to-item neighbours from an interaction log: "consumed one after another".

One pass over the log (two with recency on); rows need not be sorted globally, but each
user's rows should be roughly chronological (small disorder is tolerated).

Window
    Per user the builder keeps the last `window` (default 20) *distinct* items. A new
    event pairs with each of them, the most recent with weight 1, the one before with
    `window_decay` (default 0.9), then 0.81, ... An event on an item already in the window
    (a favorite after a view) pairs with the others again and moves the item to the
    front, keeping the larger of the two event weights. Pairs with the item itself are
    ignored. With `session_gap_ms` set, a pause longer than that (|ts - newest ts of the
    window|, so a slightly late row still joins) empties the window: only items of one
    visit pair up. Off by default: on both evaluation datasets (docs/quality.md) pairs
    across visits helped.

Weights
    An event weighs `event_weights[type]` (view 1, favorite 3, message 4, add_to_cart 5,
    purchase 8), times a recency factor when `weighting.half_life_ms` is set, measured from
    the *user's own* newest event (`app.offline.weighting`), so a log spanning decades
    keeps all its users. A pair (a, b) adds `sqrt(w_a * w_b) * position weight` to both
    C(a, b) and C(b, a): the geometric mean keeps a pair in the same unit as a single
    event, so C and W below are comparable. W(a) is the sum of a's event weights.

Score
    `score(a, b) = C(a, b) / (W(a) ** alpha * W(b) ** (1 - alpha) + shrinkage)`.
    `alpha` 0.5 is the cosine: symmetric, about 1 for two items only ever seen together.
    `alpha` 1 is P(b | a): it favours popular neighbours. The default, 0.8, leans that way:
    it scored best on the demo and close to the cosine on MovieLens (docs/quality.md). `shrinkage`
    (default 1.0, one view) damps pairs of rarely seen items, whose score would otherwise
    be near 1 from a single co-view. Only items with at least one neighbour appear in the
    result; each keeps its best `k` (default 50), score descending, ties by id. Every score
    is finite and >= 0: W >= 2 ** -64 per event and C is a sum of finite terms.

Memory (independent of the number of rows)
    - W: one float per item (items are numbered, ids stored once);
    - candidates: per item a dict `other item → C`, cut back to its best `max_candidates`
      (default 200) as soon as it exceeds `2 * max_candidates`, so at most
      `items * 2 * max_candidates` entries overall;
    - windows: per user the newest time and at most `window` (item, weight) entries.

    The cut ranks by `C(a, b) / W(b) ** (1 - alpha)`, the final score's order for a fixed
    a, and forgets what it drops: a dropped pair seen again restarts from 0. So a partner
    whose co-occurrences are spread thin among many one-off partners of a very popular
    item can be lost; raise `max_candidates` for more exactness.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from app.offline._gc import paused_gc
from app.offline.formats import (
    InteractionLog,
    InteractionRow,
    PathLike,
    ReadStats,
    write_neighbours,
)
from app.offline.topk import ScoredLists, iter_rows
from app.offline.weighting import MAX_HALF_LIVES, Weighting, newest_by_user, replayable

__all__ = [
    "CooccurrenceBuilder",
    "CooccurrenceConfig",
    "CooccurrenceStats",
    "NeighboursBuild",
    "build_neighbours",
    "build_neighbours_file",
    "write_neighbours_csv",
]


@dataclass(frozen=True, slots=True)
class CooccurrenceConfig:
    k: int = 50
    """Neighbours kept per item."""
    window: int = 20
    """Previous distinct items a new event pairs with."""
    window_decay: float = 0.9
    """Weight of the i-th previous item is `window_decay ** (i - 1)`."""
    session_gap_ms: int | None = None
    """A longer pause empties the window (None: the window spans visits)."""
    alpha: float = 0.8
    """Normalisation: 0.5 cosine, 1 P(b | a) (see the module doc)."""
    max_candidates: int = 200
    """Candidates kept per item after a cut; a cut happens past twice as many."""
    shrinkage: float = 1.0
    weighting: Weighting = field(default_factory=Weighting)

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ValueError(f"k must be >= 1, got {self.k}")
        if self.session_gap_ms is not None and self.session_gap_ms < 0:
            raise ValueError(f"session_gap_ms must be >= 0, got {self.session_gap_ms}")
        if self.window < 1:
            raise ValueError(f"window must be >= 1, got {self.window}")
        if not 0 < self.window_decay <= 1:
            raise ValueError(f"window_decay must be in (0, 1], got {self.window_decay}")
        if not 0 <= self.alpha <= 1:
            raise ValueError(f"alpha must be in [0, 1], got {self.alpha}")
        if self.max_candidates < self.k:
            raise ValueError(f"max_candidates ({self.max_candidates}) must be >= k ({self.k})")
        if not (math.isfinite(self.shrinkage) and self.shrinkage >= 0):
            raise ValueError(f"shrinkage must be >= 0, got {self.shrinkage}")


@dataclass(slots=True)
class CooccurrenceStats:
    interactions: int = 0
    windows: int = 0
    """Windows started: one per user, plus one per pause longer than the session gap."""
    pair_updates: int = 0
    """Co-occurrences counted (each adds to both directions)."""
    cuts: int = 0
    """Times a candidate dict was cut back to `max_candidates`."""


class _Window:
    """A user's newest time and last distinct items (oldest first) with their weights."""

    __slots__ = ("items", "last_ts", "weights")

    def __init__(self, ts_ms: int, item: int, weight: float) -> None:
        self.last_ts = ts_ms
        self.items = [item]
        self.weights = [weight]


class CooccurrenceBuilder:
    """Accumulates co-occurrences from interaction rows; `result()` gives the neighbours.

    Items are numbered in order of appearance; per item number the builder keeps W
    (`_occurrence`) and the candidate dict `other number → C` (`_candidates`). With recency
    on, `newest_by_user` (`app.offline.weighting.newest_by_user` of the same rows) gives
    each user's reference time.
    """

    def __init__(
        self,
        config: CooccurrenceConfig | None = None,
        *,
        newest_by_user: Mapping[str, int] | None = None,
    ) -> None:
        self.config = config if config is not None else CooccurrenceConfig()
        if self.config.weighting.decays and newest_by_user is None:
            raise ValueError("recency needs each user's newest timestamp (newest_by_user)")
        self.stats = CooccurrenceStats()
        self._newest_by_user = newest_by_user or {}
        self._type_weights = self.config.weighting.type_weights()
        self._numbers: dict[str, int] = {}
        self._ids: list[str] = []
        self._occurrence: list[float] = []
        self._candidates: list[dict[int, float]] = []
        self._windows: dict[str, _Window] = {}

    @property
    def items(self) -> int:
        return len(self._ids)

    @property
    def users(self) -> int:
        return len(self._windows)

    def largest_candidate_count(self) -> int:
        """Size of the largest per-item candidate dict (never above 2 * max_candidates)."""
        return max(map(len, self._candidates), default=0)

    def add(self, rows: Iterable[InteractionRow]) -> None:
        """Consumes rows; may be called several times (the log in parts, in order)."""
        config = self.config
        numbers = self._numbers
        ids = self._ids
        occurrence = self._occurrence
        candidates = self._candidates
        windows = self._windows
        type_weights = self._type_weights
        decays = config.weighting.decays
        inv_half_life = config.weighting.inv_half_life()
        newest_of = self._newest_by_user
        gap = config.session_gap_ms
        window = config.window
        position_weights = [config.window_decay**i for i in range(window)]
        limit = 2 * config.max_candidates
        cut = self._cut
        sqrt = math.sqrt
        exp2 = math.exp2
        interactions = pair_updates = new_windows = 0
        try:
            for user, item_id, event, ts in rows:
                interactions += 1
                weight = type_weights[event]
                if decays:
                    age = newest_of.get(user, ts) - ts
                    if age > 0:
                        weight *= exp2(-min(age * inv_half_life, MAX_HALF_LIVES))
                item = numbers.get(item_id)
                if item is None:
                    item = numbers[item_id] = len(ids)
                    ids.append(item_id)
                    occurrence.append(weight)
                    candidates.append({})
                else:
                    occurrence[item] += weight

                current = windows.get(user)
                if current is None:
                    windows[user] = _Window(ts, item, weight)
                    new_windows += 1
                    continue
                last_ts = current.last_ts
                if gap is not None and (ts - last_ts > gap or last_ts - ts > gap):
                    current.last_ts = ts
                    current.items = [item]
                    current.weights = [weight]
                    new_windows += 1
                    continue
                if ts > last_ts:
                    current.last_ts = ts

                items = current.items
                weights = current.weights
                kept_weight = weight
                if item in items:
                    index = items.index(item)
                    kept_weight = max(weight, weights[index])
                    del items[index], weights[index]
                mine = candidates[item]
                for other, other_weight, position_weight in zip(
                    reversed(items), reversed(weights), position_weights, strict=False
                ):
                    pair = sqrt(weight * other_weight) * position_weight
                    mine[other] = mine.get(other, 0.0) + pair
                    if len(mine) > limit:
                        cut(mine)
                    theirs = candidates[other]
                    theirs[item] = theirs.get(item, 0.0) + pair
                    if len(theirs) > limit:
                        cut(theirs)
                pair_updates += len(items)
                items.append(item)
                weights.append(kept_weight)
                if len(items) > window:
                    del items[0], weights[0]
        finally:
            self.stats.interactions += interactions
            self.stats.pair_updates += pair_updates
            self.stats.windows += new_windows

    def _cut(self, scores: dict[int, float]) -> None:
        """Keeps the best `max_candidates` of one item's candidates, in place."""
        occurrence = self._occurrence
        exponent = 1.0 - self.config.alpha
        kept = heapq.nlargest(
            self.config.max_candidates,
            scores.items(),
            key=lambda entry: entry[1] / occurrence[entry[0]] ** exponent,
        )
        scores.clear()
        scores.update(kept)
        self.stats.cuts += 1

    def result(self) -> ScoredLists:
        """item → its best `k` neighbours `(similar_item_id, score)`, best first."""
        alpha = self.config.alpha
        shrinkage = self.config.shrinkage
        own = [weight**alpha for weight in self._occurrence]
        theirs = [weight ** (1.0 - alpha) for weight in self._occurrence]
        ids = self._ids
        k = self.config.k
        neighbours: ScoredLists = {}
        for item, scores in enumerate(self._candidates):
            if not scores:
                continue
            norm = own[item]
            ranked = sorted(
                (-together / (norm * theirs[other] + shrinkage), ids[other])
                for other, together in scores.items()
                if together > 0
            )
            if ranked:
                neighbours[ids[item]] = [(other, -negated) for negated, other in ranked[:k]]
        return neighbours


def build_neighbours(
    rows: Iterable[InteractionRow], config: CooccurrenceConfig | None = None
) -> ScoredLists:
    """item → best `k` co-occurring items, from interaction rows (see the module doc).

    With recency on, `rows` are read twice (`app.offline.weighting.replayable`)."""
    config = config if config is not None else CooccurrenceConfig()
    newest = None
    if config.weighting.decays:
        rows = replayable(rows)
        newest = newest_by_user(rows)
    builder = CooccurrenceBuilder(config, newest_by_user=newest)
    with paused_gc():
        builder.add(rows)
        return builder.result()


def write_neighbours_csv(path: PathLike, neighbours: ScoredLists) -> int:
    """Writes neighbour lists as a neighbours CSV (items sorted); returns the row count."""
    return write_neighbours(path, iter_rows(neighbours))


@dataclass(frozen=True, slots=True)
class NeighboursBuild:
    """What `build_neighbours_file` read, computed and wrote."""

    read: ReadStats
    items: int
    """Items with at least one neighbour."""
    rows_written: int


def build_neighbours_file(
    interactions_path: PathLike,
    neighbours_path: PathLike,
    config: CooccurrenceConfig | None = None,
    *,
    skip_invalid: bool = False,
) -> NeighboursBuild:
    """Interactions CSV in, neighbours CSV out (`.gz` either side as the paths say)."""
    log = InteractionLog(interactions_path, skip_invalid=skip_invalid)
    neighbours = build_neighbours(log, config)
    written = write_neighbours_csv(neighbours_path, neighbours)
    return NeighboursBuild(log.stats, len(neighbours), written)

"""Keep the best K entries per key from an unordered stream of scored rows.

`top_k_neighbours` (item → similar items) and `top_k_popular` (segment → items) share
one algorithm. Per key it keeps a dict `candidate → best score seen`: a repeated
(key, candidate) pair keeps its highest score. When the dict grows past 2·K it is cut
back to its best K, and the K-th score becomes a floor below which new candidates are
dropped at once. So memory is at most keys × 2·K entries whatever the number of rows,
and the result is exact: a candidate cut out already had K better ones, whose scores
can only grow.

Order is by score descending, ties by candidate id ascending: the same rows in any
order give the same lists.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Final, TypeAlias

__all__ = ["ScoredLists", "best_k", "iter_rows", "top_k_neighbours", "top_k_popular"]

ScoredLists: TypeAlias = dict[str, list[tuple[str, float]]]
"""key → [(candidate id, score)], best first."""

_NO_FLOOR: Final = float("-inf")


class _Best:
    """Candidates of one key: at most 2·K of them, and the floor set by the last cut."""

    __slots__ = ("floor", "scores")

    def __init__(self) -> None:
        self.scores: dict[str, float] = {}
        self.floor = _NO_FLOOR


def _rank_key(entry: tuple[str, float]) -> tuple[float, str]:
    return -entry[1], entry[0]


def best_k(scores: Mapping[str, float], k: int) -> list[tuple[str, float]]:
    """The K best `(candidate, score)`: score descending, then candidate ascending."""
    return sorted(scores.items(), key=_rank_key)[:k]


def _top_k(rows: Iterable[tuple[str, str, float]], k: int) -> ScoredLists:
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    limit = 2 * k
    table: dict[str, _Best] = {}
    for key, candidate, score in rows:
        best = table.get(key)
        if best is None:
            best = table[key] = _Best()
        scores = best.scores
        old = scores.get(candidate)
        if old is None:
            if score < best.floor:
                continue
            scores[candidate] = score
            if len(scores) > limit:
                kept = best_k(scores, k)
                best.scores = dict(kept)
                best.floor = kept[-1][1]
        elif score > old:
            scores[candidate] = score
    return {key: best_k(best.scores, k) for key, best in table.items()}


def top_k_neighbours(rows: Iterable[tuple[str, str, float]], k: int) -> ScoredLists:
    """item_id → its K best `(similar_item_id, score)` from `(item, similar, score)` rows."""
    return _top_k(rows, k)


def top_k_popular(rows: Iterable[tuple[str, str, float]], k: int) -> ScoredLists:
    """segment → its K best `(item_id, score)` from `(segment, item, score)` rows."""
    return _top_k(rows, k)


def iter_rows(lists: Mapping[str, Sequence[tuple[str, float]]]) -> Iterator[tuple[str, str, float]]:
    """Flattens lists back into `(key, candidate, score)` rows, keys sorted, lists in order."""
    for key in sorted(lists):
        for candidate, score in lists[key]:
            yield key, candidate, score

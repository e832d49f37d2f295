"""From a user's recent interactions to scored candidate items."""

from __future__ import annotations

import heapq
from collections.abc import Container, Mapping, Sequence

from app.domain import MAX_HALF_LIVES, Interaction
from app.ranking.types import SOURCE_PERSONALIZED, Scored, ScoredList


def seed_weights(
    interactions: Sequence[Interaction],
    *,
    event_weights: Mapping[str, float],
    half_life_ms: float,
    position_decay: float = 1.0,
) -> dict[str, float]:
    """Weight of each interacted item: event-type weight times recency, summed.

    `interactions` come newest first. Recency is measured from the user's own newest
    interaction, never from the clock, so a log from 1997 ranks as one from an hour ago. It
    has two parts: time, `0.5 ** (age / half_life)` (floored at MAX_HALF_LIVES), and order,
    `position_decay ** i` for the i-th newest interaction (1.0: order does not matter).
    A purchase counts more than a view; the last few actions count more than older ones.
    """
    if not interactions:
        return {}
    newest = max(interaction.ts_ms for interaction in interactions)
    weights: dict[str, float] = {}
    position_weight = 1.0
    for interaction in interactions:
        base = event_weights.get(interaction.event_type, 0.0)
        if base > 0.0:
            half_lives = min((newest - interaction.ts_ms) / half_life_ms, MAX_HALF_LIVES)
            weight = base * 0.5**half_lives * position_weight
            item_id = interaction.item_id
            weights[item_id] = weights.get(item_id, 0.0) + weight
        position_weight *= position_decay
    return weights


def strongest(seeds: Mapping[str, float], count: int) -> Mapping[str, float]:
    """The `count` heaviest seeds (ties by id): with recency decay, the seeds past them weigh
    too little to move a ranking, and each costs a neighbour list to read and merge."""
    if len(seeds) <= count:
        return seeds
    return dict(heapq.nsmallest(count, seeds.items(), key=lambda seed: (-seed[1], seed[0])))


def score_candidates(
    seeds: Mapping[str, float], neighbours: Mapping[str, ScoredList]
) -> dict[str, float]:
    """Sum over seed items of seed weight times similarity: the classic item-based score."""
    scores: dict[str, float] = {}
    get = scores.get
    for seed, weight in seeds.items():
        neighbour_list = neighbours.get(seed)
        if neighbour_list is None:
            continue
        for item_id, similarity in zip(neighbour_list.item_ids, neighbour_list.scores, strict=True):
            scores[item_id] = get(item_id, 0.0) + weight * similarity
    return scores


def blend(
    neighbour_scores: Mapping[str, float], vector_scores: Mapping[str, float], weight: float
) -> dict[str, float]:
    """One score from the two candidate sources, ranked as `(1 - weight) * n / max(n) +
    weight * v / max(v)`: each source scaled to its own best (their units differ: summed
    similarities, cosines), a candidate missing from one source getting 0 from it, negative
    cosines 0. Kept in the neighbour scores' unit (the same order, times a constant), so
    only the few vector candidates are touched, not the hundreds of neighbour ones."""
    positive = {item: score for item, score in vector_scores.items() if score > 0.0}
    if not positive or weight <= 0.0:
        return dict(neighbour_scores)
    top_n = max(neighbour_scores.values(), default=0.0)
    if weight >= 1.0 or top_n <= 0.0:
        return positive
    factor = weight / (1.0 - weight) * top_n / max(positive.values())
    blended = dict(neighbour_scores)
    get = blended.get
    for item, score in positive.items():
        blended[item] = get(item, 0.0) + score * factor
    return blended


def top_candidates(
    scores: Mapping[str, float],
    *,
    drop: Container[str],
    count: int,
    source: str = SOURCE_PERSONALIZED,
) -> list[Scored]:
    """The `count` best candidates not in `drop`, best first, ties broken by id for stable pages."""
    # Sorting the bare scores (floats: a fast C sort) gives the cut-off; only candidates at or
    # above it are paired with their ids and sorted. heapq.nsmallest, one Python-level step
    # per candidate, is slower (docs/performance.md).
    kept = [score for item_id, score in scores.items() if item_id not in drop]
    cutoff = float("-inf")
    if len(kept) > count > 0:
        kept.sort(reverse=True)
        cutoff = kept[count - 1]
    ranked = [
        (-score, item_id)
        for item_id, score in scores.items()
        if score >= cutoff and item_id not in drop
    ]
    ranked.sort()
    return [Scored(item_id, -negative, source) for negative, item_id in ranked[:count]]


def normalized(scores: Sequence[float]) -> list[float]:
    """Scale scores so the best is 1.0 (all zeros stay zeros)."""
    top = max(scores, default=0.0)
    if top <= 0.0:
        return [0.0 for _ in scores]
    return [score / top for score in scores]

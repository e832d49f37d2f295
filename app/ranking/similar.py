"""Item-to-item: a neighbour list, optionally reranked by region."""

from __future__ import annotations

from collections.abc import Container, Mapping

from app.domain import CatalogItem
from app.ranking.scoring import normalized
from app.ranking.types import SOURCE_SIMILAR, Scored, ScoredList


def similar_candidates(
    neighbours: ScoredList, *, drop: Container[str] = (), count: int | None = None
) -> list[Scored]:
    """The neighbours not in `drop`, best first; the first `count` of them if given."""
    candidates: list[Scored] = []
    if count is not None and count <= 0:
        return candidates
    for item_id, score in zip(neighbours.item_ids, neighbours.scores, strict=True):
        if item_id in drop:
            continue
        candidates.append(Scored(item_id, score, SOURCE_SIMILAR))
        if len(candidates) == count:
            break
    return candidates


def rerank_by_region(
    candidates: list[Scored],
    catalog: Mapping[str, CatalogItem],
    *,
    region: str,
    region_weight: float,
) -> list[Scored]:
    """Blend similarity with region match: `(1 - w) * similarity / best + w * [same region]`.

    Pure similarity ignores location; for a marketplace where buyers collect items, a close
    match in the buyer's region usually beats a slightly closer one far away. Items whose
    region is unknown (catalog unavailable) get no region bonus.
    """
    if not candidates:
        return candidates
    similarity = normalized([c.score for c in candidates])
    blended = []
    for candidate, sim in zip(candidates, similarity, strict=True):
        meta = catalog.get(candidate.item_id)
        match = 1.0 if meta is not None and meta.region == region else 0.0
        score = (1.0 - region_weight) * sim + region_weight * match
        blended.append(Scored(candidate.item_id, score, candidate.source, candidate.segment))
    blended.sort(key=lambda c: (-c.score, c.item_id))
    return blended

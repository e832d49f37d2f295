"""Activation gated by quality: score a candidate model version against the active one.

`recs load neighbours FILE --gate HOLDOUT.csv` and `recs versions activate MODEL VERSION
--gate HOLDOUT.csv` split the holdout log leave-last-out and serve each held-out user's feed
twice through the service's `Recommender`, reading the published versions from ScyllaDB as
the service does: once with the candidate, once with the active version (the other model
stays at its active version in both). The candidate is refused when its HR@10 is below the
active one's by more than `tolerance` (relative). A version with nothing active to compare to
passes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Final

from app.config import Settings
from app.domain import CatalogItem, Interaction
from app.embeddings import EmbeddingTable
from app.evaluation.protocols import Split
from app.evaluation.runner import MethodScores, OpenCatalog, feed_scores
from app.model_versions import EmbeddingLimits, ModelTracker
from app.ranking.types import ScoredList
from app.recommender import Recommender
from app.sources.base import BatchLookup, Lookup
from app.sources.embedded import InMemoryLookup
from app.sources.scylla import ScyllaStore

__all__ = ["GATE_K", "GateResult", "score_versions"]

GATE_K: Final = 10
# Offline reads may wait as long as the CLI's CQL timeout: a slow read must not score as a
# degraded (emptier) feed.
_OFFLINE_DEADLINE_MS: Final = 30_000


@dataclass(frozen=True, slots=True)
class GateResult:
    candidate: MethodScores
    active: MethodScores | None
    tolerance: float

    @property
    def passed(self) -> bool:
        if self.active is None:
            return True
        floor = self.active.metrics[GATE_K]["hr"] * (1.0 - self.tolerance)
        return self.candidate.metrics[GATE_K]["hr"] >= floor

    def lines(self) -> list[str]:
        out = [_line(self.candidate)]
        if self.active is not None:
            out.append(_line(self.active))
        verdict = "passes" if self.passed else "refused"
        out.append(f"gate: {verdict} (tolerance {self.tolerance:.1%} of the active HR@{GATE_K})")
        return out


def _line(scores: MethodScores) -> str:
    at = scores.metrics[GATE_K]
    return (
        f"  {scores.name}: hr@{GATE_K} {at['hr']:.4f}  ndcg@{GATE_K} {at['ndcg']:.4f}  "
        f"mrr@{GATE_K} {at['mrr']:.4f}  ({scores.users} users)"
    )


class _PinnedVersions:
    """A `ModelStore` whose active versions are fixed: the pair under evaluation."""

    def __init__(self, store: ScyllaStore, versions: Mapping[str, str]) -> None:
        self._store = store
        self._versions = dict(versions)

    async def active_versions(self) -> dict[str, str]:
        return dict(self._versions)

    async def popular_lists(self, version: str) -> dict[str, ScoredList]:
        return await self._store.popular_lists(version)

    async def embeddings(self, version: str) -> EmbeddingTable:
        return await self._store.embeddings(version)


class _StoreLookup:
    """Neighbour lists read straight from the store, one round trip per request."""

    def __init__(self, store: ScyllaStore) -> None:
        self._store = store

    async def get_many(
        self, namespace: str, keys: Iterable[str], *, timeout: float
    ) -> Lookup[ScoredList]:
        return Lookup(await self._store.neighbours(namespace, list(keys)))


class _Histories:
    def __init__(self, split: Split) -> None:
        self._histories = split.histories

    async def recent(self, user_id: str, limit: int) -> list[Interaction]:
        return self._histories.get(user_id, [])[:limit]


async def score_versions(
    session: Any,
    settings: Settings,
    split: Split,
    *,
    model: str,
    candidate: str,
    active: Mapping[str, str],
    catalog: Mapping[str, CatalogItem] | None,
    tolerance: float,
) -> GateResult:
    """Score `candidate` (a version of `model`) and the active versions on `split`."""
    offline = settings.model_copy(
        update={
            "request_deadline_ms": _OFFLINE_DEADLINE_MS,
            "scylla_timeout_ms": max(settings.scylla_timeout_ms, _OFFLINE_DEADLINE_MS),
        }
    )
    catalog_lookup: BatchLookup[CatalogItem] = (
        OpenCatalog() if catalog is None else InMemoryLookup(dict(catalog))
    )
    catalog_items = (
        sum(item.active for item in catalog.values()) if catalog is not None else split.log_items
    )
    with ThreadPoolExecutor(max_workers=4, thread_name_prefix="gate-cql") as executor:
        store = ScyllaStore(
            session,
            executor,
            keyspace=settings.scylla_keyspace,
            timeout_s=offline.scylla_timeout_ms / 1000,
            in_chunk=settings.scylla_in_chunk,
        )

        async def scored(versions: Mapping[str, str], name: str) -> MethodScores:
            models = ModelTracker(
                _PinnedVersions(store, versions),
                refresh_s=3600,
                embeddings=EmbeddingLimits.from_settings(settings),
            )
            await models.refresh()
            recommender = Recommender(
                offline,
                models=models,
                interactions=_Histories(split),
                neighbours=_StoreLookup(store),
                catalog=catalog_lookup,
            )
            result = await feed_scores(recommender, split, (GATE_K,), catalog_items)
            result.name = name
            return result

        pinned = {**active, model: candidate}
        candidate_scores = await scored(pinned, f"{model} {candidate} (candidate)")
        active_scores = None
        if model in active and active[model] != candidate:
            active_scores = await scored(active, f"{model} {active[model]} (active)")
    return GateResult(candidate_scores, active_scores, tolerance)

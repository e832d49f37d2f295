"""Model snapshots with an embeddings version: indexed before served, refused without harm,
at most two indexes resident, a rollback served from memory."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from app.embeddings import EmbeddingTable, IndexConfig, table_from_arrays
from app.model_versions import EmbeddingLimits, ModelTracker
from app.ranking.types import ScoredList


def table(seed: int, count: int = 300) -> EmbeddingTable:
    vectors = np.random.default_rng(seed).standard_normal((count, 8))
    return table_from_arrays([f"i{n}" for n in range(count)], vectors, f"v{seed}")


class Store:
    """A ModelStore whose active versions the test sets; counts every embeddings read."""

    def __init__(self) -> None:
        self.active: dict[str, str] = {"neighbours": "nb-1", "popular": "pop-1"}
        self.tables = {"emb-1": table(1), "emb-2": table(2), "emb-3": table(3)}
        self.reads: list[str] = []
        self.reading = asyncio.Event()
        self.gate: asyncio.Event | None = None
        self.fail_next = False

    async def active_versions(self) -> dict[str, str]:
        return dict(self.active)

    async def popular_lists(self, version: str) -> dict[str, ScoredList]:
        return {"global": ScoredList(("i1",), (1.0,))}

    async def embeddings(self, version: str) -> EmbeddingTable:
        self.reads.append(version)
        self.reading.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.fail_next:
            self.fail_next = False
            raise ConnectionError("store down")
        return self.tables[version]


def tracker(store: Store, max_mb: int = 64, ivf_min_vectors: int = 50_000) -> ModelTracker:
    index = IndexConfig(m=8, ef_construction=40, ivf_min_vectors=ivf_min_vectors, threads=1)
    return ModelTracker(store, refresh_s=60, embeddings=EmbeddingLimits(index, max_mb * 2**20))


async def test_the_snapshot_names_and_holds_all_three_versions() -> None:
    store = Store()
    store.active["embeddings"] = "emb-1"
    snapshot = await tracker(store).refresh()
    assert snapshot.label == "neighbours=nb-1,popular=pop-1,embeddings=emb-1"
    assert snapshot.embeddings is not None
    assert snapshot.embeddings.table is store.tables["emb-1"]
    assert snapshot.complete


async def test_embeddings_are_optional() -> None:
    snapshot = await tracker(Store()).refresh()
    assert snapshot.label == "neighbours=nb-1,popular=pop-1,embeddings=none"
    assert snapshot.embeddings is None and snapshot.complete


async def test_requests_see_the_old_version_until_the_new_index_is_built() -> None:
    store = Store()
    store.active["embeddings"] = "emb-1"
    models = tracker(store)
    await models.refresh()
    store.active["embeddings"] = "emb-2"
    store.gate = asyncio.Event()
    store.reading.clear()
    refreshing = asyncio.create_task(models.refresh())
    await store.reading.wait()
    assert models.current is not None and models.current.embeddings_version == "emb-1"
    store.gate.set()
    snapshot = await refreshing
    assert snapshot.embeddings_version == "emb-2"
    assert snapshot.embeddings is not None and snapshot.embeddings.table is store.tables["emb-2"]


@pytest.mark.parametrize(
    ("ivf_min_vectors", "needed"),
    [(200_000, "need 27 MB indexed (hnsw)"), (1000, "need 13 MB indexed (ivf)")],
)
async def test_a_version_over_the_memory_bound_is_refused_and_the_previous_keeps_serving(
    ivf_min_vectors: int, needed: str
) -> None:
    store = Store()
    store.active["embeddings"] = "emb-1"
    models = tracker(store, max_mb=8, ivf_min_vectors=ivf_min_vectors)
    first = await models.refresh()
    store.tables["emb-2"] = table(2, count=150_000)
    store.active.update(embeddings="emb-2", neighbours="nb-2")
    snapshot = await models.refresh()
    assert snapshot.embeddings_version == "emb-1"
    assert snapshot.embeddings is first.embeddings
    assert snapshot.neighbours_version == "nb-2"  # the other models move on
    assert f"{needed}, over RECS_EMBEDDINGS_MAX_MB (8)" in models.refused["emb-2"]
    reads = len(store.reads)
    assert (await models.refresh()) is snapshot  # refused once, not read again
    assert len(store.reads) == reads


async def test_a_store_failure_is_not_a_refusal_the_next_refresh_tries_again() -> None:
    store = Store()
    store.active["embeddings"] = "emb-1"
    models = tracker(store)
    await models.refresh()
    store.active["embeddings"] = "emb-2"
    store.fail_next = True
    assert (await models.refresh()).embeddings_version == "emb-1"
    assert models.refused == {}
    assert (await models.refresh()).embeddings_version == "emb-2"


async def test_a_rollback_is_served_from_memory_and_two_indexes_at_most_stay() -> None:
    store = Store()
    models = tracker(store)
    for version in ("emb-1", "emb-2", "emb-1", "emb-2", "emb-3"):
        store.active["embeddings"] = version
        await models.refresh()
    # emb-1 and emb-2 built once each; the rollbacks between them read nothing.
    assert store.reads == ["emb-1", "emb-2", "emb-3"]
    assert set(models._indexes) == {"emb-2", "emb-3"}  # the active and the previous
    store.active["embeddings"] = "emb-1"  # gone from memory: read and built again
    await models.refresh()
    assert store.reads[-1] == "emb-1"
    assert len(models._indexes) <= 2


async def test_a_version_from_the_threshold_on_is_served_from_ivf() -> None:
    store = Store()
    store.tables["emb-2"] = table(2, count=1000)
    models = tracker(store, ivf_min_vectors=1000)
    for version, kind in (("emb-1", "hnsw"), ("emb-2", "ivf")):
        store.active["embeddings"] = version
        snapshot = await models.refresh()
        assert snapshot.embeddings is not None and snapshot.embeddings.kind == kind
        assert snapshot.embeddings.recall >= 0.95


async def test_an_empty_version_is_refused() -> None:
    store = Store()
    store.tables["emb-1"] = table_from_arrays([], np.zeros((0, 8)), "empty")
    store.active["embeddings"] = "emb-1"
    models = tracker(store)
    snapshot = await models.refresh()
    assert snapshot.embeddings is None
    assert "has no vectors" in models.refused["emb-1"]

"""The neighbour warm-up over the real cache, with a fake store behind it."""

from __future__ import annotations

import asyncio

from app.model_versions import ModelSnapshot
from app.ranking.page import popular_pool
from app.ranking.types import ScoredList
from app.sources.cache import neighbour_cache
from app.warmup import NeighbourWarmer, popular_item_ids


class Store:
    """Neighbour lists of items `i0`..`i99` (none for others); records each read; reads from
    the `slow_from`-th on (1 is the first) take 10 s; fails when told to."""

    def __init__(self, slow_from: int | None = None) -> None:
        self.reads: list[tuple[str, list[str]]] = []
        self.slow_from = slow_from
        self.fail = False

    async def neighbours(self, version: str, item_ids: list[str]) -> dict[str, ScoredList]:
        self.reads.append((version, list(item_ids)))
        if self.slow_from is not None and len(self.reads) >= self.slow_from:
            await asyncio.sleep(10)
        if self.fail:
            raise ConnectionError("store down")
        known = {f"i{n}" for n in range(100)}
        return {i: ScoredList((f"{i}-n",), (1.0,)) for i in item_ids if i in known}


def snapshot(version: str | None = "nb-2", **segments: list[str]) -> ModelSnapshot:
    lists = {name: ScoredList(tuple(ids), (1.0,) * len(ids)) for name, ids in segments.items()}
    return ModelSnapshot(version, "pop-1", popular_pool(lists))


def test_popular_items_come_rank_by_rank_across_segments_each_once() -> None:
    pool = snapshot(
        **{"region:oslo": ["f"], "global": ["a", "b", "c", "d"], "category:bikes": ["b", "e"]}
    ).popular

    # The global list first, then the others in name order: category:bikes, region:oslo.
    assert popular_item_ids(pool, 100) == ["a", "b", "f", "e", "c", "d"]
    assert popular_item_ids(pool, 3) == ["a", "b", "f"]
    assert popular_item_ids({}, 10) == []


async def test_the_popular_items_lists_are_cached_under_the_snapshots_version() -> None:
    store = Store()
    cache = neighbour_cache(store.neighbours, max_mb=16)
    warm = NeighbourWarmer(cache, items=250, budget_s=5, batch=100)
    ids = [f"i{n}" for n in range(300)]

    loaded = await warm(snapshot(**{"global": ids}), None)

    assert loaded == 250
    assert [len(keys) for _, keys in store.reads] == [100, 100, 50]
    assert {version for version, _ in store.reads} == {"nb-2"}
    assert [key for _, keys in store.reads for key in keys] == ids[:250]
    # A request now finds them (the items without a list too) without reading the store.
    hit = await cache.get_many("nb-2", ["i0", "i99", "i120"], timeout=1)
    assert set(hit.found) == {"i0", "i99"} and hit.complete
    assert len(store.reads) == 3
    # Another version's lists are not these.
    await cache.get_many("nb-1", ["i0"], timeout=1)
    assert store.reads[-1] == ("nb-1", ["i0"])


async def test_the_warmup_stops_at_its_time_budget() -> None:
    store = Store(slow_from=3)
    cache = neighbour_cache(store.neighbours, max_mb=16)
    warm = NeighbourWarmer(cache, items=1000, budget_s=0.2, batch=100)

    started = asyncio.get_running_loop().time()
    loaded = await warm(snapshot(**{"global": [f"i{n}" for n in range(1000)]}), None)

    # Two reads fit in the budget, the third outlives it: no fourth is started.
    assert loaded == 200
    assert len(store.reads) == 3
    assert asyncio.get_running_loop().time() - started < 5


async def test_a_failing_store_leaves_the_cache_cold_without_raising() -> None:
    store = Store()
    store.fail = True
    cache = neighbour_cache(store.neighbours, max_mb=16)
    warm = NeighbourWarmer(cache, items=500, budget_s=5, batch=100)

    assert await warm(snapshot(**{"global": [f"i{n}" for n in range(500)]}), None) == 0
    assert len(store.reads) == 5  # each batch tried once
    store.fail = False
    await cache.get_many("nb-2", ["i0"], timeout=1)
    assert store.reads[-1] == ("nb-2", ["i0"])  # nothing failed was cached


async def test_at_a_switch_the_previous_versions_working_set_comes_first() -> None:
    store = Store()
    cache = neighbour_cache(store.neighbours, max_mb=16)
    for item_id in ("i7", "i3", "i5"):  # served under nb-1, i5 most recently
        await cache.get_many("nb-1", [item_id], timeout=1)
    await cache.get_many("nb-1", ["i7"], timeout=1)  # a hit: now the most recent
    store.reads.clear()
    warm = NeighbourWarmer(cache, items=5, budget_s=5, batch=100)
    old = snapshot("nb-1", **{"global": ["i1"]})
    new = snapshot("nb-2", **{"global": ["i1", "i3", "i2", "i9"]})

    assert await warm(new, old) == 5
    assert store.reads == [("nb-2", ["i7", "i5", "i3", "i1", "i2"])]
    # Only the popular version changed: the neighbour lists are those already cached.
    assert await warm(snapshot("nb-2", **{"global": ["i8"]}), new) == 0
    assert len(store.reads) == 1


async def test_nothing_is_read_without_a_neighbours_version_or_with_the_warmup_off() -> None:
    store = Store()
    cache = neighbour_cache(store.neighbours, max_mb=16)
    ids = {"global": ["i1", "i2"]}

    assert await NeighbourWarmer(cache, items=10, budget_s=5)(snapshot(None, **ids), None) == 0
    assert await NeighbourWarmer(cache, items=0, budget_s=5)(snapshot(**ids), None) == 0
    assert store.reads == []

import asyncio
from collections.abc import Mapping

import pytest

from app.ranking.types import ScoredList
from app.sources.cache import BatchCache, neighbour_cache, scored_list_size


class FakeStore:
    """Counts round trips; answers after an optional delay; can be told to fail."""

    def __init__(self, data: Mapping[str, ScoredList], delay: float = 0.0) -> None:
        self.data = data
        self.delay = delay
        self.calls: list[list[str]] = []
        self.fail = False

    async def neighbours(self, version: str, item_ids: list[str]) -> dict[str, ScoredList]:
        self.calls.append(list(item_ids))
        await asyncio.sleep(self.delay)
        if self.fail:
            raise ConnectionError("store down")
        return {i: self.data[i] for i in item_ids if i in self.data}


def lists(*ids: str) -> dict[str, ScoredList]:
    return {i: ScoredList((f"{i}-n",), (1.0,)) for i in ids}


async def test_misses_go_in_one_round_trip_and_hits_in_none() -> None:
    store = FakeStore(lists("a", "b", "c"))
    cache = neighbour_cache(store.neighbours, max_mb=1)
    first = await cache.get_many("v1", ["a", "b", "zz"], timeout=1)
    assert set(first.found) == {"a", "b"} and first.complete
    assert store.calls == [["a", "b", "zz"]]
    second = await cache.get_many("v1", ["a", "b", "zz", "c"], timeout=1)
    assert set(second.found) == {"a", "b", "c"}
    assert store.calls == [["a", "b", "zz"], ["c"]]  # unknown zz remembered as absent
    assert cache.hits == 3 and cache.misses == 4


async def test_versions_are_separate_keys() -> None:
    store = FakeStore(lists("a"))
    cache = neighbour_cache(store.neighbours, max_mb=1)
    await cache.get_many("v1", ["a"], timeout=1)
    await cache.get_many("v2", ["a"], timeout=1)
    assert len(store.calls) == 2


async def test_concurrent_misses_share_one_load() -> None:
    store = FakeStore(lists("a", "b"), delay=0.05)
    cache = neighbour_cache(store.neighbours, max_mb=1)
    results = await asyncio.gather(
        *(cache.get_many("v1", ["a", "b"], timeout=1) for _ in range(10))
    )
    assert store.calls == [["a", "b"]]
    assert all(set(r.found) == {"a", "b"} and r.complete for r in results)


async def test_timeout_returns_what_is_cached_and_the_load_still_fills_the_cache() -> None:
    store = FakeStore(lists("a", "b"), delay=0.1)
    cache = neighbour_cache(store.neighbours, max_mb=1)
    await cache.get_many("v1", ["a"], timeout=1)
    store.calls.clear()
    partial = await cache.get_many("v1", ["a", "b"], timeout=0.01)
    assert set(partial.found) == {"a"} and not partial.complete
    await asyncio.sleep(0.15)
    later = await cache.get_many("v1", ["b"], timeout=0.01)
    assert set(later.found) == {"b"} and later.complete
    assert store.calls == [["b"]]


async def test_store_failure_is_incomplete_not_an_exception_and_is_not_cached() -> None:
    store = FakeStore(lists("a"))
    store.fail = True
    cache = neighbour_cache(store.neighbours, max_mb=1)
    failed = await cache.get_many("v1", ["a"], timeout=1)
    assert failed.found == {} and not failed.complete
    store.fail = False
    recovered = await cache.get_many("v1", ["a"], timeout=1)
    assert set(recovered.found) == {"a"} and recovered.complete


async def test_memory_bound_evicts_least_recently_used() -> None:
    data = lists(*(f"item-{i}" for i in range(100)))
    one = scored_list_size("item-0", data["item-0"])
    store = FakeStore(data)
    cache: BatchCache[ScoredList] = BatchCache(
        store.neighbours, max_bytes=10 * one, sizeof=scored_list_size
    )
    await cache.get_many("v", [f"item-{i}" for i in range(10)], timeout=1)
    await cache.get_many("v", ["item-0"], timeout=1)  # touch: most recent now
    await cache.get_many("v", ["item-50"], timeout=1)
    assert cache.bytes <= 10 * one
    store.calls.clear()
    await cache.get_many("v", ["item-0"], timeout=1)
    assert store.calls == []  # kept
    await cache.get_many("v", ["item-1"], timeout=1)
    assert store.calls == [["item-1"]]  # evicted


async def test_zero_size_disables_caching() -> None:
    store = FakeStore(lists("a"))
    cache = neighbour_cache(store.neighbours, max_mb=0)
    await cache.get_many("v", ["a"], timeout=1)
    await cache.get_many("v", ["a"], timeout=1)
    assert len(store.calls) == 2 and len(cache) == 0


async def test_ttl_expires_entries() -> None:
    now = [0.0]
    store = FakeStore(lists("a"))
    cache: BatchCache[ScoredList] = BatchCache(
        store.neighbours, max_bytes=1 << 20, sizeof=scored_list_size, ttl_s=5, clock=lambda: now[0]
    )
    await cache.get_many("", ["a"], timeout=1)
    now[0] = 4.9
    await cache.get_many("", ["a"], timeout=1)
    assert len(store.calls) == 1
    now[0] = 5.1
    await cache.get_many("", ["a"], timeout=1)
    assert len(store.calls) == 2


@pytest.mark.parametrize("keys", [[], ["a", "a", "a"]])
async def test_empty_and_repeated_keys(keys: list[str]) -> None:
    store = FakeStore(lists("a"))
    cache = neighbour_cache(store.neighbours, max_mb=1)
    result = await cache.get_many("v", keys, timeout=1)
    assert len(store.calls) == (1 if keys else 0)
    assert store.calls[:1] in ([], [["a"]])
    assert set(result.found) == set(keys)

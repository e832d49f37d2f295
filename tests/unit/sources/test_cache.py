import asyncio
from collections.abc import Callable, Mapping, Sequence

import pytest

from app.domain import CatalogItem
from app.ranking.types import ScoredList
from app.sources.cache import (
    REFRESH_BATCH,
    BatchCache,
    catalog_cache,
    neighbour_cache,
    scored_list_size,
)


class FakeStore:
    """Counts round trips; answers after an optional delay, or once its gate opens; can be
    told to fail."""

    def __init__(self, data: Mapping[str, ScoredList], delay: float = 0.0) -> None:
        self.data = data
        self.delay = delay
        self.gate: asyncio.Event | None = None
        self.calls: list[list[str]] = []
        self.fail = False

    async def neighbours(self, version: str, item_ids: Sequence[str]) -> dict[str, ScoredList]:
        self.calls.append(list(item_ids))
        if self.gate is not None:
            await self.gate.wait()
        await asyncio.sleep(self.delay)
        if self.fail:
            raise ConnectionError("store down")
        return {i: self.data[i] for i in item_ids if i in self.data}


# The tests' refresh window: long enough that no reload starts by itself while a test runs;
# tests start the queued reloads with flush_refreshes() and time comes from a fake clock.
WINDOW = 60.0


async def eventually(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Polls `condition` while other tasks run, until it holds or `timeout_s` passes."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "the condition never held"
        await asyncio.sleep(0.005)


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
    store = FakeStore(lists("a", "b"))
    cache = neighbour_cache(store.neighbours, max_mb=1)
    await cache.get_many("v1", ["a"], timeout=1)
    store.calls.clear()
    store.gate = asyncio.Event()  # the store does not answer until the gate opens
    partial = await cache.get_many("v1", ["a", "b"], timeout=0.01)
    assert set(partial.found) == {"a"} and not partial.complete
    store.gate.set()
    await eventually(lambda: len(cache) == 2)
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


def refreshing_cache(
    store: FakeStore, now: list[float], refresh_batch: int = REFRESH_BATCH
) -> BatchCache[ScoredList]:
    return BatchCache(
        store.neighbours,
        max_bytes=1 << 20,
        sizeof=scored_list_size,
        ttl_s=10,
        refresh_after_s=8,
        refresh_window_s=WINDOW,
        refresh_batch=refresh_batch,
        clock=lambda: now[0],
    )


async def test_entries_near_their_ttl_are_served_and_reloaded_in_one_background_load() -> None:
    now = [0.0]
    store = FakeStore(lists("a", "b", "c"), delay=0.01)
    cache = refreshing_cache(store, now)
    await cache.get_many("", ["a", "b", "c"], timeout=1)
    store.calls.clear()
    store.data = {i: ScoredList((f"{i}-new",), (1.0,)) for i in ("a", "b", "c")}

    now[0] = 8.5  # past the refresh point, inside the TTL: answered from the cache at once
    first = await cache.get_many("", ["a", "b"], timeout=1)
    second = await cache.get_many("", ["c"], timeout=1)
    assert first.found["a"].item_ids == ("a-n",) and second.found["c"].item_ids == ("c-n",)
    assert store.calls == []  # nobody waited for the store

    await cache.flush_refreshes()
    assert store.calls == [["a", "b", "c"]]  # both requests' keys, one load
    assert cache.refresh_loads == 1
    now[0] = 15.0  # past the old entries' TTL: the reloaded values, still no load
    later = await cache.get_many("", ["a", "b", "c"], timeout=1)
    assert {k: v.item_ids for k, v in later.found.items()} == {
        "a": ("a-new",),
        "b": ("b-new",),
        "c": ("c-new",),
    }
    assert len(store.calls) == 1


async def test_a_failed_background_reload_leaves_entries_to_expire_at_their_ttl() -> None:
    now = [0.0]
    store = FakeStore(lists("a"))
    cache = refreshing_cache(store, now)
    await cache.get_many("", ["a"], timeout=1)
    store.fail = True
    now[0] = 9.0
    assert (await cache.get_many("", ["a"], timeout=1)).complete
    await cache.flush_refreshes()
    assert len(store.calls) == 2  # the reload was tried and failed
    now[0] = 9.5
    assert set((await cache.get_many("", ["a"], timeout=1)).found) == {"a"}
    await cache.flush_refreshes()
    assert len(store.calls) == 2  # not retried every window against a store that is down
    now[0] = 10.5  # past the TTL: no answer older than it, the failure is reported
    expired = await cache.get_many("", ["a"], timeout=1)
    assert expired.found == {} and not expired.complete


async def test_a_key_asked_for_while_its_reload_is_in_flight_is_reloaded_once() -> None:
    now = [0.0]
    store = FakeStore(lists("a"))
    cache = refreshing_cache(store, now)
    await cache.get_many("", ["a"], timeout=1)
    now[0] = 9.0
    await cache.get_many("", ["a"], timeout=1)  # past its refresh age: queued
    store.gate = asyncio.Event()
    reloading = asyncio.create_task(cache.flush_refreshes())
    await eventually(lambda: len(store.calls) == 2)  # the reload is in flight
    await cache.get_many("", ["a"], timeout=1)  # still the old entry: queued again
    store.gate.set()
    await reloading
    await cache.flush_refreshes()
    assert store.calls == [["a"], ["a"]]  # the second queueing found it reloaded
    assert cache.refresh_loads == 1


class SerialStore(FakeStore):
    """Records how many loads were in flight at once."""

    def __init__(self, data: Mapping[str, ScoredList], delay: float) -> None:
        super().__init__(data, delay)
        self.in_flight = 0
        self.most_in_flight = 0

    async def neighbours(self, version: str, item_ids: Sequence[str]) -> dict[str, ScoredList]:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            return await super().neighbours(version, item_ids)
        finally:
            self.in_flight -= 1


async def test_a_large_reload_goes_out_in_slices_one_after_another() -> None:
    """However many keys a window queued, the loop handles one slice's answer at a time."""
    now = [0.0]
    keys = [f"k{i}" for i in range(7)]
    store = SerialStore(lists(*keys), delay=0.01)
    cache = refreshing_cache(store, now, refresh_batch=3)
    await cache.get_many("", keys, timeout=1)
    store.calls.clear()
    now[0] = 9.0
    await cache.get_many("", keys[:4], timeout=1)
    await cache.get_many("", keys[4:], timeout=1)
    await cache.flush_refreshes()
    assert store.calls == [keys[0:3], keys[3:6], keys[6:7]]
    assert store.most_in_flight == 1
    assert cache.refresh_loads == 3


async def test_after_a_failed_slice_the_rest_of_the_reload_waits_for_the_ttl() -> None:
    now = [0.0]
    keys = ["a", "b", "c", "d"]
    store = FakeStore(lists(*keys))
    cache = refreshing_cache(store, now, refresh_batch=2)
    await cache.get_many("", keys, timeout=1)
    store.fail = True
    now[0] = 9.0
    await cache.get_many("", keys, timeout=1)
    await cache.flush_refreshes()
    assert store.calls == [keys, ["a", "b"]]  # the first slice failed; c and d not tried
    now[0] = 9.5
    await cache.get_many("", keys, timeout=1)
    await cache.flush_refreshes()
    assert len(store.calls) == 2  # none of them retried every window
    now[0] = 10.5
    assert not (await cache.get_many("", keys, timeout=1)).complete  # expired: reported


async def test_entries_not_asked_for_are_not_reloaded() -> None:
    now = [0.0]
    store = FakeStore(lists("a", "b"))
    cache = refreshing_cache(store, now)
    await cache.get_many("", ["a", "b"], timeout=1)
    now[0] = 9.0
    await cache.get_many("", ["a"], timeout=1)
    await cache.flush_refreshes()
    assert store.calls == [["a", "b"], ["a"]]


async def test_the_catalog_cache_reloads_hot_items_past_their_refresh_age() -> None:
    now = [0.0]
    calls: list[list[str]] = []

    async def read(item_ids: Sequence[str]) -> dict[str, CatalogItem]:
        calls.append(list(item_ids))
        return {i: CatalogItem(i, title=f"v{len(calls)}") for i in item_ids}

    cache = catalog_cache(
        read, max_mb=1, ttl_s=5, refresh_s=2, refresh_window_s=WINDOW, clock=lambda: now[0]
    )
    await cache.get_many("", ["a"], timeout=1)
    now[0] = 1.0
    await cache.get_many("", ["a"], timeout=1)  # younger than the refresh age: no reload
    await cache.flush_refreshes()
    assert calls == [["a"]]
    now[0] = 2.5
    hit = await cache.get_many("", ["a"], timeout=1)  # served, and queued for a reload
    assert hit.found["a"].title == "v1" and calls == [["a"]]
    await cache.flush_refreshes()
    assert calls == [["a"], ["a"]]
    assert (await cache.get_many("", ["a"], timeout=1)).found["a"].title == "v2"


async def test_the_catalog_cache_serves_without_waiting_until_the_ttl_and_never_after() -> None:
    """Between the refresh age and the TTL a slow catalog costs a request nothing; past the
    TTL the entry is not served, however slow the catalog."""
    now = [0.0]
    calls: list[list[str]] = []
    answering = asyncio.Event()
    answering.set()

    async def read(item_ids: Sequence[str]) -> dict[str, CatalogItem]:
        calls.append(list(item_ids))
        await answering.wait()
        return {i: CatalogItem(i, title=f"v{len(calls)}") for i in item_ids}

    cache = catalog_cache(
        read, max_mb=1, ttl_s=4, refresh_s=1, refresh_window_s=WINDOW, clock=lambda: now[0]
    )
    await cache.get_many("", ["a"], timeout=1)
    answering.clear()  # from now on the catalog does not answer
    now[0] = 2.0
    stale_hit = await cache.get_many("", ["a"], timeout=0.05)
    assert stale_hit.complete and stale_hit.found["a"].title == "v1"
    reloading = asyncio.create_task(cache.flush_refreshes())
    await eventually(lambda: len(calls) == 2)  # the background reload waits on the catalog
    now[0] = 4.5  # past the TTL
    expired = await cache.get_many("", ["a"], timeout=0.05)
    assert not expired.complete and expired.found == {}
    answering.set()
    await reloading


async def test_a_refresh_age_at_or_above_the_ttl_means_no_background_reloads() -> None:
    now = [0.0]
    calls: list[list[str]] = []

    async def read(item_ids: Sequence[str]) -> dict[str, CatalogItem]:
        calls.append(list(item_ids))
        return {i: CatalogItem(i) for i in item_ids}

    cache = catalog_cache(
        read, max_mb=1, ttl_s=2, refresh_s=2, refresh_window_s=WINDOW, clock=lambda: now[0]
    )
    await cache.get_many("", ["a"], timeout=1)
    now[0] = 1.5
    await cache.get_many("", ["a"], timeout=1)
    await cache.flush_refreshes()
    now[0] = 2.5
    assert calls == [["a"]]  # expired now, not reloaded ahead
    await cache.get_many("", ["a"], timeout=1)
    assert calls == [["a"], ["a"]]


async def test_a_reload_of_equal_data_keeps_the_cached_object_changed_data_replaces_it() -> None:
    now = [0.0]
    store = FakeStore({"a": ScoredList(("x",), (1.0,)), "b": ScoredList(("y",), (1.0,))})
    cache = refreshing_cache(store, now)
    first = (await cache.get_many("", ["a", "b"], timeout=1)).found
    bytes_before = cache.bytes
    # The store answers with new but equal objects for "a", and longer data for "b".
    store.data = {"a": ScoredList(("x",), (1.0,)), "b": ScoredList(("y", "z-longer"), (1.0, 0.5))}

    now[0] = 9.0
    await cache.get_many("", ["a", "b"], timeout=1)
    await cache.flush_refreshes()
    now[0] = 15.0  # past the first load's TTL: served from the reload, no new load
    reloaded = (await cache.get_many("", ["a", "b"], timeout=1)).found
    assert len(store.calls) == 2
    assert reloaded["a"] is first["a"]
    assert reloaded["b"].item_ids == ("y", "z-longer")
    added = scored_list_size("b", reloaded["b"]) - scored_list_size("b", first["b"])
    assert added > 0 and cache.bytes == bytes_before + added


async def test_a_ttl_cache_over_its_bound_evicts_the_longest_loaded_and_reloads_renew() -> None:
    now = [0.0]
    data = lists("a", "b", "c", "d", "e")
    store = FakeStore(data)
    cache = BatchCache(
        store.neighbours,
        max_bytes=3 * scored_list_size("a", data["a"]),
        sizeof=scored_list_size,
        ttl_s=10,
        refresh_after_s=8,
        refresh_window_s=WINDOW,
        clock=lambda: now[0],
    )
    for key in ("a", "b", "c"):
        await cache.get_many("", [key], timeout=1)
    now[0] = 1.0
    await cache.get_many("", ["a"], timeout=1)  # a hit does not reorder a TTL cache
    await cache.get_many("", ["d"], timeout=1)
    assert set((await cache.get_many("", ["b", "c", "d"], timeout=1)).found) == {"b", "c", "d"}
    store.calls.clear()

    now[0] = 8.5  # b is due for its reload; the reload moves it to the young end
    await cache.get_many("", ["b"], timeout=1)
    await cache.flush_refreshes()
    assert store.calls == [["b"]]
    await cache.get_many("", ["e"], timeout=1)  # evicts c, loaded before b's reload
    store.calls.clear()
    found = (await cache.get_many("", ["a", "b", "c", "d", "e"], timeout=1)).found
    assert store.calls == [["a", "c"]]  # evicted earlier: a by d, c by e
    assert set(found) == {"a", "b", "c", "d", "e"}

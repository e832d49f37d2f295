"""In-process caches in front of the remote stores.

Neighbour lists never change within a model version, so they are cached by (version, item)
without expiry, bounded by memory. Catalog metadata changes (prices, sold items), so it is
cached with two ages: a hit on an entry older than the refresh age (30 s by default) is
answered from the cache and queues the key for a background reload, the keys queued within
a second going out together, in slices of at most 200 loaded one after another; an entry
older than the TTL (60 s) is never served, it is a miss. Items shown often are then never
older than about the refresh age and never expire on a request's path; an item asked for
less often than that is served without waiting for as long as it is younger than the TTL.
Both are `BatchCache`s:

- one batched load for all of a request's misses (the store's one round trip);
- single-flight: a key already being loaded by another request is awaited, not re-read;
- negative entries: an unknown item is remembered as absent, so it does not cost a round trip
  on every request;
- a load that outlives the caller's timeout keeps running and fills the cache for the next
  request; the caller gets what was cached and `complete=False`;
- over its memory bound a cache evicts the entry used longest ago. With a TTL, "used" means
  loaded: a hit does not reorder (moving the entry would be a large part of a hit's cost),
  and every item asked for past its refresh age is reloaded, which moves it to the young end;
  without a TTL (neighbour lists), a hit reorders: true LRU;
- a reload updates its entry in place and keeps the cached value when the store returned equal
  data: refreshing thousands of unchanged items leaves no new object behind for the garbage
  collector's next young-generation pass to scan (docs/performance.md).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Generic, TypeVar

from app.domain import CatalogItem
from app.ranking.types import ScoredList
from app.sources.base import Lookup

V = TypeVar("V")

Loader = Callable[[str, list[str]], Awaitable[Mapping[str, V]]]


class _Absent:
    """Cached knowledge that the store has no entry for a key."""


_ABSENT: Final = _Absent()

# Keys queued for a background reload within this window go out together: a reload call has
# a fixed CPU cost. It only adds to an entry's age past its refresh age, many times longer.
REFRESH_WINDOW_S: Final = 1.0
# A window's keys are reloaded in slices of at most this many, one slice after the other, so
# the loop handles one slice's answer at a time and no burst stalls it (docs/performance.md).
REFRESH_BATCH: Final = 200


@dataclass(slots=True)
class _Entry:
    """One cached key; mutable, so a reload updates it without allocating."""

    value: object  # a V, or _ABSENT
    size: int
    expires_at: float
    refresh_at: float


class BatchCache(Generic[V]):
    def __init__(
        self,
        load: Loader[V],
        *,
        max_bytes: int,
        sizeof: Callable[[str, V | None], int],
        ttl_s: float | None = None,
        refresh_after_s: float | None = None,
        refresh_window_s: float = REFRESH_WINDOW_S,
        refresh_batch: int = REFRESH_BATCH,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load = load
        self._max_bytes = max_bytes
        self._sizeof = sizeof
        self._ttl_s = ttl_s
        self._refresh_after_s = refresh_after_s
        self._refresh_window_s = refresh_window_s
        self._refresh_batch = refresh_batch
        self._clock = clock
        self._entries: OrderedDict[tuple[str, str], _Entry] = OrderedDict()
        self._inflight: dict[tuple[str, str], asyncio.Task[Mapping[str, V]]] = {}
        self._to_refresh: dict[str, dict[str, None]] = {}  # namespace -> keys, in order
        self._refresh_timer: asyncio.TimerHandle | None = None
        self._reloads: set[asyncio.Task[None]] = set()
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self.refresh_loads = 0

    def __len__(self) -> int:
        return len(self._entries)

    async def get_many(self, namespace: str, keys: Iterable[str], *, timeout: float) -> Lookup[V]:
        found: dict[str, V] = {}
        to_load: list[str] = []
        waits: dict[asyncio.Task[Mapping[str, V]], list[str]] = {}
        now = self._clock()
        # The hit path runs for a few hundred keys per request: locals, no isinstance.
        get_entry = self._entries.get
        touch = self._entries.move_to_end if self._ttl_s is None else None
        hits = 0
        stale: list[str] = []
        for key in dict.fromkeys(keys):  # each key once, in order
            full_key = (namespace, key)
            entry = get_entry(full_key)
            if entry is not None and entry.expires_at > now:
                if touch is not None:
                    touch(full_key)
                hits += 1
                if entry.refresh_at <= now:
                    stale.append(key)
                cached = entry.value
                if cached is not _ABSENT:
                    found[key] = cached  # type: ignore[assignment]
                continue
            task = self._inflight.get(full_key)
            if task is not None:
                waits.setdefault(task, []).append(key)
            else:
                to_load.append(key)
        self.hits += hits
        self.misses += len(to_load) + sum(map(len, waits.values()))
        if stale:
            self._queue_refresh(namespace, stale)
        if to_load:
            waits[self._start_load(namespace, to_load)] = to_load
        if not waits:
            return Lookup(found)
        done, pending = await asyncio.wait(waits, timeout=timeout)
        complete = not pending
        for task in done:
            if task.cancelled() or task.exception() is not None:
                complete = False
                continue
            loaded = task.result()
            for key in waits[task]:
                value = loaded.get(key)
                if value is not None:
                    found[key] = value
        return Lookup(found, complete)

    def _start_load(self, namespace: str, keys: list[str]) -> asyncio.Task[Mapping[str, V]]:
        task = asyncio.get_running_loop().create_task(self._load_batch(namespace, keys))
        task.add_done_callback(_retrieve_exception)
        for key in keys:
            self._inflight[(namespace, key)] = task
        return task

    def _queue_refresh(self, namespace: str, keys: list[str]) -> None:
        queued = self._to_refresh.setdefault(namespace, {})
        queued.update(dict.fromkeys(keys))
        if self._refresh_timer is None:
            loop = asyncio.get_running_loop()
            self._refresh_timer = loop.call_later(self._refresh_window_s, self._refresh)

    def _refresh(self) -> None:
        """Start reloading the queued keys, one background task per namespace."""
        self._refresh_timer = None
        queued, self._to_refresh = self._to_refresh, {}
        for namespace, keys in queued.items():
            task = asyncio.get_running_loop().create_task(self._reload(namespace, list(keys)))
            task.add_done_callback(_retrieve_exception)
            task.add_done_callback(self._reloads.discard)
            self._reloads.add(task)

    async def flush_refreshes(self) -> None:
        """Start the queued background reloads now, without waiting out their window, and
        return when every reload has finished (its failures stay inside, as in the
        background)."""
        if self._refresh_timer is not None:
            self._refresh_timer.cancel()
            self._refresh()
        while self._reloads:
            await asyncio.wait(list(self._reloads))

    async def _reload(self, namespace: str, keys: list[str]) -> None:
        """Reload `keys` in slices, one after another. A key is skipped when it is no longer
        due: evicted, being loaded, or reloaded since it was queued (a key asked for while
        its reload was in flight was queued again, and reloaded twice). A failed slice leaves
        its keys and the rest to expire at their TTL: no reload every window against a store
        that is down (the breaker would refuse them anyway)."""
        batch = self._refresh_batch
        for start in range(0, len(keys), batch):
            now = self._clock()
            due = [key for key in keys[start : start + batch] if self._due(namespace, key, now)]
            if not due:
                continue
            self.refresh_loads += 1
            try:
                await self._start_load(namespace, due)
            except Exception:
                self._stop_refreshing(namespace, keys[start + batch :])
                return

    def _due(self, namespace: str, key: str, now: float) -> bool:
        full_key = (namespace, key)
        entry = self._entries.get(full_key)
        return entry is not None and entry.refresh_at <= now and full_key not in self._inflight

    async def _load_batch(self, namespace: str, keys: list[str]) -> Mapping[str, V]:
        try:
            loaded = await self._load(namespace, keys)
        except BaseException:
            self._stop_refreshing(namespace, keys)
            raise
        finally:
            for key in keys:
                self._inflight.pop((namespace, key), None)
        now = self._clock()
        expires_at = now + self._ttl_s if self._ttl_s is not None else float("inf")
        refresh_at = expires_at
        if self._refresh_after_s is not None:
            refresh_at = now + self._refresh_after_s
        for key in keys:
            self._store((namespace, key), loaded.get(key), expires_at, refresh_at)
        return loaded

    def _stop_refreshing(self, namespace: str, keys: list[str]) -> None:
        """After a failed load, the entries still cached wait for their TTL."""
        for key in keys:
            entry = self._entries.get((namespace, key))
            if entry is not None:
                entry.refresh_at = entry.expires_at

    def _store(
        self, full_key: tuple[str, str], value: V | None, expires_at: float, refresh_at: float
    ) -> None:
        if self._max_bytes <= 0:
            return
        stored: object = _ABSENT if value is None else value
        entry = self._entries.get(full_key)
        if entry is None:
            entry = _Entry(stored, self._sizeof(full_key[1], value), expires_at, refresh_at)
            self._entries[full_key] = entry
            self.bytes += entry.size
        else:
            # A reload. Equal data keeps the old value object: nothing new survives to be
            # scanned by the next GC pass (see the module docstring).
            if entry.value != stored:
                size = self._sizeof(full_key[1], value)
                self.bytes += size - entry.size
                entry.value, entry.size = stored, size
            entry.expires_at, entry.refresh_at = expires_at, refresh_at
            self._entries.move_to_end(full_key)
        while self.bytes > self._max_bytes and self._entries:
            _, evicted = self._entries.popitem(last=False)
            self.bytes -= evicted.size

    def clear(self) -> None:
        self._entries.clear()
        self.bytes = 0
        self._to_refresh.clear()
        if self._refresh_timer is not None:
            self._refresh_timer.cancel()
            self._refresh_timer = None


def _retrieve_exception(task: asyncio.Task[object]) -> None:
    # Every waiter may have timed out; read the exception so asyncio does not log it as lost.
    if not task.cancelled():
        task.exception()


def scored_list_size(key: str, value: ScoredList | None) -> int:
    """Approximate bytes held by a cached neighbour list (str objects, floats, tuples)."""
    if value is None:
        return 160 + len(key)
    return 240 + len(key) + sum(len(i) for i in value.item_ids) + 97 * len(value.item_ids)


def catalog_item_size(key: str, value: CatalogItem | None) -> int:
    if value is None:
        return 160 + len(key)
    return 520 + len(key) + len(value.title or "")


def neighbour_cache(
    read: Callable[[str, Sequence[str]], Awaitable[Mapping[str, ScoredList]]], *, max_mb: int
) -> BatchCache[ScoredList]:
    async def load(version: str, item_ids: list[str]) -> Mapping[str, ScoredList]:
        return await read(version, item_ids)

    return BatchCache(load, max_bytes=max_mb * 1024 * 1024, sizeof=scored_list_size)


def catalog_cache(
    read: Callable[[Sequence[str]], Awaitable[Mapping[str, CatalogItem]]],
    *,
    max_mb: int,
    ttl_s: float,
    refresh_s: float,
    refresh_window_s: float = REFRESH_WINDOW_S,
    clock: Callable[[], float] = time.monotonic,
) -> BatchCache[CatalogItem]:
    async def load(_: str, item_ids: list[str]) -> Mapping[str, CatalogItem]:
        return await read(item_ids)

    return BatchCache(
        load,
        max_bytes=max_mb * 1024 * 1024 if ttl_s > 0 else 0,
        sizeof=catalog_item_size,
        ttl_s=ttl_s,
        refresh_after_s=refresh_s if refresh_s < ttl_s else None,
        refresh_window_s=refresh_window_s,
        clock=clock,
    )

"""In-process caches in front of the remote stores.

Neighbour lists never change within a model version, so they are cached by (version, item)
without expiry, bounded by memory. Catalog metadata changes (prices, sold items), so it is
cached for a short TTL. Both are `BatchCache`s:

- one batched load for all of a request's misses (the store's one round trip);
- single-flight: a key already being loaded by another request is awaited, not re-read;
- negative entries: an unknown item is remembered as absent, so it does not cost a round trip
  on every request;
- a load that outlives the caller's timeout keeps running and fills the cache for the next
  request; the caller gets what was cached and `complete=False`.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Final, Generic, TypeVar

from app.domain import CatalogItem
from app.ranking.types import ScoredList
from app.sources.base import Lookup

V = TypeVar("V")

Loader = Callable[[str, list[str]], Awaitable[Mapping[str, V]]]


class _Absent:
    """Cached knowledge that the store has no entry for a key."""


_ABSENT: Final = _Absent()


class BatchCache(Generic[V]):
    def __init__(
        self,
        load: Loader[V],
        *,
        max_bytes: int,
        sizeof: Callable[[str, V | None], int],
        ttl_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load = load
        self._max_bytes = max_bytes
        self._sizeof = sizeof
        self._ttl_s = ttl_s
        self._clock = clock
        # key -> (value, size, expires_at)
        self._entries: OrderedDict[tuple[str, str], tuple[V | _Absent, int, float]] = OrderedDict()
        self._inflight: dict[tuple[str, str], asyncio.Task[Mapping[str, V]]] = {}
        self.bytes = 0
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    async def get_many(self, namespace: str, keys: Iterable[str], *, timeout: float) -> Lookup[V]:
        found: dict[str, V] = {}
        to_load: list[str] = []
        waits: dict[asyncio.Task[Mapping[str, V]], list[str]] = {}
        now = self._clock()
        entries = self._entries
        for key in dict.fromkeys(keys):  # each key once, in order
            full_key = (namespace, key)
            entry = entries.get(full_key)
            if entry is not None and entry[2] > now:
                entries.move_to_end(full_key)
                self.hits += 1
                cached = entry[0]
                if not isinstance(cached, _Absent):
                    found[key] = cached
                continue
            self.misses += 1
            task = self._inflight.get(full_key)
            if task is not None:
                waits.setdefault(task, []).append(key)
            else:
                to_load.append(key)
        if to_load:
            task = asyncio.get_running_loop().create_task(self._load_batch(namespace, to_load))
            task.add_done_callback(_retrieve_exception)
            for key in to_load:
                self._inflight[(namespace, key)] = task
            waits[task] = to_load
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

    async def _load_batch(self, namespace: str, keys: list[str]) -> Mapping[str, V]:
        try:
            loaded = await self._load(namespace, keys)
        finally:
            for key in keys:
                self._inflight.pop((namespace, key), None)
        expires_at = self._clock() + self._ttl_s if self._ttl_s is not None else float("inf")
        for key in keys:
            self._store((namespace, key), loaded.get(key), expires_at)
        return loaded

    def _store(self, full_key: tuple[str, str], value: V | None, expires_at: float) -> None:
        if self._max_bytes <= 0:
            return
        size = self._sizeof(full_key[1], value)
        old = self._entries.pop(full_key, None)
        if old is not None:
            self.bytes -= old[1]
        self._entries[full_key] = (_ABSENT if value is None else value, size, expires_at)
        self.bytes += size
        while self.bytes > self._max_bytes and self._entries:
            _, (_, evicted_size, _) = self._entries.popitem(last=False)
            self.bytes -= evicted_size

    def clear(self) -> None:
        self._entries.clear()
        self.bytes = 0


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
) -> BatchCache[CatalogItem]:
    async def load(_: str, item_ids: list[str]) -> Mapping[str, CatalogItem]:
        return await read(item_ids)

    return BatchCache(
        load,
        max_bytes=max_mb * 1024 * 1024 if ttl_s > 0 else 0,
        sizeof=catalog_item_size,
        ttl_s=ttl_s,
    )

"""The embedded backend: the whole dataset in process, loaded from data files.

With no servers configured (`make run`), the service reads a folder in the documented input
formats (the demo's, or your own):

    neighbours.csv[.gz]    item_id,similar_item_id,score       -> top K per item
    popular.csv[.gz]       segment,item_id,score               -> top N per segment
    catalog.jsonl[.gz]     one item per line
    interactions.csv[.gz]  user_id,item_id,event_type,ts_ms    (optional)
    embeddings.npz         item_ids + vectors                   (optional: app.embeddings)

It implements the same interfaces as the ScyllaDB, DynamoDB and catalog backends, so the
same recommender and ranking code serve from it. Events posted to the service are kept in
memory only (lost on restart): this backend is for demos and development.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Generic, TypeVar

from app.domain import CatalogItem, Event, Interaction, WriteOutcome
from app.embeddings import EmbeddingTable, read_embeddings
from app.offline.formats import read_catalog, read_interactions, read_neighbours, read_popular
from app.offline.topk import top_k_neighbours, top_k_popular
from app.ranking.types import ScoredList
from app.sources.base import EMBEDDINGS_MODEL, NEIGHBOURS_MODEL, POPULAR_MODEL, Lookup

log = logging.getLogger(__name__)

T = TypeVar("T")

NEIGHBOURS_TOP_K = 50
POPULAR_TOP_N = 500
# More than any feed reads (RECS_HISTORY_LIMIT), so a user's history is never cut short.
HISTORY_KEPT = 200


class EmbeddedDataMissing(FileNotFoundError):
    """The data folder lacks a required file."""


class InMemoryLookup(Generic[T]):
    """`BatchLookup` over a dict: nothing to cache, nothing that can fail."""

    def __init__(self, data: Mapping[str, T]) -> None:
        self._data = data

    async def get_many(self, namespace: str, keys: Iterable[str], *, timeout: float) -> Lookup[T]:
        data = self._data
        return Lookup({key: data[key] for key in keys if key in data})


class EmbeddedBackend:
    """Implements `ModelStore` and `InteractionReader`; exposes neighbour and catalog lookups."""

    def __init__(
        self,
        *,
        version: str,
        neighbours: dict[str, ScoredList],
        popular: dict[str, ScoredList],
        catalog: dict[str, CatalogItem],
        interactions: dict[str, list[Interaction]],
        embeddings: EmbeddingTable | None = None,
    ) -> None:
        self.version = version
        self._embeddings = embeddings
        self._popular = popular
        self._interactions = interactions
        self._event_keys: set[tuple[str, int, str]] = set()
        self.neighbour_lookup = InMemoryLookup(neighbours)
        self.catalog_lookup = InMemoryLookup(catalog)

    @classmethod
    def load(cls, data_dir: Path) -> EmbeddedBackend:
        started = time.perf_counter()
        neighbours_path = _find(data_dir, "neighbours.csv", required=True)
        popular_path = _find(data_dir, "popular.csv", required=True)
        catalog_path = _find(data_dir, "catalog.jsonl", required=True)
        interactions_path = _find(data_dir, "interactions.csv", required=False)
        embeddings_path = data_dir / "embeddings.npz"
        assert neighbours_path and popular_path and catalog_path

        neighbours = read_neighbour_lists(neighbours_path)
        popular = read_popular_lists(popular_path)
        catalog = {item.item_id: item for item in read_catalog(catalog_path)}
        histories: dict[str, list[Interaction]] = {}
        if interactions_path is not None:
            for user_id, item_id, event_type, ts_ms in read_interactions(interactions_path):
                histories.setdefault(user_id, []).append(
                    Interaction(item_id, str(event_type), ts_ms)
                )
        for history in histories.values():
            # Newest first; of two events at the same ts_ms the later row is the newer.
            history.reverse()
            history.sort(key=lambda i: i.ts_ms, reverse=True)
            del history[HISTORY_KEPT:]
        has_embeddings = embeddings_path.is_file()
        embeddings = read_embeddings(embeddings_path) if has_embeddings else None
        version = _files_version(
            p
            for p in (neighbours_path, popular_path, catalog_path, interactions_path)
            if p is not None
        )
        if has_embeddings:
            version = _files_version([embeddings_path], prefix=version)
        log.info(
            "embedded data loaded",
            extra={
                "data_dir": str(data_dir),
                "items_with_neighbours": len(neighbours),
                "popular_segments": len(popular),
                "catalog_items": len(catalog),
                "users": len(histories),
                "item_vectors": len(embeddings) if embeddings is not None else 0,
                "seconds": round(time.perf_counter() - started, 2),
            },
        )
        return cls(
            version=version,
            neighbours=neighbours,
            popular=popular,
            catalog=catalog,
            interactions=histories,
            embeddings=embeddings,
        )

    @property
    def users(self) -> list[str]:
        """Users with a history, in no particular order."""
        return list(self._interactions)

    # --- ModelStore ------------------------------------------------------------------
    async def active_versions(self) -> dict[str, str]:
        active = {NEIGHBOURS_MODEL: self.version, POPULAR_MODEL: self.version}
        if self._embeddings is not None:
            active[EMBEDDINGS_MODEL] = self.version
        return active

    async def popular_lists(self, version: str) -> dict[str, ScoredList]:
        return self._popular

    async def embeddings(self, version: str) -> EmbeddingTable:
        if self._embeddings is None:
            raise LookupError("no embeddings.npz in the data folder")
        return self._embeddings

    # --- InteractionReader -----------------------------------------------------------
    async def recent(self, user_id: str, limit: int) -> list[Interaction]:
        return self._interactions.get(user_id, [])[:limit]

    async def write(self, events: Sequence[Event], *, deadline_s: float) -> WriteOutcome:
        """Keep events in memory, newest first per user; the same event twice is kept once."""
        for event in events:
            key = (event.user_id, event.ts_ms, event.event_id)
            if key in self._event_keys:
                continue
            self._event_keys.add(key)
            history = self._interactions.setdefault(event.user_id, [])
            history.append(Interaction(event.item_id, event.event_type, event.ts_ms))
            history.sort(key=lambda i: i.ts_ms, reverse=True)
            del history[HISTORY_KEPT:]
        return WriteOutcome(stored=list(events))


def read_neighbour_lists(path: Path) -> dict[str, ScoredList]:
    """A neighbours file as the service holds it: each item's best NEIGHBOURS_TOP_K."""
    ranked = top_k_neighbours(read_neighbours(path), NEIGHBOURS_TOP_K)
    return {item_id: _scored(entries) for item_id, entries in ranked.items()}


def read_popular_lists(path: Path) -> dict[str, ScoredList]:
    """A popular file as the service holds it: each segment's best POPULAR_TOP_N."""
    ranked = top_k_popular(read_popular(path), POPULAR_TOP_N)
    return {segment: _scored(entries) for segment, entries in ranked.items()}


def _scored(entries: Sequence[tuple[str, float]]) -> ScoredList:
    return ScoredList(tuple(i for i, _ in entries), tuple(s for _, s in entries))


def _find(data_dir: Path, name: str, *, required: bool) -> Path | None:
    for candidate in (data_dir / name, data_dir / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    if required:
        raise EmbeddedDataMissing(
            f"{data_dir}: no {name} or {name}.gz (generate the demo with `recs demo generate` "
            "or point RECS_EMBEDDED_DATA_DIR at your own data)"
        )
    return None


def _files_version(paths: Iterable[Path], prefix: str = "") -> str:
    """A version id that changes when any data file changes (name, size, mtime)."""
    digest = hashlib.sha256(prefix.encode())
    for path in paths:
        stat = path.stat()
        digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return f"embedded-{digest.hexdigest()[:12]}"

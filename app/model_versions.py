"""The active model versions, pinned per request and refreshed in the background.

Offline jobs publish a new version of a model (neighbours, popular, embeddings) and activate
it with one write to `model_versions`. The service re-reads the active versions every
`RECS_MODEL_REFRESH_S` and swaps in a new immutable `ModelSnapshot` holding what requests
read from memory: the popular lists of the popular version, and the vectors and ANN index of
the embeddings version. A request takes the snapshot once at its start, so all its reads use
one consistent set of versions, whatever happens meanwhile: a user vector is never computed
from one embeddings version and searched in another's index.

An embeddings version is loaded and indexed (in a thread) before any snapshot names it. A
version that cannot be served (invalid vectors, none at all, or an index over
`RECS_EMBEDDINGS_MAX_MB`) is refused: logged, counted, reported by `/readyz`, and the snapshot
keeps the embeddings version it had; a store that fails to answer is tried again at the next
refresh. At most two indexes stay resident: the
active version's and the one before it, so a rollback is instant.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Final

from app.config import Settings
from app.embeddings import AnnIndex, EmbeddingsError, IndexConfig, estimate_index_bytes
from app.ranking.page import PopularCandidates, popular_pool
from app.sources.base import EMBEDDINGS_MODEL, NEIGHBOURS_MODEL, POPULAR_MODEL, ModelStore

log = logging.getLogger(__name__)

RESIDENT_INDEXES: Final = 2


@dataclass(frozen=True, slots=True)
class ModelSnapshot:
    neighbours_version: str | None
    popular_version: str | None
    # The popular lists as page candidates (`popular_pool`), by segment.
    popular: PopularCandidates = field(default_factory=dict)
    embeddings_version: str | None = None
    # The embeddings version's vectors and index; None when no version is active.
    embeddings: AnnIndex | None = None

    @property
    def label(self) -> str:
        """What responses report as `model_version`: every model's pinned version."""
        return (
            f"{NEIGHBOURS_MODEL}={self.neighbours_version or 'none'},"
            f"{POPULAR_MODEL}={self.popular_version or 'none'},"
            f"{EMBEDDINGS_MODEL}={self.embeddings_version or 'none'}"
        )

    @property
    def complete(self) -> bool:
        """Ready to serve: neighbours and popular are required, embeddings optional."""
        return self.neighbours_version is not None and self.popular_version is not None


@dataclass(frozen=True, slots=True)
class EmbeddingLimits:
    """How the service indexes an embeddings version, and the memory it may take."""

    index: IndexConfig = field(default_factory=IndexConfig)
    max_bytes: int = 1024 * 1024 * 1024

    @classmethod
    def from_settings(cls, settings: Settings) -> EmbeddingLimits:
        return cls(
            index=IndexConfig(
                m=settings.ann_m,
                ef_construction=settings.ann_ef_construction,
                recall_target=settings.ann_recall_target,
                ivf_min_vectors=settings.ann_ivf_min_vectors,
            ),
            max_bytes=settings.embeddings_max_mb * 1024 * 1024,
        )


class ModelTracker:
    def __init__(
        self,
        store: ModelStore,
        *,
        refresh_s: float,
        embeddings: EmbeddingLimits | None = None,
    ) -> None:
        self._store = store
        self._refresh_s = refresh_s
        self._limits = embeddings if embeddings is not None else EmbeddingLimits()
        self._indexes: OrderedDict[str, AnnIndex] = OrderedDict()  # oldest first
        self.current: ModelSnapshot | None = None
        self.last_error: str | None = None
        # Versions the service would not serve, with the reason: {version: reason}.
        self.refused: dict[str, str] = {}

    async def refresh(self) -> ModelSnapshot:
        """Re-read the active versions; load what changed; swap in one new snapshot."""
        active = await self._store.active_versions()
        neighbours_version = active.get(NEIGHBOURS_MODEL)
        popular_version = active.get(POPULAR_MODEL)
        wanted_embeddings = active.get(EMBEDDINGS_MODEL)
        current = self.current
        if (
            current is not None
            and current.neighbours_version == neighbours_version
            and current.popular_version == popular_version
            and (
                current.embeddings_version == wanted_embeddings or wanted_embeddings in self.refused
            )
        ):
            return current
        if current is not None and current.popular_version == popular_version:
            popular = current.popular
        elif popular_version is not None:
            popular = popular_pool(await self._store.popular_lists(popular_version))
        else:
            popular = {}
        embeddings_version, index = await self._embeddings(wanted_embeddings)
        snapshot = ModelSnapshot(
            neighbours_version, popular_version, popular, embeddings_version, index
        )
        self.current = snapshot  # one reference swap: requests see the old or the new, whole
        log.info(
            "model versions active",
            extra={"model_version": snapshot.label, "popular_segments": len(popular)},
        )
        return snapshot

    async def _embeddings(self, version: str | None) -> tuple[str | None, AnnIndex | None]:
        """The version to serve and its index: `version` once indexed, else what was served."""
        if version is None:
            return None, None
        index = self._indexes.get(version)
        if index is not None:
            self._indexes.move_to_end(version)
            return version, index
        if version not in self.refused:
            try:
                index = await self._index(version)
            except EmbeddingsError as exc:  # never servable: refuse it, keep serving the last
                self.refused[version] = str(exc)
                log.error(
                    "embeddings version refused", extra={"version": version, "reason": str(exc)}
                )
            except Exception as exc:  # the store failed: keep serving, try again next refresh
                log.warning(
                    "embeddings version not loaded", extra={"version": version, "error": repr(exc)}
                )
            else:
                return version, index
        current = self.current
        if current is None:
            return None, None
        return current.embeddings_version, current.embeddings

    async def _index(self, version: str) -> AnnIndex:
        table = await self._store.embeddings(version)
        if not len(table):
            raise EmbeddingsError(f"embeddings {version} has no vectors")
        config = self._limits.index
        needed = estimate_index_bytes(len(table), table.dim, config)
        if needed > self._limits.max_bytes:
            raise EmbeddingsError(
                f"embeddings {version}: {len(table)} vectors of {table.dim} dimensions need "
                f"{needed / 2**20:.0f} MB indexed ({config.kind(len(table))}), over "
                f"RECS_EMBEDDINGS_MAX_MB ({self._limits.max_bytes / 2**20:.0f})"
            )
        # Only the serving version stays resident while another is built: at most two.
        serving = self.current.embeddings_version if self.current is not None else None
        for old in [v for v in self._indexes if v != serving]:
            del self._indexes[old]
        index = await asyncio.to_thread(AnnIndex.build, table, self._limits.index)
        self._indexes[version] = index
        while len(self._indexes) > RESIDENT_INDEXES:
            self._indexes.popitem(last=False)
        log.info(
            "embeddings version indexed",
            extra={
                "version": version,
                "vectors": len(table),
                "dim": table.dim,
                "index": index.kind,
                "breadth": index.breadth,
                "recall_at_50": round(index.recall, 3),
                "seconds": round(index.build_seconds, 2),
            },
        )
        return index

    async def run(self) -> None:
        """Refresh forever; on failure keep serving the last good snapshot."""
        while True:
            await asyncio.sleep(self._refresh_s)
            try:
                await self.refresh()
                self.last_error = None
            except Exception as exc:  # the store is down: keep the snapshot we have
                if self.last_error is None:
                    log.warning("model version refresh failed", extra={"error": repr(exc)})
                self.last_error = repr(exc)

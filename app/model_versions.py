"""The active model versions, pinned per request and refreshed in the background.

Offline jobs publish a new version of a model (neighbours, popular) and activate it with one
write to `model_versions`. The service re-reads the active versions every
`RECS_MODEL_REFRESH_S` and swaps in a new immutable `ModelSnapshot` (with that version's
popular lists, which are small and read whole). A request takes the snapshot once at its
start, so all its reads use one consistent pair of versions, whatever happens meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from app.ranking.page import PopularCandidates, popular_pool
from app.sources.base import NEIGHBOURS_MODEL, POPULAR_MODEL, ModelStore

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ModelSnapshot:
    neighbours_version: str | None
    popular_version: str | None
    # The popular lists as page candidates (`popular_pool`), by segment.
    popular: PopularCandidates = field(default_factory=dict)

    @property
    def label(self) -> str:
        """What responses report as `model_version`."""
        return (
            f"{NEIGHBOURS_MODEL}={self.neighbours_version or 'none'},"
            f"{POPULAR_MODEL}={self.popular_version or 'none'}"
        )

    @property
    def complete(self) -> bool:
        return self.neighbours_version is not None and self.popular_version is not None


class ModelTracker:
    def __init__(self, store: ModelStore, *, refresh_s: float) -> None:
        self._store = store
        self._refresh_s = refresh_s
        self.current: ModelSnapshot | None = None
        self.last_error: str | None = None

    async def refresh(self) -> ModelSnapshot:
        """Re-read the active versions; load popular lists only when their version changed."""
        active = await self._store.active_versions()
        neighbours_version = active.get(NEIGHBOURS_MODEL)
        popular_version = active.get(POPULAR_MODEL)
        current = self.current
        if (
            current is not None
            and current.neighbours_version == neighbours_version
            and current.popular_version == popular_version
        ):
            return current
        if current is not None and current.popular_version == popular_version:
            popular = current.popular
        elif popular_version is not None:
            popular = popular_pool(await self._store.popular_lists(popular_version))
        else:
            popular = {}
        snapshot = ModelSnapshot(neighbours_version, popular_version, popular)
        self.current = snapshot  # one reference swap: requests see the old or the new, whole
        log.info(
            "model versions active",
            extra={"model_version": snapshot.label, "popular_segments": len(popular)},
        )
        return snapshot

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

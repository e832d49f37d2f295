"""ModelTracker: a new snapshot is prepared (the cache warm-up) before it becomes current."""

from __future__ import annotations

import pytest

from app.model_versions import ModelSnapshot, ModelTracker
from app.ranking.types import ScoredList


class Store:
    """Active versions as set by the test; one popular list per popular version."""

    def __init__(self) -> None:
        self.active = {"neighbours": "nb-1", "popular": "pop-1"}

    async def active_versions(self) -> dict[str, str]:
        return dict(self.active)

    async def popular_lists(self, version: str) -> dict[str, ScoredList]:
        return {"global": ScoredList((f"{version}-top",), (1.0,))}


async def test_a_new_snapshot_is_prepared_while_the_old_one_still_serves() -> None:
    store = Store()
    prepared: list[tuple[str, str | None, str | None]] = []
    tracker: ModelTracker

    def label(snapshot: ModelSnapshot | None) -> str | None:
        return snapshot.label if snapshot else None

    async def prepare(snapshot: ModelSnapshot, previous: ModelSnapshot | None) -> None:
        # (the new one, the one it follows, the one serving meanwhile)
        prepared.append((snapshot.label, label(previous), label(tracker.current)))

    tracker = ModelTracker(store, refresh_s=60, prepare=prepare)
    await tracker.refresh()
    await tracker.refresh()  # nothing changed: nothing to prepare
    store.active["neighbours"] = "nb-2"
    await tracker.refresh()

    first, second = "neighbours=nb-1,popular=pop-1", "neighbours=nb-2,popular=pop-1"
    assert prepared == [(first, None, None), (second, first, first)]
    assert tracker.current is not None
    assert tracker.current.label == "neighbours=nb-2,popular=pop-1"


async def test_a_failed_preparation_still_switches_the_version(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = Store()

    async def prepare(snapshot: ModelSnapshot, previous: ModelSnapshot | None) -> None:
        raise ConnectionError("scylla down")

    tracker = ModelTracker(store, refresh_s=60, prepare=prepare)
    snapshot = await tracker.refresh()

    assert tracker.current is snapshot
    assert snapshot.neighbours_version == "nb-1"
    assert "preparing model versions failed" in caplog.text

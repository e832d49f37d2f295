"""The recommender in process, built by the real lifespan against the real stack."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import cast

import pytest

from app.config import Settings
from app.domain import Event
from app.main import State, create_app
from app.recommender import FeedQuery
from tests.conftest import Dataset

pytestmark = pytest.mark.integration


async def _state(settings: Settings) -> AsyncIterator[State]:
    app = create_app(settings)
    async with app.router.lifespan_context(app) as state:
        yield cast(State, state)


@pytest.fixture
async def uncached(settings: Settings, loaded_env: dict[str, str]) -> AsyncIterator[State]:
    """Neighbour cache off: every request must go to Scylla for its seeds' lists."""
    async for state in _state(settings.model_copy(update={"neighbour_cache_mb": 0})):
        yield state


@pytest.fixture
async def cached(settings: Settings, loaded_env: dict[str, str]) -> AsyncIterator[State]:
    async for state in _state(settings):
        yield state


async def history(state: State, dataset: Dataset, length: int) -> str:
    """A fresh user with `length` recent interactions on items that have neighbours."""
    user = f"hops-{uuid.uuid4().hex[:8]}"
    items = sorted(dataset.neighbours)
    now = time.time_ns() // 1_000_000
    events = [
        Event(f"e{n}", user, items[n % len(items)], "view", now - n * 1000) for n in range(length)
    ]
    outcome = await state["sources"].interactions.write(events, deadline_s=10)
    assert not outcome.failed
    return user


@pytest.mark.parametrize("length", [1, 7, 50, 180])
async def test_one_scylla_pool_hop_per_feed_request_whatever_the_history(
    uncached: State, dataset: Dataset, length: int
) -> None:
    executor = uncached["sources"].cql_executor
    assert executor is not None
    user = await history(uncached, dataset, length)
    for _ in range(3):
        before = executor.submitted
        page = await uncached["recommender"].feed(FeedQuery(user_id=user, limit=20))
        assert executor.submitted - before == 1
        assert page.degraded == [] and len(page.items) == 20
        assert any(item.source == "personalized" for item in page.items)


async def test_a_warm_cache_needs_no_hop(cached: State, dataset: Dataset) -> None:
    executor = cached["sources"].cql_executor
    assert executor is not None
    user = await history(cached, dataset, 30)
    await cached["recommender"].feed(FeedQuery(user_id=user, limit=20))
    before = executor.submitted
    await cached["recommender"].feed(FeedQuery(user_id=user, limit=20))
    assert executor.submitted == before


async def test_a_fresh_event_changes_the_next_feed(cached: State, dataset: Dataset) -> None:
    """Read-your-writes: an action a moment ago shapes the very next request."""
    user = await history(cached, dataset, 3)
    recommender = cached["recommender"]
    before = [i.item_id for i in (await recommender.feed(FeedQuery(user, 10))).items]
    target = next(i for i, n in sorted(dataset.neighbours.items()) if len(n) >= 20)
    now = time.time_ns() // 1_000_000
    await cached["sources"].interactions.write(
        [Event("fresh", user, target, "purchase", now)], deadline_s=5
    )
    after = await recommender.feed(FeedQuery(user, 10))
    after_ids = [i.item_id for i in after.items]
    assert after_ids != before and target not in after_ids
    neighbours = {n for n, _ in dataset.neighbours[target]}
    assert sum(item in neighbours for item in after_ids) >= 3


async def test_the_first_feed_after_start_is_whole(
    settings: Settings, loaded_env: dict[str, str], dataset: Dataset
) -> None:
    """The lifespan warms up the feed's own DynamoDB Query: a new client's first Query (its
    operation model, the server's first read) once outlived the 100 ms timeout, so the first
    feeds after every start came back degraded."""
    user = max(dataset.histories, key=lambda u: len(dataset.histories[u]))
    async for state in _state(settings):
        page = await state["recommender"].feed(FeedQuery(user_id=user, limit=20))
        assert page.degraded == []
        assert any(item.source == "personalized" for item in page.items)

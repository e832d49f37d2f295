"""app.sources.scylla against a real Cassandra 5 (ScyllaDB's protocol and driver)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from app.config import Settings
from app.observability.threadpool import InstrumentedExecutor
from app.publishing.scylla import publish_neighbours, publish_popular
from app.sources.scylla import ScyllaStore
from tests.conftest import own_keyspace

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def keyspace(cql_session: Any, settings: Settings) -> Iterator[str]:
    with own_keyspace(cql_session, settings, "scylla") as name:
        yield name


def store(session: Any, keyspace: str, *, in_chunk: int = 100) -> ScyllaStore:
    executor = InstrumentedExecutor(4, thread_name_prefix="test-cql")
    return ScyllaStore(session, executor, keyspace=keyspace, timeout_s=5.0, in_chunk=in_chunk)


def lists(count: int, k: int = 5) -> dict[str, list[tuple[str, float]]]:
    return {
        f"it-{i}": [(f"it-{(i + j) % count}", 1.0 / (j + 1) + i * 1e-9) for j in range(1, k + 1)]
        for i in range(count)
    }


@pytest.fixture(scope="module")
def published(cql_session: Any, keyspace: str) -> tuple[str, dict[str, list[tuple[str, float]]]]:
    version = f"nb-test-{uuid.uuid4().hex[:6]}"
    data = lists(250)
    publish_neighbours(
        cql_session,
        keyspace,
        data,
        version=version,
        source="test",
        activate=True,
        progress=False,
    )
    return version, data


async def test_served_neighbours_equal_what_was_published(
    cql_session: Any, keyspace: str, published: tuple[str, dict[str, Any]]
) -> None:
    version, data = published
    scylla = store(cql_session, keyspace)
    wanted = ["it-0", "it-17", "it-249"]
    found = await scylla.neighbours(version, wanted)
    assert set(found) == set(wanted)
    for item_id in wanted:
        assert list(found[item_id].item_ids) == [n for n, _ in data[item_id]]
        assert list(found[item_id].scores) == [s for _, s in data[item_id]]  # doubles: exact


async def test_unknown_items_and_other_versions_are_absent(
    cql_session: Any, keyspace: str, published: tuple[str, dict[str, Any]]
) -> None:
    version, _ = published
    scylla = store(cql_session, keyspace)
    assert await scylla.neighbours(version, ["no-such-item"]) == {}
    assert await scylla.neighbours("nb-other", ["it-0"]) == {}
    assert await scylla.neighbours(version, []) == {}


async def test_many_keys_are_one_pool_hop_in_chunks(
    cql_session: Any, keyspace: str, published: tuple[str, dict[str, Any]]
) -> None:
    version, data = published
    scylla = store(cql_session, keyspace, in_chunk=7)
    executor = scylla._executor
    assert isinstance(executor, InstrumentedExecutor)
    keys = list(data)[:200]
    found = await scylla.neighbours(version, keys)
    assert set(found) == set(keys)  # 29 IN queries of at most 7 keys ...
    assert executor.submitted == 1  # ... in one thread-pool hop


async def test_active_versions_and_popular_lists(cql_session: Any, keyspace: str) -> None:
    version = f"pop-test-{uuid.uuid4().hex[:6]}"
    popular = {
        "global": [("a", 3.0), ("b", 2.0)],
        "category:bikes": [("b", 5.0)],
        "region:berlin": [("a", 1.5)],
    }
    publish_popular(cql_session, keyspace, popular, version=version, source="test")
    scylla = store(cql_session, keyspace)
    active = await scylla.active_versions()
    assert active["popular"] == version
    got = await scylla.popular_lists(version)
    assert {
        segment: list(zip(sl.item_ids, sl.scores, strict=True)) for segment, sl in got.items()
    } == popular


async def test_reads_do_not_block_the_event_loop(
    cql_session: Any, keyspace: str, published: tuple[str, dict[str, Any]]
) -> None:
    """While reads run in the pool, the loop keeps turning: a read that ran on the loop
    would let the ticker in about once per read, not thousands of times."""
    version, data = published
    scylla = store(cql_session, keyspace)
    reads = 50
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    await asyncio.gather(*(scylla.neighbours(version, list(data)[:100]) for _ in range(reads)))
    task.cancel()
    assert ticks > 10 * reads

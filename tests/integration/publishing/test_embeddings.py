"""Embeddings versions in a real Cassandra: published in chunks, read back whole by the
service's store, versioned, rolled back and cleaned up like the other models."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

from app.config import Settings
from app.embeddings import EmbeddingTable, table_from_arrays
from app.publishing import versions
from app.publishing.scylla import EMBEDDING_CHUNK_ITEMS, publish_embeddings
from app.sources.scylla import ScyllaStore
from tests.conftest import own_keyspace

pytestmark = pytest.mark.integration


def table(seed: int, count: int) -> EmbeddingTable:
    vectors = np.random.default_rng(seed).standard_normal((count, 24))
    return table_from_arrays([f"e{seed}-{n}" for n in range(count)], vectors, "test")


@pytest.fixture(scope="module")
def keyspace(cql_session: Any, settings: Settings) -> Iterator[str]:
    with own_keyspace(cql_session, settings, "embeddings") as name:
        yield name


def read_back(session: Any, keyspace: str, version: str) -> EmbeddingTable:
    with ThreadPoolExecutor(max_workers=2) as pool:
        store = ScyllaStore(session, pool, keyspace=keyspace, timeout_s=5.0, in_chunk=100)
        return asyncio.run(store.embeddings(version))


def test_a_version_reads_back_as_it_was_written(cql_session: Any, keyspace: str) -> None:
    written = table(1, count=2 * EMBEDDING_CHUNK_ITEMS + 17)  # three chunks, the last short
    result = publish_embeddings(cql_session, keyspace, written, version="emb-a", source="t")
    assert result.activated and result.items == 3
    read = read_back(cql_session, keyspace, "emb-a")
    assert read.item_ids == written.item_ids
    np.testing.assert_allclose(read.vectors, written.vectors, rtol=1e-6, atol=1e-7)
    assert versions.active_version(cql_session, keyspace, "embeddings") == "emb-a"
    (listed,) = versions.list_versions(cql_session, keyspace, "embeddings")
    assert (listed.item_count, listed.row_count) == (3, 3)


def test_versions_roll_back_and_old_ones_are_deleted_with_their_chunks(
    cql_session: Any, keyspace: str
) -> None:
    for n in (2, 3, 4):
        publish_embeddings(
            cql_session, keyspace, table(n, 1500), version=f"emb-{n}", source="t", keep=2
        )
    assert versions.rollback(cql_session, keyspace, "embeddings") == "emb-3"
    kept = {v.version for v in versions.list_versions(cql_session, keyspace, "embeddings")}
    assert kept == {"emb-3", "emb-4"}
    for gone in ("emb-a", "emb-2"):
        chunks = cql_session.execute(
            f"SELECT chunk FROM {keyspace}.embedding_chunks WHERE model_version = %s "
            "AND chunk IN (0, 1, 2)",
            (gone,),
        ).all()
        assert chunks == [], gone


def test_a_missing_chunk_fails_the_read_instead_of_serving_part(
    cql_session: Any, keyspace: str
) -> None:
    publish_embeddings(cql_session, keyspace, table(5, 1500), version="emb-5", source="t")
    cql_session.execute(
        f"DELETE FROM {keyspace}.embedding_chunks WHERE model_version = 'emb-5' AND chunk = 1"
    )
    with pytest.raises(ValueError, match="chunk 1 of 2 is missing"):
        read_back(cql_session, keyspace, "emb-5")

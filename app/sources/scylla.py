"""ScyllaDB (CQL) read side: model versions, neighbour lists and popular lists.

The driver's calls block, so every read runs in a dedicated thread pool: one hop per request
for all of its keys, never a query per interaction on the event loop (docs/threadpool.md).
Inside that hop, the keys go as IN queries of at most `scylla_in_chunk` partition keys
(ScyllaDB's `max_partition_key_restrictions_per_query` is 100), all chunks in flight at once.
docs/performance.md compares this with concurrent single-key statements.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import Any, TypeVar

from app.config import Settings
from app.embeddings import EmbeddingTable, table_from_arrays
from app.ranking.types import ScoredList
from app.sources.base import EMBEDDINGS_MODEL, MODELS

log = logging.getLogger(__name__)

R = TypeVar("R")


def connect(settings: Settings, *, keyspace: str | None = None) -> tuple[Any, Any]:
    """Build the cluster and session (blocking: call from a thread or at startup).

    Token-aware routing over the local datacenter, the cheapest row factory (tuples), an
    explicit protocol version, and the libev reactor when the driver was built with it.
    """
    from cassandra import ConsistencyLevel
    from cassandra.auth import PlainTextAuthProvider
    from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
    from cassandra.policies import (
        DCAwareRoundRobinPolicy,
        ExponentialReconnectionPolicy,
        TokenAwarePolicy,
    )
    from cassandra.query import tuple_factory

    profile = ExecutionProfile(
        load_balancing_policy=TokenAwarePolicy(
            DCAwareRoundRobinPolicy(local_dc=settings.scylla_local_dc)
        ),
        row_factory=tuple_factory,
        request_timeout=settings.scylla_timeout_ms / 1000,
        consistency_level=ConsistencyLevel.LOCAL_QUORUM,
    )
    kwargs: dict[str, Any] = {}
    try:
        from cassandra.io.libevreactor import LibevConnection

        kwargs["connection_class"] = LibevConnection
    except ImportError:  # pragma: no cover - the scylla-driver wheels ship libev
        log.warning("cassandra driver without libev: using its default reactor")
    if settings.scylla_username:
        kwargs["auth_provider"] = PlainTextAuthProvider(
            settings.scylla_username, settings.scylla_password
        )
    cluster = Cluster(
        contact_points=settings.scylla_hosts,
        # Reconnect soon after a node returns (the default backs off up to 10 minutes).
        reconnection_policy=ExponentialReconnectionPolicy(base_delay=0.5, max_delay=4.0),
        port=settings.scylla_port,
        protocol_version=settings.scylla_protocol_version,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        connect_timeout=settings.scylla_connect_timeout_ms / 1000,
        **kwargs,
    )
    try:
        session = cluster.connect(keyspace)
    except Exception:
        cluster.shutdown()
        raise
    return cluster, session


def skip_reactor_exit_join() -> None:
    """Short-lived processes (the CLI): do not wait 5 s at exit for the driver's libev thread.

    scylla-driver 3.29's libev reactor joins its loop thread at exit with a 5 s timeout, and
    the thread never ends (its loop stops an unref'd watcher, so libev's count of active
    watchers never reaches zero; docs/threadpool.md). Clusters are shut down explicitly
    before exit, so the hook has nothing left to clean; the thread is a daemon.
    """
    import atexit

    try:
        from cassandra.io import libevreactor
    except ImportError:  # pragma: no cover - no libev, no hook
        return
    atexit.unregister(libevreactor._atexit_cleanup)


def shard_awareness(cluster: Any) -> dict[str, Any]:
    """Whether every shard of every node has a connection (ScyllaDB's shard-aware routing).

    Against Cassandra (the local stack) there are no shards: shard awareness does not apply.
    """
    if not cluster.is_shard_aware():
        return {
            "shard_aware": False,
            "all_shards_connected": False,
            "note": "not ScyllaDB (no sharding info): shard awareness does not apply",
        }
    stats = cluster.shard_aware_stats() or {}
    return {
        "shard_aware": True,
        "all_shards_connected": all(
            host["connected"] >= host["shards_count"] for host in stats.values()
        ),
        "hosts": stats,
    }


class ScyllaStore:
    """Reads the model tables. Implements `ModelStore` and `NeighbourReader`."""

    def __init__(
        self,
        session: Any,
        executor: Executor,
        *,
        keyspace: str,
        timeout_s: float,
        in_chunk: int,
    ) -> None:
        self._session = session
        self._executor = executor
        self._timeout_s = timeout_s
        self._in_chunk = in_chunk
        ks = keyspace
        self._select_neighbours = session.prepare(
            f"SELECT item_id, neighbour_ids, scores FROM {ks}.neighbours "
            "WHERE model_version = ? AND item_id IN ?"
        )
        self._select_active = session.prepare(
            f"SELECT active_version FROM {ks}.model_versions WHERE model = ? LIMIT 1"
        )
        self._select_popular = session.prepare(
            f"SELECT segment, item_ids, scores FROM {ks}.popular WHERE model_version = ?"
        )
        self._select_chunk_count = session.prepare(
            f"SELECT row_count FROM {ks}.model_versions WHERE model = ? AND version = ?"
        )
        self._select_chunk = session.prepare(
            f"SELECT item_ids, dim, vectors FROM {ks}.embedding_chunks "
            "WHERE model_version = ? AND chunk = ?"
        )

    async def _in_pool(self, fn: Callable[..., R], *args: Any) -> R:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    # --- NeighbourReader -------------------------------------------------------------
    async def neighbours(self, version: str, item_ids: Sequence[str]) -> dict[str, ScoredList]:
        if not item_ids:
            return {}
        return await self._in_pool(self._read_neighbours, version, list(item_ids))

    def _read_neighbours(self, version: str, item_ids: list[str]) -> dict[str, ScoredList]:
        execute_async = self._session.execute_async
        chunk = self._in_chunk
        futures = [
            execute_async(
                self._select_neighbours,
                (version, item_ids[start : start + chunk]),
                timeout=self._timeout_s,
            )
            for start in range(0, len(item_ids), chunk)
        ]
        found: dict[str, ScoredList] = {}
        for future in futures:
            for item_id, neighbour_ids, scores in future.result():
                found[item_id] = ScoredList(tuple(neighbour_ids or ()), tuple(scores or ()))
        return found

    # --- ModelStore ------------------------------------------------------------------
    async def active_versions(self) -> dict[str, str]:
        return await self._in_pool(self._read_active)

    def _read_active(self) -> dict[str, str]:
        futures = {
            model: self._session.execute_async(
                self._select_active, (model,), timeout=self._timeout_s
            )
            for model in MODELS
        }
        active: dict[str, str] = {}
        for model, future in futures.items():
            row = future.result().one()
            if row is not None and row[0]:
                active[model] = row[0]
        return active

    async def popular_lists(self, version: str) -> dict[str, ScoredList]:
        return await self._in_pool(self._read_popular, version)

    def _read_popular(self, version: str) -> dict[str, ScoredList]:
        rows = self._session.execute(self._select_popular, (version,), timeout=self._timeout_s * 5)
        return {
            segment: ScoredList(tuple(ids or ()), tuple(scores or ()))
            for segment, ids, scores in rows
        }

    async def embeddings(self, version: str) -> EmbeddingTable:
        return await self._in_pool(self._read_embeddings, version)

    def _read_embeddings(self, version: str) -> EmbeddingTable:
        """Every chunk of the version, all in flight at once, validated as a file would be."""
        import numpy as np

        timeout = self._timeout_s * 50  # a version's load, not a request's read
        row = self._session.execute(
            self._select_chunk_count, (EMBEDDINGS_MODEL, version), timeout=timeout
        ).one()
        chunks = row[0] if row is not None and row[0] is not None else 0
        futures = [
            self._session.execute_async(self._select_chunk, (version, chunk), timeout=timeout)
            for chunk in range(chunks)
        ]
        item_ids: list[str] = []
        blocks = []
        dims = set()
        for chunk, future in enumerate(futures):
            found = future.result().one()
            if found is None:
                raise ValueError(f"embeddings {version}: chunk {chunk} of {chunks} is missing")
            ids, dim, data = found
            item_ids += ids
            dims.add(dim)
            blocks.append(np.frombuffer(data, dtype="<f4").reshape(len(ids), dim))
        if len(dims) > 1:
            raise ValueError(f"embeddings {version}: chunks of dimensions {sorted(dims)}")
        vectors = np.concatenate(blocks) if blocks else np.zeros((0, 1), dtype=np.float32)
        return table_from_arrays(item_ids, vectors, f"embeddings {version}")

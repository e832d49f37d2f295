"""Publishing neighbour and popular lists into ScyllaDB as a new model version.

    begin (status loading) -> concurrent prepared writes -> verify row counts
      -> one write: status ready + active_version -> clean up old versions

A load that fails or is interrupted leaves its version `loading` and never active: the
service keeps serving the previous version. The version id comes from the input's content,
so re-running a load rewrites the same version (idempotent) or, if it was already published,
only re-activates it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from cassandra.concurrent import execute_concurrent, execute_concurrent_with_args
from cassandra.query import BatchStatement, BatchType
from tqdm import tqdm

from app.embeddings import EmbeddingTable
from app.publishing import versions
from app.sources.base import EMBEDDINGS_MODEL, NEIGHBOURS_MODEL, POPULAR_MODEL

Ranked = Mapping[str, Sequence[tuple[str, float]]]

_INDEX_BATCH = 100


class VerificationError(RuntimeError):
    """What was read back does not match what was written: the version stays inactive."""


@dataclass(slots=True)
class PublishResult:
    model: str
    version: str
    items: int
    rows: int
    activated: bool
    reused: bool = False
    seconds: float = 0.0
    deleted: list[str] = field(default_factory=list)

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


def publish_neighbours(
    session: Any,
    keyspace: str,
    lists: Ranked,
    *,
    version: str,
    source: str,
    activate: bool = True,
    keep: int = 3,
    clean_up: bool = True,
    concurrency: int = 128,
    progress: bool = True,
) -> PublishResult:
    def write() -> None:
        insert = session.prepare(
            f"INSERT INTO {keyspace}.neighbours (model_version, item_id, neighbour_ids, scores) "
            "VALUES (?, ?, ?, ?)"
        )
        index = session.prepare(
            f"INSERT INTO {keyspace}.version_items (model_version, bucket, item_id) "
            "VALUES (?, ?, ?)"
        )

        def statements() -> Iterator[tuple[Any, Any]]:
            for item_id, neighbours in lists.items():
                yield (
                    insert,
                    (version, item_id, [n for n, _ in neighbours], [s for _, s in neighbours]),
                )
            # The version's item index: single-partition unlogged batches (one bucket each,
            # at most _INDEX_BATCH rows, well under the 5 kB batch warning), not one
            # statement per item.
            for bucket, item_ids in _by_bucket(lists).items():
                for start in range(0, len(item_ids), _INDEX_BATCH):
                    batch = BatchStatement(batch_type=BatchType.UNLOGGED)
                    for item_id in item_ids[start : start + _INDEX_BATCH]:
                        batch.add(index, (version, bucket, item_id))
                    yield batch, None

        sizes = [len(neighbours) for neighbours in lists.values()]
        with _progress(sum(sizes), f"neighbours {version}", progress) as bar:
            results = execute_concurrent(
                session,
                statements(),
                concurrency=concurrency,
                raise_on_first_error=True,
                results_generator=True,
            )
            for position, (ok, result) in enumerate(results):  # in submission order
                if not ok:  # pragma: no cover - raise_on_first_error raises first
                    raise result
                if position < len(sizes):
                    bar.update(sizes[position])

    return _publish(
        session,
        keyspace,
        NEIGHBOURS_MODEL,
        version,
        items=len(lists),
        rows=sum(len(entries) for entries in lists.values()),
        source=source,
        activate=activate,
        keep=keep if clean_up else None,
        write=write,
        count_written=lambda: count_neighbour_partitions(session, keyspace, version, list(lists)),
    )


def publish_popular(
    session: Any,
    keyspace: str,
    lists: Ranked,
    *,
    version: str,
    source: str,
    activate: bool = True,
    keep: int = 3,
    clean_up: bool = True,
) -> PublishResult:
    def write() -> None:
        insert = session.prepare(
            f"INSERT INTO {keyspace}.popular (model_version, segment, item_ids, scores) "
            "VALUES (?, ?, ?, ?)"
        )
        params = [
            (version, segment, [i for i, _ in items], [s for _, s in items])
            for segment, items in lists.items()
        ]
        for ok, result in execute_concurrent_with_args(
            session, insert, params, concurrency=32, raise_on_first_error=True
        ):
            if not ok:  # pragma: no cover
                raise result

    def count_written() -> int:
        row = session.execute(
            f"SELECT COUNT(*) FROM {keyspace}.popular WHERE model_version = %s", (version,)
        ).one()
        return int(row[0])

    return _publish(
        session,
        keyspace,
        POPULAR_MODEL,
        version,
        items=len(lists),
        rows=sum(len(entries) for entries in lists.values()),
        source=source,
        activate=activate,
        keep=keep if clean_up else None,
        write=write,
        count_written=count_written,
    )


EMBEDDING_CHUNK_ITEMS: Final = 1000


def publish_embeddings(
    session: Any,
    keyspace: str,
    table: EmbeddingTable,
    *,
    version: str,
    source: str,
    activate: bool = True,
    keep: int = 3,
    clean_up: bool = True,
) -> PublishResult:
    """An embeddings version: its vectors in chunks of EMBEDDING_CHUNK_ITEMS items (float32
    blobs). The version records its items as `item_count` and its chunks as `row_count`,
    the chunk count before the first chunk is written, so a clean-up finds every chunk."""
    chunks = math.ceil(len(table) / EMBEDDING_CHUNK_ITEMS)
    vectors = table.vectors.astype("<f4", copy=False)

    def write() -> None:
        session.execute(
            f"UPDATE {keyspace}.model_versions SET row_count = %s "
            "WHERE model = %s AND version = %s",
            (chunks, EMBEDDINGS_MODEL, version),
        )
        insert = session.prepare(
            f"INSERT INTO {keyspace}.embedding_chunks (model_version, chunk, item_ids, dim, "
            "vectors) VALUES (?, ?, ?, ?, ?)"
        )

        def params() -> Iterator[tuple[Any, ...]]:
            for chunk in range(chunks):
                rows = slice(chunk * EMBEDDING_CHUNK_ITEMS, (chunk + 1) * EMBEDDING_CHUNK_ITEMS)
                yield version, chunk, list(table.item_ids[rows]), table.dim, vectors[rows].tobytes()

        for ok, result in execute_concurrent_with_args(
            session, insert, params(), concurrency=16, raise_on_first_error=True
        ):
            if not ok:  # pragma: no cover - raise_on_first_error raises first
                raise result

    def count_written() -> int:
        select = session.prepare(
            f"SELECT chunk FROM {keyspace}.embedding_chunks WHERE model_version = ? AND chunk = ?"
        )
        present = 0
        for ok, result in execute_concurrent_with_args(
            session, select, ((version, chunk) for chunk in range(chunks)), concurrency=32
        ):
            if ok:
                present += len(list(result))
        return present

    return _publish(
        session,
        keyspace,
        EMBEDDINGS_MODEL,
        version,
        items=chunks,
        rows=chunks,
        source=source,
        activate=activate,
        keep=keep if clean_up else None,
        write=write,
        count_written=count_written,
    )


def _publish(
    session: Any,
    keyspace: str,
    model: str,
    version: str,
    *,
    items: int,
    rows: int,
    source: str,
    activate: bool,
    keep: int | None,
    write: Callable[[], None],
    count_written: Callable[[], int],
) -> PublishResult:
    """The publishing sequence every model shares; `write` and `count_written` are its own.

    `items` keys are written as `count_written` counts them back (items or segments, one row
    each written whole; chunks of embeddings), `rows` are the entries they hold. `keep`
    None: no cleanup (a gated load cleans up only once its version is activated).
    """
    if versions.status_of(session, keyspace, model, version) == versions.STATUS_READY:
        return _reuse(session, keyspace, model, version, items, rows, activate, keep)
    started = time.perf_counter()
    versions.begin(session, keyspace, model, version, source)
    write()
    present = count_written()
    if present != items:
        raise VerificationError(f"{model} {version}: wrote {items} keys, read back {present}")
    versions.publish(
        session, keyspace, model, version, item_count=items, row_count=rows, activate=activate
    )
    seconds = time.perf_counter() - started
    deleted = [] if keep is None else versions.cleanup(session, keyspace, model, keep=keep)
    return PublishResult(model, version, items, rows, activate, False, seconds, deleted)


def count_neighbour_partitions(
    session: Any, keyspace: str, version: str, item_ids: Sequence[str]
) -> int:
    """How many of `item_ids` have a neighbours row in `version` (IN reads of 100 keys)."""
    select = session.prepare(
        f"SELECT item_id FROM {keyspace}.neighbours WHERE model_version = ? AND item_id IN ?"
    )
    chunks = [(version, list(item_ids[i : i + 100])) for i in range(0, len(item_ids), 100)]
    present = 0
    for ok, result in execute_concurrent_with_args(
        session, select, chunks, concurrency=32, raise_on_first_error=True
    ):
        if not ok:  # pragma: no cover
            raise result
        present += len(list(result))
    return present


def _by_bucket(lists: Ranked) -> dict[int, list[str]]:
    buckets: dict[int, list[str]] = {}
    for item_id in lists:
        buckets.setdefault(versions.bucket_of(item_id), []).append(item_id)
    return buckets


def _reuse(
    session: Any,
    keyspace: str,
    model: str,
    version: str,
    items: int,
    rows: int,
    activate: bool,
    keep: int | None,
) -> PublishResult:
    """The same content was published before: only (re)activate it."""
    if activate:
        versions.activate(session, keyspace, model, version)
    deleted = [] if keep is None else versions.cleanup(session, keyspace, model, keep=keep)
    return PublishResult(model, version, items, rows, activate, reused=True, deleted=deleted)


def _progress(total: int, description: str, enabled: bool) -> tqdm[Any]:
    # Shown only for loads that last more than a couple of seconds.
    return tqdm(
        total=total,
        desc=description,
        unit=" rows",
        unit_scale=True,
        delay=2.0,
        disable=not enabled,
        mininterval=0.5,
    )

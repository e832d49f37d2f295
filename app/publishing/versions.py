"""Model versions in ScyllaDB: list, activate, roll back, clean up.

A model (`neighbours`, `popular`, `embeddings`) has one partition in `model_versions`;
each published version is a row, and `active_version` is a static column of the partition. So:

- activation is one single-partition write (atomic: the service sees the old or the new);
- publishing marks a version `ready` and activates it in that same single write;
- rollback activates the newest ready version created before the active one;
- the newest `keep` ready versions (always including the active one) stay loadable, and
  older ones are deleted with their data.

These run offline (the `recs` CLI), with the driver's blocking calls.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from cassandra.concurrent import execute_concurrent_with_args

from app.sources.base import EMBEDDINGS_MODEL, MODELS, POPULAR_MODEL

STATUS_LOADING: Final = "loading"
STATUS_READY: Final = "ready"
VERSION_BUCKETS: Final = 64
# A version still `loading` after this long was interrupted; cleanup may delete it.
STALE_LOADING_MS: Final = 6 * 3600 * 1000


class VersionError(RuntimeError):
    """A version operation that cannot be done (unknown version, nothing to roll back to)."""


@dataclass(frozen=True, slots=True)
class VersionInfo:
    model: str
    version: str
    status: str
    created_ms: int
    published_ms: int | None
    item_count: int | None
    row_count: int | None
    source: str | None
    active: bool


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def content_version(prefix: str, path: Path, *params: object) -> str:
    """A version id from the input's bytes and the load's parameters: the same load gives the
    same version, so re-running it is idempotent."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    digest.update(repr(params).encode())
    return f"{prefix}-{digest.hexdigest()[:12]}"


def bucket_of(item_id: str) -> int:
    return int.from_bytes(hashlib.blake2b(item_id.encode(), digest_size=2).digest()) % (
        VERSION_BUCKETS
    )


def list_versions(session: Any, keyspace: str, model: str) -> list[VersionInfo]:
    """Versions of a model, newest first."""
    _check_model(model)
    rows = session.execute(
        f"SELECT version, active_version, status, created_ms, published_ms, item_count, "
        f"row_count, source FROM {keyspace}.model_versions WHERE model = %s",
        (model,),
    )
    versions = [
        VersionInfo(
            model=model,
            version=row[0],
            status=row[2] or "",
            created_ms=row[3] or 0,
            published_ms=row[4],
            item_count=row[5],
            row_count=row[6],
            source=row[7],
            active=row[0] == row[1],
        )
        for row in rows
        if row[0] is not None
    ]
    return sorted(versions, key=lambda v: (v.created_ms, v.version), reverse=True)


def active_version(session: Any, keyspace: str, model: str) -> str | None:
    row = session.execute(
        f"SELECT active_version FROM {keyspace}.model_versions WHERE model = %s LIMIT 1",
        (model,),
    ).one()
    return row[0] if row is not None else None


def begin(session: Any, keyspace: str, model: str, version: str, source: str) -> None:
    """Record a version as loading (keeps its first created_ms when a load is re-run)."""
    existing = _version_row(session, keyspace, model, version)
    created_ms = existing[1] if existing is not None and existing[1] else now_ms()
    session.execute(
        f"UPDATE {keyspace}.model_versions SET status = %s, created_ms = %s, source = %s "
        "WHERE model = %s AND version = %s",
        (STATUS_LOADING, created_ms, source, model, version),
    )


def status_of(session: Any, keyspace: str, model: str, version: str) -> str | None:
    row = _version_row(session, keyspace, model, version)
    return row[0] if row is not None else None


def publish(
    session: Any,
    keyspace: str,
    model: str,
    version: str,
    *,
    item_count: int,
    row_count: int,
    activate: bool,
) -> None:
    """Mark a verified version ready and, in the same single-partition write, activate it."""
    if activate:
        session.execute(
            f"UPDATE {keyspace}.model_versions SET status = %s, published_ms = %s, "
            "item_count = %s, row_count = %s, active_version = %s "
            "WHERE model = %s AND version = %s",
            (STATUS_READY, now_ms(), item_count, row_count, version, model, version),
        )
    else:
        session.execute(
            f"UPDATE {keyspace}.model_versions SET status = %s, published_ms = %s, "
            "item_count = %s, row_count = %s WHERE model = %s AND version = %s",
            (STATUS_READY, now_ms(), item_count, row_count, model, version),
        )


def activate(session: Any, keyspace: str, model: str, version: str) -> None:
    _check_model(model)
    status = status_of(session, keyspace, model, version)
    if status is None:
        raise VersionError(f"{model} version {version!r} does not exist")
    if status != STATUS_READY:
        raise VersionError(f"{model} version {version!r} is {status}, not ready")
    session.execute(
        f"UPDATE {keyspace}.model_versions SET active_version = %s WHERE model = %s",
        (version, model),
    )


def rollback(session: Any, keyspace: str, model: str) -> str:
    """Activate the newest ready version created before the active one; returns it."""
    versions = list_versions(session, keyspace, model)
    active = next((v for v in versions if v.active), None)
    if active is None:
        raise VersionError(f"{model} has no active version to roll back from")
    older = [
        v
        for v in versions
        if v.status == STATUS_READY
        and (v.created_ms, v.version) < (active.created_ms, active.version)
    ]
    if not older:
        raise VersionError(f"{model} has no ready version older than {active.version}")
    activate(session, keyspace, model, older[0].version)
    return older[0].version


def cleanup(session: Any, keyspace: str, model: str, *, keep: int) -> list[str]:
    """Delete versions beyond the newest `keep` ready ones (never the active one), and loads
    interrupted long ago. Returns the deleted versions."""
    versions = list_versions(session, keyspace, model)
    ready = [v for v in versions if v.status == STATUS_READY]
    kept = {v.version for v in ready[: max(keep, 1)]} | {v.version for v in versions if v.active}
    cutoff = now_ms() - STALE_LOADING_MS
    doomed = [
        v
        for v in versions
        if v.version not in kept and (v.status == STATUS_READY or v.created_ms < cutoff)
    ]
    for version in doomed:
        delete_version_data(session, keyspace, model, version.version)
        session.execute(
            f"DELETE FROM {keyspace}.model_versions WHERE model = %s AND version = %s",
            (model, version.version),
        )
    return [v.version for v in doomed]


def delete_version_data(session: Any, keyspace: str, model: str, version: str) -> None:
    if model == POPULAR_MODEL:
        session.execute(f"DELETE FROM {keyspace}.popular WHERE model_version = %s", (version,))
        return
    if model == EMBEDDINGS_MODEL:
        row = session.execute(
            f"SELECT row_count FROM {keyspace}.model_versions WHERE model = %s AND version = %s",
            (model, version),
        ).one()
        delete_chunk = session.prepare(
            f"DELETE FROM {keyspace}.embedding_chunks WHERE model_version = ? AND chunk = ?"
        )
        # The chunk count is recorded before the first chunk is written (publish_embeddings).
        chunks = row[0] if row is not None and row[0] is not None else 0
        _run_all(session, delete_chunk, ((version, chunk) for chunk in range(chunks)))
        return
    select = session.prepare(
        f"SELECT item_id FROM {keyspace}.version_items WHERE model_version = ? AND bucket = ?"
    )
    delete_item = session.prepare(
        f"DELETE FROM {keyspace}.neighbours WHERE model_version = ? AND item_id = ?"
    )
    delete_bucket = session.prepare(
        f"DELETE FROM {keyspace}.version_items WHERE model_version = ? AND bucket = ?"
    )
    for bucket in range(VERSION_BUCKETS):
        item_ids = [row[0] for row in session.execute(select, (version, bucket))]
        _run_all(session, delete_item, ((version, item_id) for item_id in item_ids))
        session.execute(delete_bucket, (version, bucket))


def _run_all(session: Any, statement: Any, params: Iterable[tuple[Any, ...]]) -> None:
    for ok, result in execute_concurrent_with_args(
        session, statement, params, concurrency=64, raise_on_first_error=True
    ):
        if not ok:  # pragma: no cover - raise_on_first_error raises first
            raise result


def _version_row(session: Any, keyspace: str, model: str, version: str) -> Any:
    return session.execute(
        f"SELECT status, created_ms FROM {keyspace}.model_versions "
        "WHERE model = %s AND version = %s",
        (model, version),
    ).one()


def _check_model(model: str) -> None:
    if model not in MODELS:
        raise VersionError(f"unknown model {model!r}: one of {', '.join(MODELS)}")

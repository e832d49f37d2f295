"""The embeddings model: one vector per item, its file, and its nearest-neighbour index.

File: a NumPy `.npz` archive with two arrays, `item_ids` (strings, valid ids, unique) and
`vectors` (floats, one row per id, one dimension for all, 1 to 2048 columns, finite, not all
zero). Rows are scaled to unit length on reading, so inner product is cosine similarity. A
million 64-dimension rows load in about a second (`np.load`, no parsing). A bad row stops the
read with `path: row N (item 'id'): reason`, N counting from 1.

Index: an HNSW graph (faiss `IndexHNSWFlat`, inner product; docs/embeddings.md has the
comparison that chose faiss). After building, the search breadth `ef` is calibrated on the
version's own vectors: 200 queries shaped like the feed's user vectors (the mean of an item
and its two nearest items, as a session's items are related) are answered exactly (matrix
products, a block of rows at a time) and by the graph, and `ef` doubles from 32 until
recall@50 reaches the target (0.95) or `max_ef`. So each version pays the search breadth its
own data needs: structured vectors little, random ones much more.

A user's vector is the seed-weighted mean of their recent items' vectors (the feed's own
recency and event weights), scaled to unit length.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from app.domain import ID_CHARSET_DESCRIPTION, is_valid_id

__all__ = [
    "MAX_DIM",
    "AnnIndex",
    "EmbeddingTable",
    "EmbeddingsError",
    "IndexConfig",
    "estimate_index_bytes",
    "read_embeddings",
    "table_from_arrays",
    "write_embeddings",
]

MAX_DIM: Final = 2048
CALIBRATION_QUERIES: Final = 200
CALIBRATION_K: Final = 50
_FIRST_EF: Final = 32
_EXACT_BLOCK: Final = 65_536

Vectors = npt.NDArray[np.float32]


class EmbeddingsError(ValueError):
    """Vectors that cannot be served: `source: [row N (item 'x'): ]reason` for a bad file or
    table, or a version too large to index."""


@dataclass(frozen=True, slots=True)
class EmbeddingTable:
    """Items and their unit vectors, row i for `item_ids[i]`."""

    item_ids: tuple[str, ...]
    vectors: Vectors
    positions: Mapping[str, int]

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def __len__(self) -> int:
        return len(self.item_ids)

    def user_vector(self, weights: Mapping[str, float]) -> Vectors | None:
        """The weighted mean of the known items' vectors, unit length (None: none known)."""
        rows = []
        factors = []
        for item_id, weight in weights.items():
            row = self.positions.get(item_id)
            if row is not None and weight > 0:
                rows.append(row)
                factors.append(weight)
        if not rows:
            return None
        mean = np.asarray(factors, dtype=np.float32) @ self.vectors[rows]
        norm = float(np.linalg.norm(mean))
        return None if norm == 0.0 or not math.isfinite(norm) else mean / norm


def table_from_arrays(item_ids: Iterable[Any], vectors: Any, source: str) -> EmbeddingTable:
    """Validate ids and vectors (see the module doc) and scale rows to unit length."""
    ids = [str(item) for item in item_ids]
    matrix = np.asarray(vectors)
    if matrix.ndim != 2:
        raise EmbeddingsError(f"{source}: vectors must be a 2-D array, got {matrix.ndim}-D")
    if matrix.shape[0] != len(ids):
        raise EmbeddingsError(
            f"{source}: {len(ids)} item_ids for {matrix.shape[0]} vectors: one id per row"
        )
    if not 1 <= matrix.shape[1] <= MAX_DIM:
        raise EmbeddingsError(f"{source}: dimension {matrix.shape[1]}, expected 1 to {MAX_DIM}")
    if not np.issubdtype(matrix.dtype, np.number) or np.issubdtype(
        matrix.dtype, np.complexfloating
    ):
        raise EmbeddingsError(f"{source}: vectors must be real numbers, got {matrix.dtype}")
    matrix = matrix.astype(np.float32)
    finite = np.isfinite(matrix).all(axis=1)
    norms = np.linalg.norm(matrix, axis=1)
    positions: dict[str, int] = {}
    for row, item_id in enumerate(ids):
        problem = None
        if not is_valid_id(item_id):
            problem = f"item_id is not a valid id ({ID_CHARSET_DESCRIPTION})"
        elif item_id in positions:
            problem = f"item_id repeats row {positions[item_id] + 1}"
        elif not finite[row]:
            problem = "vector has a value that is not a finite number"
        elif norms[row] == 0.0:
            problem = "vector is all zeros (no direction to compare)"
        if problem is not None:
            raise EmbeddingsError(f"{source}: row {row + 1} (item {item_id[:80]!r}): {problem}")
        positions[item_id] = row
    unit = np.ascontiguousarray(matrix / norms[:, None], dtype=np.float32)
    return EmbeddingTable(tuple(ids), unit, positions)


def read_embeddings(path: Path) -> EmbeddingTable:
    """An embeddings `.npz` file, validated (see the module doc)."""
    source = os.fspath(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [name for name in ("item_ids", "vectors") if name not in archive.files]
            if missing:
                raise EmbeddingsError(
                    f"{source}: missing array {', '.join(missing)} "
                    f"(found: {', '.join(archive.files) or 'none'})"
                )
            item_ids = archive["item_ids"]
            vectors = archive["vectors"]
    except (OSError, ValueError) as exc:
        if isinstance(exc, EmbeddingsError):
            raise
        raise EmbeddingsError(f"{source}: not a readable .npz archive: {exc}") from None
    if item_ids.ndim != 1 or item_ids.dtype.kind not in "US":
        raise EmbeddingsError(f"{source}: item_ids must be a 1-D array of strings")
    return table_from_arrays(item_ids.tolist(), vectors, source)


def write_embeddings(path: Path, item_ids: Iterable[str], vectors: Any) -> None:
    """Write an embeddings file atomically (ids as a string array, vectors as float32)."""
    ids = np.asarray(list(item_ids), dtype=np.str_)
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with temporary.open("wb") as handle:
            np.savez(handle, item_ids=ids, vectors=np.asarray(vectors, dtype=np.float32))
        temporary.replace(path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


@dataclass(frozen=True, slots=True)
class IndexConfig:
    m: int = 32
    """Graph degree (links per node)."""
    ef_construction: int = 200
    recall_target: float = 0.95
    max_ef: int = 1024
    threads: int = 1
    """Threads building the graph. One: insertion order then decides the graph, so every
    replica builds the same one and answers a user alike (searches use the caller's thread)."""


def estimate_index_bytes(count: int, dim: int, m: int) -> int:
    """Resident size of a version: its float32 vectors twice (the table's and the graph's)
    and the graph's links (2m 4-byte links on the base layer, plus the upper layers and
    offsets: 64 bytes). A million 64-dimension vectors at m 32: 832 MB (docs/embeddings.md
    compares it with the measured size)."""
    return count * (2 * 4 * dim + 4 * 2 * m + 64)


class AnnIndex:
    """One version's vectors and HNSW graph. Building blocks: call it from a thread."""

    def __init__(
        self, table: EmbeddingTable, index: Any, config: IndexConfig, ef: int, recall: float
    ) -> None:
        self.table = table
        self._index = index
        self.config = config
        self.ef = ef
        self.recall = recall
        self.build_seconds = 0.0

    @classmethod
    def build(cls, table: EmbeddingTable, config: IndexConfig) -> AnnIndex:
        import faiss

        started = time.perf_counter()
        faiss.omp_set_num_threads(config.threads)
        index = faiss.IndexHNSWFlat(table.dim, config.m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = config.ef_construction
        index.add(table.vectors)
        # One query at a time: threads would only contend with the event loop.
        faiss.omp_set_num_threads(1)
        ef, recall = _calibrate(index, table.vectors, config)
        built = cls(table, index, config, ef, recall)
        built.build_seconds = time.perf_counter() - started
        return built

    @property
    def memory_bytes(self) -> int:
        return estimate_index_bytes(len(self.table), self.table.dim, self.config.m)

    def search(self, vector: Vectors, count: int) -> dict[str, float]:
        """The `count` items most similar to `vector`: item → cosine similarity."""
        count = min(count, len(self.table))
        if count <= 0:
            return {}
        self._index.hnsw.efSearch = max(self.ef, count)
        scores, rows = self._index.search(vector.reshape(1, -1), count)
        item_ids = self.table.item_ids
        return {
            item_ids[row]: float(score)
            for row, score in zip(rows[0].tolist(), scores[0].tolist(), strict=True)
            if row >= 0
        }

    def similar(self, item_id: str, count: int) -> dict[str, float]:
        """The `count` items most similar to one item (itself left out); {} if unknown."""
        row = self.table.positions.get(item_id)
        if row is None:
            return {}
        found = self.search(self.table.vectors[row], count + 1)
        found.pop(item_id, None)
        return found


def _calibrate(index: Any, vectors: Vectors, config: IndexConfig) -> tuple[int, float]:
    """The smallest doubling of ef whose recall@50 reaches the target (see the module doc)."""
    count = len(vectors)
    k = min(CALIBRATION_K, count)
    rng = np.random.default_rng(0)
    # A user's recent items are related: each query is the mean of an item and its two
    # nearest items, as the feed's user vector is the mean of a session's items.
    items = vectors[rng.integers(0, count, size=CALIBRATION_QUERIES)]
    nearest = _exact_top(items, vectors, min(3, count))
    queries = vectors[nearest].mean(axis=1)
    queries /= np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-12)
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    truth = [set(row.tolist()) for row in _exact_top(queries, vectors, k)]
    ef = _FIRST_EF
    while True:
        index.hnsw.efSearch = max(ef, k)
        _, found = index.search(queries, k)
        recall = sum(len(truth[i] & set(found[i].tolist())) for i in range(len(truth))) / (
            k * len(truth)
        )
        if recall >= config.recall_target or ef >= config.max_ef:
            return ef, recall
        ef *= 2


def _exact_top(queries: Vectors, vectors: Vectors, k: int) -> npt.NDArray[np.int64]:
    """Rows of the k largest inner products per query, a block of rows at a time (memory:
    queries x block, not queries x all rows)."""
    kept_scores = []
    kept_rows = []
    for start in range(0, len(vectors), _EXACT_BLOCK):
        scores = queries @ vectors[start : start + _EXACT_BLOCK].T
        top = np.argpartition(-scores, min(k, scores.shape[1]) - 1, axis=1)[:, :k]
        kept_scores.append(np.take_along_axis(scores, top, axis=1))
        kept_rows.append(top + start)
    scores = np.concatenate(kept_scores, axis=1)
    rows = np.concatenate(kept_rows, axis=1)
    best = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    return np.take_along_axis(rows, best, axis=1)

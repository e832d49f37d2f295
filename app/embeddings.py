"""The embeddings model: one vector per item, its file, and its nearest-neighbour index.

File: a NumPy `.npz` archive with two arrays, `item_ids` (strings, valid ids, unique) and
`vectors` (floats, one row per id, one dimension for all, 1 to 2048 columns, finite, not all
zero). Rows are scaled to unit length on reading, so inner product is cosine similarity. A
million 64-dimension rows load in about a second (`np.load`, no parsing). A bad row stops the
read with `path: row N (item 'id'): reason`, N counting from 1.

Index: an HNSW graph (faiss `IndexHNSWFlat`) below `IndexConfig.ivf_min_vectors` vectors, an
IVF index from there on, since a graph's build time grows past minutes where IVF's stays in
seconds (docs/embeddings.md has the measurements). IVF: k-means, on a fixed sample with a
fixed seed, cuts the space into 4 × sqrt(N) lists; each vector is stored in its nearest
list's as a 4-bit code per dimension (faiss fast-scan `IndexIVFPQFastScan`); a search scans
the lists nearest the query and re-ranks the best 8 × k exactly (`IndexRefineFlat`). Both
use inner product. After building, the search breadth (the graph's `ef`, IVF's lists searched)
is calibrated on the version's own vectors: 200 queries shaped like the feed's user vectors
(the mean of an item and its two nearest items, as a session's items are related) are
answered exactly (matrix products, a block of rows at a time) and by the index, and the
breadth doubles (`ef` from 32 to `max_ef`, lists from 1 to all) until recall@50 reaches the
target (0.95). So each version pays the search breadth its own data needs: structured vectors
little, random ones much more.

A user's vector is the seed-weighted mean of their recent items' vectors (the feed's own
recency and event weights), scaled to unit length.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt

from app.domain import ID_CHARSET_DESCRIPTION, is_valid_id

__all__ = [
    "MAX_DIM",
    "AnnIndex",
    "EmbeddingTable",
    "EmbeddingsError",
    "IndexConfig",
    "IndexKind",
    "estimate_index_bytes",
    "ivf_lists",
    "read_embeddings",
    "table_from_arrays",
    "write_embeddings",
]

MAX_DIM: Final = 2048
CALIBRATION_QUERIES: Final = 200
CALIBRATION_K: Final = 50
_FIRST_EF: Final = 32
_EXACT_BLOCK: Final = 65_536
_IVF_LEAST: Final = 1_000  # fewer vectors train no useful lists
_LISTS_PER_ROOT: Final = 4
_TRAIN_PER_LIST: Final = 40
_KMEANS_ITERATIONS: Final = 10
_REFINE_FACTOR: Final = 8
_FAST_SCAN_BLOCK: Final = 32
_SEED: Final = 1234

Vectors = npt.NDArray[np.float32]
IndexKind = Literal["hnsw", "ivf"]


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
    """HNSW graph degree (links per node)."""
    ef_construction: int = 200
    recall_target: float = 0.95
    max_ef: int = 1024
    ivf_min_vectors: int = 50_000
    """Versions with at least this many vectors get the IVF index, smaller ones the graph."""
    threads: int = 1
    """Threads building the index. One: the build then follows one fixed order, so every
    replica builds the same index and answers a user alike (searches use the caller's thread)."""

    def __post_init__(self) -> None:
        if self.ivf_min_vectors < _IVF_LEAST:
            raise ValueError(f"ivf_min_vectors {self.ivf_min_vectors} is under {_IVF_LEAST}")

    def kind(self, count: int) -> IndexKind:
        """The index a version of `count` vectors gets."""
        return "ivf" if count >= self.ivf_min_vectors else "hnsw"


def ivf_lists(count: int) -> int:
    """Inverted lists of an IVF index over `count` vectors: 4 × sqrt(count), each trained on
    at least 40 vectors."""
    return max(1, min(round(_LISTS_PER_ROOT * math.sqrt(count)), count // _TRAIN_PER_LIST))


def estimate_index_bytes(count: int, dim: int, config: IndexConfig) -> int:
    """Resident size of a version: its float32 vectors twice (the table's and the index's own
    copy), and for the graph its links (2m 4-byte links on the base layer, plus the upper
    layers and offsets: 64 bytes), for IVF a 4-bit code per dimension and an 8-byte id, twice
    (the lists grow a batch at a time: spare capacity and the blocks they left), and each
    list's centroid and last, partly filled block of codes. docs/embeddings.md compares it
    with the measured size."""
    if config.kind(count) == "hnsw":
        return count * (2 * 4 * dim + 4 * 2 * config.m + 64)
    code = (dim + 1) // 2
    lists = ivf_lists(count)
    return count * (2 * 4 * dim + 2 * (code + 8)) + lists * (4 * dim + _FAST_SCAN_BLOCK * code)


class AnnIndex:
    """One version's vectors and its index. Building blocks: call it from a thread."""

    def __init__(
        self,
        table: EmbeddingTable,
        index: Any,
        config: IndexConfig,
        breadth: int,
        recall: float,
        lists: int = 0,
    ) -> None:
        self.table = table
        self._index = index
        self.config = config
        self.kind = config.kind(len(table))
        self.breadth = breadth
        """Search breadth: `ef` of the graph, or the lists searched (nprobe) of IVF."""
        self.recall = recall
        self.lists = lists
        self.build_seconds = 0.0
        self._params = _search_params(self.kind, breadth)

    @classmethod
    def build(cls, table: EmbeddingTable, config: IndexConfig) -> AnnIndex:
        import faiss

        started = time.perf_counter()
        faiss.omp_set_num_threads(config.threads)
        kind = config.kind(len(table))
        if kind == "hnsw":
            index = faiss.IndexHNSWFlat(table.dim, config.m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = config.ef_construction
            index.add(table.vectors)
            lists = 0
            first, last = _FIRST_EF, config.max_ef
        else:
            index, lists = _build_ivf(table.vectors)
            first, last = 1, lists
        faiss.omp_set_num_threads(1)  # calibration searches as requests do

        def search(queries: Vectors, k: int, breadth: int) -> npt.NDArray[np.int64]:
            least = _least_breadth(kind, len(table), lists, k)
            rows: npt.NDArray[np.int64] = index.search(
                queries, k, params=_search_params(kind, max(breadth, least))
            )[1]
            return rows

        breadth, recall = _calibrate(search, table.vectors, config.recall_target, first, last)
        built = cls(table, index, config, breadth, recall, lists)
        built.build_seconds = time.perf_counter() - started
        return built

    @property
    def memory_bytes(self) -> int:
        return estimate_index_bytes(len(self.table), self.table.dim, self.config)

    def search(self, vector: Vectors, count: int) -> dict[str, float]:
        """The `count` items most similar to `vector`: item → cosine similarity."""
        import faiss

        count = min(count, len(self.table))
        if count <= 0:
            return {}
        faiss.omp_set_num_threads(1)  # a per-thread setting: a team would contend with the loop
        breadth = max(self.breadth, _least_breadth(self.kind, len(self.table), self.lists, count))
        params = self._params if breadth == self.breadth else _search_params(self.kind, breadth)
        scores, rows = self._index.search(vector.reshape(1, -1), count, params=params)
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


def _build_ivf(vectors: Vectors) -> tuple[Any, int]:
    """Inverted lists of 4-bit codes (fast-scan product quantizer, one code per dimension)
    whose best candidates are re-ranked on the exact vectors, trained on a fixed sample."""
    import faiss

    count, dim = vectors.shape
    lists = ivf_lists(count)
    coarse = faiss.IndexIVFPQFastScan(
        faiss.IndexFlatIP(dim), dim, lists, dim, 4, faiss.METRIC_INNER_PRODUCT
    )
    coarse.cp.niter = _KMEANS_ITERATIONS
    coarse.cp.seed = _SEED
    coarse.pq.cp.seed = _SEED
    index = faiss.IndexRefineFlat(coarse)
    sample = np.random.default_rng(_SEED).choice(
        count, size=min(count, _TRAIN_PER_LIST * lists), replace=False
    )
    index.train(vectors[np.sort(sample)])
    index.add(vectors)
    return index, lists


def _least_breadth(kind: IndexKind, count: int, lists: int, k: int) -> int:
    """The least breadth that can return k items: the graph's ef, or IVF lists holding 2k."""
    return k if kind == "hnsw" else math.ceil(2 * k * lists / count)


def _search_params(kind: IndexKind, breadth: int) -> Any:
    import faiss

    lib: Any = faiss  # its stubs lack the search parameters' classes and keywords
    if kind == "hnsw":
        return lib.SearchParametersHNSW(efSearch=breadth)
    return lib.IndexRefineSearchParameters(
        k_factor=_REFINE_FACTOR, base_index_params=lib.SearchParametersIVF(nprobe=breadth)
    )


def _calibrate(
    search: Callable[[Vectors, int, int], npt.NDArray[np.int64]],
    vectors: Vectors,
    target: float,
    first: int,
    last: int,
) -> tuple[int, float]:
    """The smallest doubling of the breadth from `first` whose recall@50 reaches `target`, or
    `last` (see the module doc)."""
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
    breadth = min(first, last)
    while True:
        found = search(queries, k, breadth)
        recall = sum(len(truth[i] & set(found[i].tolist())) for i in range(len(truth))) / (
            k * len(truth)
        )
        if recall >= target or breadth >= last:
            return breadth, recall
        breadth = min(2 * breadth, last)


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

"""The embeddings model: its file and the index's answers (graph and IVF), against exact
search."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.embeddings import (
    AnnIndex,
    EmbeddingsError,
    IndexConfig,
    estimate_index_bytes,
    read_embeddings,
    table_from_arrays,
    write_embeddings,
)

# Each kind of index on the sets below (1,000 vectors or more): the graph, or IVF.
KINDS = {
    "hnsw": IndexConfig(m=16, ef_construction=100),
    "ivf": IndexConfig(ivf_min_vectors=1000),
}


def clustered(count: int, dim: int = 16, seed: int = 0) -> np.ndarray:
    """Vectors around 20 centres: the structure learned item vectors have."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((20, dim))
    return (centres[rng.integers(0, 20, count)] + 0.3 * rng.standard_normal((count, dim))).astype(
        np.float32
    )


def test_a_file_round_trips_with_rows_scaled_to_unit_length(tmp_path: Path) -> None:
    vectors = np.array([[3.0, 4.0], [0.0, -2.0]])
    write_embeddings(tmp_path / "e.npz", ["a", "b"], vectors)
    table = read_embeddings(tmp_path / "e.npz")
    assert table.item_ids == ("a", "b")
    assert table.dim == 2
    np.testing.assert_allclose(table.vectors, [[0.6, 0.8], [0.0, -1.0]])
    assert table.positions == {"a": 0, "b": 1}


@pytest.mark.parametrize(
    ("ids", "vectors", "message"),
    [
        (["a", "b b"], [[1.0], [1.0]], "row 2 (item 'b b'): item_id is not a valid id"),
        (["a", "a"], [[1.0], [2.0]], "row 2 (item 'a'): item_id repeats row 1"),
        (["a", "b"], [[1.0, 0.0], [np.nan, 1.0]], "row 2 (item 'b'): vector has a value"),
        (["a", "b"], [[1.0, 0.0], [np.inf, 1.0]], "row 2 (item 'b'): vector has a value"),
        (["a", "b"], [[1.0, 0.0], [0.0, 0.0]], "row 2 (item 'b'): vector is all zeros"),
        (["a"], [[1.0], [2.0]], "1 item_ids for 2 vectors"),
        (["a"], [1.0], "2-D array"),
        (["a"], np.ones((1, 2049)), "dimension 2049"),
    ],
)
def test_a_bad_file_is_refused_naming_its_row(
    tmp_path: Path, ids: list[str], vectors: object, message: str
) -> None:
    path = tmp_path / "bad.npz"
    np.savez(path, item_ids=np.asarray(ids), vectors=np.asarray(vectors))
    with pytest.raises(EmbeddingsError, match=rf"^{path}: .*") as caught:
        read_embeddings(path)
    assert message in str(caught.value)


def test_files_that_are_not_embeddings_are_refused(tmp_path: Path) -> None:
    (tmp_path / "text.npz").write_text("item_id,v\na,1\n")
    with pytest.raises(EmbeddingsError, match=r"not a readable \.npz"):
        read_embeddings(tmp_path / "text.npz")
    np.savez(tmp_path / "other.npz", ids=np.asarray(["a"]))
    with pytest.raises(EmbeddingsError, match="missing array item_ids, vectors"):
        read_embeddings(tmp_path / "other.npz")


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    unit: np.ndarray = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return unit.astype(np.float32)


def recall_at(index: AnnIndex, queries: np.ndarray, k: int) -> float:
    """The share of each query's exact k nearest items that the index returns."""
    table = index.table
    found = 0
    for query in queries:
        exact = np.argpartition(-(table.vectors @ query), k - 1)[:k]
        found += len({table.item_ids[row] for row in exact} & set(index.search(query, k)))
    return found / (k * len(queries))


@pytest.mark.parametrize("kind", KINDS)
def test_the_index_finds_what_exact_search_finds(kind: str) -> None:
    table = table_from_arrays([f"i{n}" for n in range(3000)], clustered(3000), "test")
    index = AnnIndex.build(table, KINDS[kind])
    assert index.kind == kind
    assert index.recall >= 0.95  # calibrated on its own queries
    rng = np.random.default_rng(9)
    found = 0
    for row in rng.integers(0, len(table), 50):
        query = table.vectors[row]
        exact = np.argsort(-(table.vectors @ query))[:20]
        answer = index.search(query, 20)
        found += len({table.item_ids[r] for r in exact} & set(answer))
        assert list(answer.values()) == sorted(answer.values(), reverse=True)
    assert found / (50 * 20) >= 0.95


def test_calibration_widens_the_search_until_the_recall_target() -> None:
    random = np.random.default_rng(3).standard_normal((4000, 32))  # no structure: hard
    table = table_from_arrays([f"i{n}" for n in range(4000)], random, "test")
    narrow = AnnIndex.build(table, IndexConfig(m=8, ef_construction=40, recall_target=0.5))
    wide = AnnIndex.build(table, IndexConfig(m=8, ef_construction=40, recall_target=0.99))
    assert narrow.breadth < wide.breadth
    assert narrow.recall >= 0.5 and wide.recall >= 0.99


def test_ivf_meets_the_recall_target_on_random_vectors() -> None:
    """No structure at all, IVF's worst case: the calibration still finds its breadth."""
    rng = np.random.default_rng(5)
    table = table_from_arrays(
        [f"i{n}" for n in range(20_000)], rng.standard_normal((20_000, 16)), "r"
    )
    index = AnnIndex.build(table, IndexConfig(ivf_min_vectors=1000))
    assert index.kind == "ivf" and index.lists == 500
    assert index.recall >= 0.95 and index.breadth < index.lists
    assert recall_at(index, unit_rows(rng.standard_normal((100, 16))), 50) >= 0.95


def test_the_size_threshold_picks_the_index() -> None:
    config = IndexConfig(ivf_min_vectors=1000)
    vectors = clustered(1000)
    below = AnnIndex.build(
        table_from_arrays([f"i{n}" for n in range(999)], vectors[:999], "t"), config
    )
    at = AnnIndex.build(table_from_arrays([f"i{n}" for n in range(1000)], vectors, "t"), config)
    assert (below.kind, type(below._index).__name__) == ("hnsw", "IndexHNSWFlat")
    assert (at.kind, type(at._index).__name__) == ("ivf", "IndexRefineFlat")
    with pytest.raises(ValueError, match="ivf_min_vectors 999 is under 1000"):
        IndexConfig(ivf_min_vectors=999)


@pytest.mark.parametrize("kind", KINDS)
def test_the_memory_estimate_covers_what_the_index_holds(kind: str) -> None:
    import faiss

    table = table_from_arrays([f"i{n}" for n in range(5000)], clustered(5000, dim=64), "test")
    index = AnnIndex.build(table, KINDS[kind])
    held = table.vectors.nbytes + len(faiss.serialize_index(index._index))
    assert held <= index.memory_bytes <= 1.5 * held
    assert index.memory_bytes == estimate_index_bytes(5000, 64, KINDS[kind])


def test_similar_items_leave_the_item_out_and_unknown_items_get_nothing() -> None:
    table = table_from_arrays(["a", "b", "c"], [[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]], "test")
    index = AnnIndex.build(table, IndexConfig(threads=1))
    assert list(index.similar("a", 2)) == ["b", "c"]
    assert index.similar("nobody", 2) == {}


def test_a_users_vector_is_the_weighted_mean_of_their_items() -> None:
    table = table_from_arrays(["x", "y", "z"], [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], "test")
    vector = table.user_vector({"x": 3.0, "y": 1.0, "unknown": 5.0})
    assert vector is not None
    np.testing.assert_allclose(vector, np.array([3.0, 1.0]) / np.sqrt(10), rtol=1e-6)
    assert table.user_vector({"unknown": 1.0}) is None


@pytest.mark.parametrize("kind", KINDS)
def test_two_builds_of_a_version_are_the_same_index(kind: str) -> None:
    """Every replica indexes a version itself: they must serve a user the same page."""
    import faiss

    count = 30_000 if kind == "ivf" else 3000  # IVF: enough that it trains on a sample
    table = table_from_arrays([f"i{n}" for n in range(count)], clustered(count, dim=24), "test")
    first = AnnIndex.build(table, KINDS[kind])
    faiss.omp_set_num_threads(2)  # what the caller's thread had does not matter
    second = AnnIndex.build(table, KINDS[kind])
    assert first.breadth == second.breadth
    assert faiss.serialize_index(first._index).tobytes() == (
        faiss.serialize_index(second._index).tobytes()
    )
    for row in range(0, count, count // 80):
        assert first.search(table.vectors[row], 30) == second.search(table.vectors[row], 30)

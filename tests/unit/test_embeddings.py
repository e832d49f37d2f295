"""The embeddings model: its file and the index's answers, against exact search."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.embeddings import (
    AnnIndex,
    EmbeddingsError,
    IndexConfig,
    read_embeddings,
    table_from_arrays,
    write_embeddings,
)


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


def test_the_index_finds_what_exact_search_finds() -> None:
    table = table_from_arrays([f"i{n}" for n in range(3000)], clustered(3000), "test")
    index = AnnIndex.build(table, IndexConfig(m=16, ef_construction=100, threads=1))
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
    assert narrow.ef < wide.ef
    assert narrow.recall >= 0.5 and wide.recall >= 0.99


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


def test_two_builds_of_a_version_answer_alike() -> None:
    """Every replica indexes a version itself: they must serve a user the same page."""
    table = table_from_arrays([f"i{n}" for n in range(3000)], clustered(3000, dim=24), "test")
    first, second = (AnnIndex.build(table, IndexConfig()) for _ in range(2))
    assert first.ef == second.ef
    for row in range(0, 3000, 37):
        assert first.search(table.vectors[row], 30) == second.search(table.vectors[row], 30)

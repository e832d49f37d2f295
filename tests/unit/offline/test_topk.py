import random

import pytest

from app.offline.topk import iter_rows, top_k_neighbours, top_k_popular


def reference(rows: list[tuple[str, str, float]], k: int) -> dict[str, list[tuple[str, float]]]:
    best: dict[str, dict[str, float]] = {}
    for key, candidate, score in rows:
        scores = best.setdefault(key, {})
        scores[candidate] = max(score, scores.get(candidate, score))
    return {
        key: sorted(scores.items(), key=lambda entry: (-entry[1], entry[0]))[:k]
        for key, scores in best.items()
    }


def test_keeps_the_best_k_by_score_then_id() -> None:
    rows = [
        ("a", "x", 0.1),
        ("a", "y", 0.9),
        ("a", "z", 0.5),
        ("a", "b", 0.5),
        ("a", "w", 0.05),
        ("b", "a", 1.0),
    ]
    assert top_k_neighbours(rows, 3) == {
        "a": [("y", 0.9), ("b", 0.5), ("z", 0.5)],
        "b": [("a", 1.0)],
    }


def test_duplicates_keep_their_highest_score() -> None:
    rows = [("a", "x", 0.2), ("a", "y", 0.5), ("a", "x", 0.9), ("a", "x", 0.1)]
    assert top_k_neighbours(rows, 5) == {"a": [("x", 0.9), ("y", 0.5)]}


def test_a_late_higher_duplicate_wins_even_after_the_candidate_was_cut() -> None:
    rows = [("a", "late", 0.0)] + [("a", f"c{i}", 0.5) for i in range(20)] + [("a", "late", 1.0)]
    assert top_k_neighbours(rows, 2)["a"] == [("late", 1.0), ("c0", 0.5)]


@pytest.mark.parametrize("seed", range(5))
def test_matches_a_brute_force_reference_in_any_order(seed: int) -> None:
    rng = random.Random(seed)
    rows = [
        (f"i{rng.randrange(5)}", f"c{rng.randrange(60)}", float(rng.randrange(20)))
        for _ in range(3000)
    ]
    expected = reference(rows, 4)
    assert top_k_neighbours(rows, 4) == expected
    rng.shuffle(rows)
    assert top_k_neighbours(rows, 4) == expected
    assert top_k_popular(rows, 4) == expected


def test_k_must_be_positive() -> None:
    with pytest.raises(ValueError, match="k must be >= 1"):
        top_k_popular([], 0)


def test_iter_rows_flattens_with_sorted_keys() -> None:
    lists = {"b": [("x", 1.0)], "a": [("y", 2.0), ("z", 1.0)]}
    assert list(iter_rows(lists)) == [("a", "y", 2.0), ("a", "z", 1.0), ("b", "x", 1.0)]

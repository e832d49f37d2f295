import math

import pytest

from app.evaluation.metrics import MetricTotals


def test_one_relevant_item_scores_by_its_rank() -> None:
    totals = MetricTotals((1, 3))
    totals.add(["a", "b", "c"], {"b"})
    at = totals.means()
    assert at[1] == {"hr": 0.0, "ndcg": 0.0, "mrr": 0.0, "precision": 0.0, "recall": 0.0}
    assert at[3]["hr"] == 1.0
    assert at[3]["mrr"] == 0.5
    assert at[3]["ndcg"] == pytest.approx(1 / math.log2(3))
    assert at[3]["precision"] == pytest.approx(1 / 3)
    assert at[3]["recall"] == 1.0


def test_several_relevant_items_normalise_by_the_ideal_list() -> None:
    totals = MetricTotals((2,))
    totals.add(["x", "a", "b"], {"a", "b", "c"})
    at = totals.means()[2]
    ideal = 1 + 1 / math.log2(3)
    assert at["ndcg"] == pytest.approx((1 / math.log2(3)) / ideal)
    assert at["precision"] == 0.5
    assert at["recall"] == pytest.approx(1 / 3)
    assert at["mrr"] == 0.5


def test_means_average_over_users_and_coverage_counts_distinct_items() -> None:
    totals = MetricTotals((2,))
    totals.add(["a", "b"], {"a"})
    totals.add(["a", "c"], {"z"})
    assert totals.users == 2
    assert totals.means()[2]["hr"] == 0.5
    assert totals.coverage(catalog_size=6) == {2: 0.5}


def test_a_short_list_is_scored_as_it_is() -> None:
    totals = MetricTotals((10,))
    totals.add(["a"], {"a"})
    assert totals.means()[10]["hr"] == 1.0
    assert totals.means()[10]["precision"] == 0.1


def test_cutoffs_must_be_positive() -> None:
    with pytest.raises(ValueError, match="cut-offs"):
        MetricTotals((0,))

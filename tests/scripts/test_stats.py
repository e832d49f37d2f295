"""scripts/stats.py: the nearest-rank percentile."""

from __future__ import annotations

import random

import pytest

from scripts.stats import percentile


def test_nearest_rank_takes_a_measured_value_never_an_interpolation() -> None:
    assert percentile([1, 2, 3, 4], 50) == 2
    assert percentile([1, 2, 3, 4], 75) == 3
    assert percentile([1, 2, 3, 4], 76) == 4
    assert percentile([1.0, 10.0], 50) == 1.0


def test_percentiles_of_one_to_a_hundred_are_their_rank() -> None:
    values = list(range(1, 101))
    random.Random(7).shuffle(values)  # any order

    assert percentile(values, 1) == 1
    assert percentile(values, 50) == 50
    assert percentile(values, 95) == 95
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert percentile(values, 0) == 1


def test_fractional_percentiles_do_not_suffer_float_rounding() -> None:
    # 4.4 * 750 / 100 is 33.00000000000001 in binary floating point: rank 33, not 34.
    assert percentile(range(1, 751), 4.4) == 33
    assert percentile(range(1, 1001), 99.9) == 999
    assert percentile(range(1, 1001), 99.95) == 1000


def test_one_value_is_every_percentile() -> None:
    assert {percentile([3.5], q) for q in (0, 1, 50, 99, 100)} == {3.5}


def test_no_values_or_a_q_out_of_range_is_an_error() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)
    with pytest.raises(ValueError):
        percentile([1.0], 0.5 - 1)

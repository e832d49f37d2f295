"""No builder may write a file the loaders refuse, whatever the log: a property test.

Random logs span the whole accepted range of timestamps (epoch 0 to 18 digits) with any
builder options, including recency half-lives of a millisecond (the overflow that once wrote
`inf` scores), and catalogs with free-text categories and regions. Each build is written,
then read back by the strict readers the service and `recs load` use.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.domain import CatalogItem, EventType, is_valid_label
from app.offline.cooccurrence import CooccurrenceConfig, build_neighbours, write_neighbours_csv
from app.offline.factorization import FactorizationConfig, factor_neighbours
from app.offline.formats import InteractionRow, read_neighbours, read_popular
from app.offline.popular import item_popularity, popular_lists, write_popular_csv
from app.offline.weighting import Weighting

MAX_TS = 10**18 - 1  # the readers take up to 18 digits

ids = st.sampled_from([f"i{n}" for n in range(12)])
users = st.sampled_from([f"u{n}" for n in range(5)])
timestamps = st.one_of(
    st.integers(0, MAX_TS),
    st.integers(0, 10_000),
    st.integers(874_724_710_000, 874_724_710_000 + 10**9),
)
rows = st.lists(
    st.tuples(users, ids, st.sampled_from(list(EventType)), timestamps), min_size=1, max_size=80
)
half_lives = st.one_of(st.none(), st.floats(1.0, 1e15), st.sampled_from([1.0, 60_000.0]))
labels = st.text(min_size=1, max_size=128).filter(is_valid_label)


def loaded_neighbours(lists: dict[str, list[tuple[str, float]]]) -> int:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "neighbours.csv.gz"
        write_neighbours_csv(path, lists)
        read = list(read_neighbours(path))  # raises FormatError on any refused row
    assert all(math.isfinite(score) for _, _, score in read)
    return len(read)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    log=rows,
    window=st.integers(1, 6),
    window_decay=st.floats(0.01, 1.0),
    alpha=st.floats(0.0, 1.0),
    shrinkage=st.floats(0.0, 10.0),
    half_life_ms=half_lives,
    session_gap_ms=st.one_of(st.none(), st.integers(0, 10**12)),
)
def test_cooccurrence_builds_are_always_loadable(
    log: list[InteractionRow],
    window: int,
    window_decay: float,
    alpha: float,
    shrinkage: float,
    half_life_ms: float | None,
    session_gap_ms: int | None,
) -> None:
    config = CooccurrenceConfig(
        window=window,
        window_decay=window_decay,
        alpha=alpha,
        shrinkage=shrinkage,
        session_gap_ms=session_gap_ms,
        weighting=Weighting(half_life_ms=half_life_ms),
    )
    lists = build_neighbours(log, config)
    assert loaded_neighbours(lists) == sum(map(len, lists.values()))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(log=rows, method=st.sampled_from(["als", "bpr"]), half_life_ms=half_lives)
def test_learned_builds_are_always_loadable(
    log: list[InteractionRow], method: str, half_life_ms: float | None
) -> None:
    config = FactorizationConfig(
        method=method,  # type: ignore[arg-type]
        factors=4,
        iterations=3,
        threads=1,
        weighting=Weighting(half_life_ms=half_life_ms),
    )
    lists = factor_neighbours(log, config, k=5)
    assert loaded_neighbours(lists) == sum(map(len, lists.values()))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    log=rows,
    half_life_ms=half_lives,
    categories=st.lists(labels, min_size=1, max_size=4),
    regions=st.lists(labels, min_size=1, max_size=3),
)
def test_popular_builds_are_always_loadable(
    log: list[InteractionRow],
    half_life_ms: float | None,
    categories: list[str],
    regions: list[str],
) -> None:
    catalog = {
        f"i{n}": CatalogItem(f"i{n}", category=categories[n % len(categories)],
                             region=regions[n % len(regions)])
        for n in range(12)
    }  # fmt: skip
    popularity = item_popularity(log, Weighting(half_life_ms=half_life_ms))
    lists = popular_lists(popularity, catalog)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "popular.csv"
        write_popular_csv(path, lists)
        read = list(read_popular(path))
    assert len(read) == sum(map(len, lists.values()))
    assert {segment for segment, _, _ in read} == set(lists)
    assert all(math.isfinite(score) and score > 0 for _, _, score in read)

from pathlib import Path

import pytest

from app.domain import CatalogItem, EventType
from app.offline.formats import (
    InteractionRow,
    read_popular,
    write_catalog,
    write_interactions,
)
from app.offline.popular import (
    PopularityCounter,
    build_popular_file,
    item_popularity,
    popular_lists,
)
from app.offline.topk import top_k_popular
from app.offline.weighting import DAY_MS, Weighting

NOW = 1_780_000_000_000
V, P = EventType.VIEW, EventType.PURCHASE


def views(item: str, count: int, ts: int = NOW) -> list[InteractionRow]:
    return [("u", item, V, ts)] * count


def test_popularity_is_weighted_by_event_type() -> None:
    scores = item_popularity([("u", "a", V, NOW), ("u", "b", P, NOW)])
    assert scores == {"a": 1.0, "b": 8.0}


def test_with_a_half_life_popularity_decays_with_age_before_the_newest_event() -> None:
    rows = views("old", 1, NOW - 14 * DAY_MS) + views("new", 1, NOW)
    scores = item_popularity(rows, Weighting(half_life_ms=14 * DAY_MS))
    assert scores["new"] == pytest.approx(1.0)
    assert scores["old"] == pytest.approx(0.5)
    # Off by default: a log spanning months counts every event fully.
    assert item_popularity(rows) == {"old": 1.0, "new": 1.0}


def test_counting_in_parts_and_out_of_order() -> None:
    counter = PopularityCounter(Weighting(half_life_ms=7 * DAY_MS), newest_ts=NOW + 7 * DAY_MS)
    counter.add(views("a", 1, NOW))
    counter.add(views("a", 1, NOW - 7 * DAY_MS) + views("b", 2, NOW + 7 * DAY_MS))
    scores = counter.scores()
    assert scores["b"] == pytest.approx(2.0)
    assert scores["a"] == pytest.approx(0.5 + 0.25)
    assert counter.interactions == 4


def test_a_log_spanning_thousands_of_half_lives_stays_finite_and_positive() -> None:
    rows = views("a", 1, 0) + views("b", 1, NOW)  # ts_ms 0: 1970
    scores = item_popularity(rows, Weighting(half_life_ms=60_000))
    assert scores["b"] == 1.0
    assert 0.0 < scores["a"] < 1e-15


def catalog_of(*items: CatalogItem) -> dict[str, CatalogItem]:
    return {item.item_id: item for item in items}


def test_lists_per_segment_exclude_inactive_and_unknown_items() -> None:
    catalog = catalog_of(
        CatalogItem("bike", category="bikes", region="berlin"),
        CatalogItem("sold", category="bikes", region="berlin", active=False),
        CatalogItem("sofa", category="furniture", region="paris"),
        CatalogItem("bare"),
    )
    popularity = {"bike": 2.0, "sold": 50.0, "sofa": 1.0, "bare": 3.0, "gone": 9.0}
    assert popular_lists(popularity, catalog) == {
        "global": [("bare", 3.0), ("bike", 2.0), ("sofa", 1.0)],
        "category:bikes": [("bike", 2.0)],
        "region:berlin": [("bike", 2.0)],
        "category:furniture": [("sofa", 1.0)],
        "region:paris": [("sofa", 1.0)],
    }


def test_each_segment_is_filled_up_to_top_n() -> None:
    catalog = catalog_of(
        *(
            CatalogItem(f"i{n}", category=f"c{n % 3}", region=f"r{n % 2}", active=n % 7 != 0)
            for n in range(60)
        )
    )
    popularity = {f"i{n}": float(n) for n in range(60)}
    lists = popular_lists(popularity, catalog, top_n=5)
    assert sorted(lists) == [
        "category:c0",
        "category:c1",
        "category:c2",
        "global",
        "region:r0",
        "region:r1",
    ]
    for segment, entries in lists.items():
        assert len(entries) == 5, segment
        assert all(catalog[item].active for item, _ in entries)
        assert [score for _, score in entries] == sorted((s for _, s in entries), reverse=True)
    assert [item for item, _ in lists["global"]] == ["i59", "i58", "i57", "i55", "i54"]
    assert len(popular_lists(popularity, catalog, top_n=100)["category:c0"]) == 17


def test_file_build_writes_a_valid_popular_csv(tmp_path: Path) -> None:
    write_catalog(
        tmp_path / "catalog.jsonl",
        [
            CatalogItem("a", category="bikes", region="berlin"),
            CatalogItem("b", category="bikes", region="paris"),
            CatalogItem("c", category="bikes", region="paris", active=False),
        ],
    )
    rows = views("a", 3) + views("b", 1) + views("c", 9) + views("unknown", 2)
    write_interactions(tmp_path / "interactions.csv.gz", rows)
    build = build_popular_file(
        tmp_path / "interactions.csv.gz", tmp_path / "catalog.jsonl", tmp_path / "popular.csv"
    )
    assert (build.items_ranked, build.excluded_inactive, build.excluded_unknown) == (2, 1, 1)
    assert (build.interactions.rows_read, build.catalog.rows_read) == (15, 3)
    got = list(read_popular(tmp_path / "popular.csv"))
    assert build.rows_written == len(got) == 6
    assert top_k_popular(got, 10) == {
        "category:bikes": [("a", 3.0), ("b", 1.0)],
        "global": [("a", 3.0), ("b", 1.0)],
        "region:berlin": [("a", 3.0)],
        "region:paris": [("b", 1.0)],
    }

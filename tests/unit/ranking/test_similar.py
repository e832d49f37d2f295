from app.domain import CatalogItem
from app.ranking.similar import rerank_by_region, similar_candidates
from app.ranking.types import ScoredList


def test_similar_candidates_keep_list_order_and_mark_source() -> None:
    got = similar_candidates(ScoredList(("a", "b"), (0.9, 0.5)))
    assert [(c.item_id, c.score, c.source) for c in got] == [
        ("a", 0.9, "similar"),
        ("b", 0.5, "similar"),
    ]


def test_similar_candidates_skip_dropped_items_and_stop_at_the_count() -> None:
    neighbours = ScoredList(("a", "b", "c", "d", "e"), (0.9, 0.8, 0.7, 0.6, 0.5))
    got = similar_candidates(neighbours, drop={"b", "d"}, count=2)
    assert [c.item_id for c in got] == ["a", "c"]
    assert [c.item_id for c in similar_candidates(neighbours, drop={"a"})] == ["b", "c", "d", "e"]
    assert similar_candidates(neighbours, count=0) == []


def test_region_rerank_lifts_a_close_local_match_over_a_slightly_closer_remote_one() -> None:
    candidates = similar_candidates(ScoredList(("far", "near", "weak"), (1.0, 0.9, 0.1)))
    catalog = {
        "far": CatalogItem("far", region="paris"),
        "near": CatalogItem("near", region="berlin"),
        "weak": CatalogItem("weak", region="berlin"),
    }
    ranked = rerank_by_region(candidates, catalog, region="berlin", region_weight=0.3)
    assert [c.item_id for c in ranked] == ["near", "far", "weak"]
    assert abs(ranked[0].score - (0.7 * 0.9 + 0.3)) < 1e-9


def test_region_weight_zero_is_pure_similarity() -> None:
    candidates = similar_candidates(ScoredList(("a", "b"), (1.0, 0.5)))
    catalog = {"b": CatalogItem("b", region="berlin")}
    ranked = rerank_by_region(candidates, catalog, region="berlin", region_weight=0.0)
    assert [c.item_id for c in ranked] == ["a", "b"]

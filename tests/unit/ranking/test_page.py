from app.domain import CatalogItem
from app.ranking.page import (
    PageDraft,
    PageRules,
    add_candidates,
    assemble_page,
    fill_segments,
    popular_candidates,
    popular_pool,
    preferred_category_and_region,
)
from app.ranking.types import Scored, ScoredList


def item(i: str, category: str = "bikes", seller: str | None = None, **kw: object) -> CatalogItem:
    return CatalogItem(i, category=category, seller_id=seller or f"s-{i}", **kw)  # type: ignore[arg-type]


def cands(*ids: str, source: str = "personalized", segment: str | None = None) -> list[Scored]:
    return [Scored(i, 1.0 / (n + 1), source, segment) for n, i in enumerate(ids)]


RULES = PageRules(limit=3, max_per_category=2, max_per_seller=1)


def ids(page: list[Scored]) -> list[str]:
    return [c.item_id for c in page]


def test_fills_limit_in_order_and_drops_excluded_and_inactive() -> None:
    catalog = {i: item(i, category=i) for i in "abcde"}
    catalog["b"] = item("b", category="b", active=False)
    page = assemble_page(
        cands("a", "b", "c", "d", "e"),
        (),
        catalog=catalog,
        catalog_available=True,
        drop={"c"},
        rules=RULES,
    )
    assert ids(page) == ["a", "d", "e"]


def test_diversity_caps_per_category_and_seller_then_relaxes_when_short() -> None:
    catalog = {
        "a": item("a", "bikes", "s1"),
        "b": item("b", "bikes", "s1"),  # same seller as a: capped
        "c": item("c", "bikes", "s2"),
        "d": item("d", "bikes", "s3"),  # third bike: capped
        "e": item("e", "sofas", "s4"),
    }
    rules = PageRules(limit=4, max_per_category=2, max_per_seller=1)
    page = assemble_page(
        cands("a", "b", "c", "d", "e"),
        (),
        catalog=catalog,
        catalog_available=True,
        drop=(),
        rules=rules,
    )
    # a, c (2 bikes), e; then the page is short, so capped items return in order: b.
    assert ids(page) == ["a", "c", "e", "b"]


def test_category_filter_disables_the_category_cap() -> None:
    catalog = {i: item(i, "bikes") for i in "abcd"}
    catalog["x"] = item("x", "sofas")
    rules = PageRules(limit=4, max_per_category=1, max_per_seller=5, category="bikes")
    page = assemble_page(
        cands("x", "a", "b", "c", "d"),
        (),
        catalog=catalog,
        catalog_available=True,
        drop=(),
        rules=rules,
    )
    assert ids(page) == ["a", "b", "c", "d"]


def test_filters_by_region() -> None:
    catalog = {"a": item("a", region="berlin"), "b": item("b", region="paris")}
    rules = PageRules(limit=5, max_per_category=5, max_per_seller=5, region="paris")
    page = assemble_page(
        cands("a", "b"), (), catalog=catalog, catalog_available=True, drop=(), rules=rules
    )
    assert ids(page) == ["b"]


def test_popular_fill_comes_after_primary_without_duplicates() -> None:
    catalog = {i: item(i, category=i) for i in "abxy"}
    page = assemble_page(
        cands("a", "b"),
        cands("b", "x", "y", source="popular"),
        catalog=catalog,
        catalog_available=True,
        drop=(),
        rules=RULES,
    )
    assert [(c.item_id, c.source) for c in page] == [
        ("a", "personalized"),
        ("b", "personalized"),
        ("x", "popular"),
    ]


def test_items_unknown_to_a_working_catalog_are_dropped() -> None:
    page = assemble_page(
        cands("gone", "a"),
        (),
        catalog={"a": item("a")},
        catalog_available=True,
        drop=(),
        rules=RULES,
    )
    assert ids(page) == ["a"]


def test_catalog_down_keeps_items_and_trusts_segments_for_filters() -> None:
    rules = PageRules(limit=5, max_per_category=1, max_per_seller=1, category="bikes")
    page = assemble_page(
        cands("p1", "p2"),  # personalized: category unknown, cannot honour the filter
        cands("b1", "b2", source="popular", segment="category:bikes")
        + cands("g1", source="popular", segment="global"),
        catalog={},
        catalog_available=False,
        drop=(),
        rules=rules,
    )
    assert ids(page) == ["b1", "b2"]
    unfiltered = assemble_page(
        cands("p1", "p2"), (), catalog={}, catalog_available=False, drop=(), rules=RULES
    )
    assert ids(unfiltered) == ["p1", "p2"]  # no metadata: no caps either


def test_fill_segments_put_lists_that_pass_the_filters_first() -> None:
    assert fill_segments() == ["global"]
    assert fill_segments(category="bikes", preferred_region="berlin") == [
        "category:bikes",
        "region:berlin",
        "global",
    ]
    assert fill_segments(
        category="bikes", region="paris", preferred_category="bikes", preferred_region="rome"
    ) == ["category:bikes", "region:paris", "region:rome", "global"]
    assert fill_segments(preferred_category="sofas", preferred_region="rome") == [
        "region:rome",
        "category:sofas",
        "global",
    ]


def test_a_filtered_request_takes_whole_lists() -> None:
    lists = {"category:bikes": ScoredList(tuple(f"b{n}" for n in range(300)), (1.0,) * 300)}
    everything = popular_candidates(popular_pool(lists), ["category:bikes"], drop=(), count=None)
    assert len(everything) == 300


def test_a_zero_limit_page_is_empty() -> None:
    rules = PageRules(limit=0, max_per_category=5, max_per_seller=5)
    assert (
        assemble_page(cands("a"), (), catalog={}, catalog_available=False, drop=(), rules=rules)
        == []
    )


def test_popular_candidates_walk_segments_skipping_dropped_and_repeats() -> None:
    lists = {
        "region:berlin": ScoredList(("a", "b"), (9.0, 8.0)),
        "global": ScoredList(("b", "c", "d"), (7.0, 6.0, 5.0)),
    }
    got = popular_candidates(
        popular_pool(lists), ["region:berlin", "category:none", "global"], drop={"a"}, count=2
    )
    assert [(c.item_id, c.score, c.segment) for c in got] == [
        ("b", 8.0, "region:berlin"),
        ("c", 6.0, "global"),
    ]
    assert all(c.source == "popular" for c in got)


def test_preferred_category_and_region_is_the_most_frequent() -> None:
    catalog = {
        "a": item("a", "bikes", region="berlin"),
        "b": item("b", "bikes", region="paris"),
        "c": item("c", "sofas", region="paris"),
    }
    assert preferred_category_and_region(["a", "b", "c", "zz"], catalog) == ("bikes", "paris")
    assert preferred_category_and_region([], catalog) == (None, None)


def test_capped_items_wait_for_the_fill_before_they_come_back() -> None:
    catalog = {i: item(i, "bikes") for i in "abcd"} | {"p": item("p", "sofas")}
    rules = PageRules(limit=3, max_per_category=1, max_per_seller=5)
    draft = PageDraft(rules, drop=())
    add_candidates(draft, cands("a", "b", "c"), catalog=catalog, catalog_available=True)
    assert ids(draft.items) == ["a"]  # short, for the fill to complete
    add_candidates(draft, cands("p", source="popular"), catalog=catalog, catalog_available=True)
    assert ids(draft.finish()) == ["a", "p", "b"]  # the popular sofa before a second bike


def test_a_draft_keeps_its_choices_and_caps_across_batches() -> None:
    catalog = {
        "a": item("a", "bikes", "s1"),
        "b": item("b", "bikes", "s1"),
        "c": item("c", "bikes", "s2"),
        "d": item("d", "bikes", "s3"),
        "e": item("e", "sofas", "s4"),
    }
    rules = PageRules(limit=4, max_per_category=2, max_per_seller=1)
    draft = PageDraft(rules, drop=())
    add_candidates(draft, cands("a", "b", "c"), catalog=catalog, catalog_available=True)
    assert not draft.full and ids(draft.items) == ["a", "c"]
    add_candidates(draft, cands("a", "d", "e"), catalog=catalog, catalog_available=True)
    # The same page as one pass over a, b, c, d, e: a is not offered twice, d is capped.
    assert ids(draft.finish()) == ["a", "c", "e", "b"]


def test_a_draft_judges_each_batch_by_the_catalog_answer_it_came_with() -> None:
    draft = PageDraft(PageRules(limit=3, max_per_category=5, max_per_seller=5), drop=())
    # The catalog answered and does not list x: gone. Then a later lookup failed (y unknown).
    add_candidates(draft, cands("a", "x"), catalog={"a": item("a")}, catalog_available=True)
    add_candidates(draft, cands("y"), catalog={"a": item("a")}, catalog_available=False)
    assert ids(draft.finish()) == ["a", "y"]

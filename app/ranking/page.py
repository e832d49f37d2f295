"""From ranked candidates to one page: eligibility, filters, diversity caps and popular fill."""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass

from app.domain import GLOBAL_SEGMENT, CatalogItem, category_segment, region_segment
from app.ranking.types import SOURCE_POPULAR, Scored, ScoredList


@dataclass(frozen=True, slots=True)
class PageRules:
    limit: int
    max_per_category: int
    max_per_seller: int
    category: str | None = None
    region: str | None = None


class PageDraft:
    """A page being filled: candidates are offered batch by batch (`add_candidates`), each
    batch judged with the catalog answer it came with, and the draft remembers what it
    chose, capped and counted. The feed offers its own candidates first and computes the
    popular fill (and asks the catalog for it) only when they leave the page short, without
    going over its own candidates again."""

    __slots__ = ("capped", "chosen", "drop", "items", "per_category", "per_seller", "rules")

    def __init__(self, rules: PageRules, drop: Container[str]) -> None:
        self.rules = rules
        self.drop = drop
        self.items: list[Scored] = []
        self.chosen: set[str] = set()
        self.capped: list[Scored] = []  # skipped only for a diversity cap, in order
        self.per_category: dict[str, int] = {}
        self.per_seller: dict[str, int] = {}

    @property
    def full(self) -> bool:
        return len(self.items) >= self.rules.limit

    def finish(self) -> list[Scored]:
        """The page: the items chosen, then, if that is short, the items skipped only for a
        cap, in order. A full page beats a perfectly diverse short one, but only once every
        other candidate was tried."""
        return self.items + self.capped[: self.rules.limit - len(self.items)]


def add_candidates(
    draft: PageDraft,
    candidates: Iterable[Scored],
    *,
    catalog: Mapping[str, CatalogItem],
    catalog_available: bool,
) -> None:
    """Offer candidates to the page, in order, until it is full.

    An item is skipped when dropped (seen, excluded, already served), inactive, outside the
    filters, or over a diversity cap (at most N per category and per seller; with a category
    filter the category cap is moot).
    """
    rules, drop, page, chosen = draft.rules, draft.drop, draft.items, draft.chosen
    if len(page) >= rules.limit:
        return
    per_category, per_seller = draft.per_category, draft.per_seller
    cap_categories = rules.category is None
    for candidate in candidates:
        item_id = candidate.item_id
        if item_id in chosen or item_id in drop:
            continue
        meta = catalog.get(item_id)
        if not _eligible(candidate, meta, rules, catalog_available):
            continue
        if meta is not None:
            category = meta.category if cap_categories else None
            seller = meta.seller_id
            if (
                category is not None and per_category.get(category, 0) >= rules.max_per_category
            ) or (seller is not None and per_seller.get(seller, 0) >= rules.max_per_seller):
                draft.capped.append(candidate)
                chosen.add(item_id)
                continue
            if category is not None:
                per_category[category] = per_category.get(category, 0) + 1
            if seller is not None:
                per_seller[seller] = per_seller.get(seller, 0) + 1
        page.append(candidate)
        chosen.add(item_id)
        if len(page) >= rules.limit:
            return


def assemble_page(
    primary: Iterable[Scored],
    fallback: Iterable[Scored],
    *,
    catalog: Mapping[str, CatalogItem],
    catalog_available: bool,
    drop: Container[str],
    rules: PageRules,
) -> list[Scored]:
    """Up to `rules.limit` items: primary candidates first, then the fallback ones, judged
    by one catalog answer (`add_candidates`, `PageDraft.finish`)."""
    draft = PageDraft(rules, drop)
    add_candidates(draft, primary, catalog=catalog, catalog_available=catalog_available)
    add_candidates(draft, fallback, catalog=catalog, catalog_available=catalog_available)
    return draft.finish()


def _eligible(
    candidate: Scored,
    meta: CatalogItem | None,
    rules: PageRules,
    catalog_available: bool,
) -> bool:
    if meta is None:
        if catalog_available:
            # The catalog answered and does not know the item: the listing is gone.
            return False
        # Catalog down: segment membership is the only evidence a filter holds.
        if rules.category is not None and candidate.segment != category_segment(rules.category):
            return False
        return rules.region is None or candidate.segment == region_segment(rules.region)
    if not meta.active:
        return False
    if rules.category is not None and meta.category != rules.category:
        return False
    return rules.region is None or meta.region == rules.region


def fill_segments(
    *,
    category: str | None = None,
    region: str | None = None,
    preferred_category: str | None = None,
    preferred_region: str | None = None,
) -> list[str]:
    """Popular lists to take candidates from, best first.

    Lists whose every item passes the request's filters come first (the filtered category's,
    then the filtered region's), then the user's own region and category, the global list last.
    """
    ordered = []
    if category is not None:
        ordered.append(category_segment(category))
    if region is not None:
        ordered.append(region_segment(region))
    if preferred_region is not None:
        ordered.append(region_segment(preferred_region))
    if preferred_category is not None:
        ordered.append(category_segment(preferred_category))
    ordered.append(GLOBAL_SEGMENT)
    return list(dict.fromkeys(ordered))


PopularCandidates = Mapping[str, Sequence[Scored]]


def popular_pool(lists: Mapping[str, ScoredList]) -> dict[str, tuple[Scored, ...]]:
    """Every popular list as page candidates, built once per popular version: a request then
    only picks from them (the fill takes ~100 per feed request, and building them is what
    costs: docs/performance.md)."""
    return {
        segment: tuple(
            Scored(item_id, score, SOURCE_POPULAR, segment)
            for item_id, score in zip(ranked.item_ids, ranked.scores, strict=True)
        )
        for segment, ranked in lists.items()
    }


def popular_candidates(
    pool: PopularCandidates,
    segments: Sequence[str],
    *,
    drop: Container[str],
    count: int | None,
) -> list[Scored]:
    """Up to `count` (None: all) distinct popular items from `segments` in order, skipping
    dropped ones. A filtered request takes all: which items pass a filter is known only once
    the catalog answered, and a list's first few may all fail it."""
    out: list[Scored] = []
    seen: set[str] = set()
    for segment in segments:
        for candidate in pool.get(segment, ()):
            item_id = candidate.item_id
            if item_id in seen or item_id in drop:
                continue
            seen.add(item_id)
            out.append(candidate)
            if count is not None and len(out) >= count:
                return out
    return out


def preferred_category_and_region(
    item_ids: Iterable[str], catalog: Mapping[str, CatalogItem]
) -> tuple[str | None, str | None]:
    """The category and region a user interacts with most, from their items' metadata."""
    categories: dict[str, int] = {}
    regions: dict[str, int] = {}
    for item_id in item_ids:
        meta = catalog.get(item_id)
        if meta is None:
            continue
        if meta.category is not None:
            categories[meta.category] = categories.get(meta.category, 0) + 1
        if meta.region is not None:
            regions[meta.region] = regions.get(meta.region, 0) + 1
    return _most_common(categories), _most_common(regions)


def _most_common(counts: Mapping[str, int]) -> str | None:
    if not counts:
        return None
    return min(counts, key=lambda key: (-counts[key], key))

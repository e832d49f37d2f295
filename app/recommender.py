"""Where a request goes: read the sources concurrently, rank with the pure core, build a page.

    feed:    DynamoDB recent interactions -> weights -> neighbour lists (one Scylla hop for all
             misses) + nearest items to the user's vector (the pinned embeddings index) ->
             blended candidate scores -> one catalog call -> filters, diversity, popular fill
    similar: neighbour list of one item, or its nearest vectors when it has no list (+ the
             user's seen items) -> catalog -> region rerank
    popular: the pinned version's popular lists (in memory) -> catalog -> filters

Every dependency call gets the smaller of its own timeout and what is left of the request's
deadline. A failed or slow dependency degrades the answer (named in `degraded`) instead of
failing it; only a service with no model loaded at all answers 503.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Collection, Container, Iterable
from dataclasses import dataclass
from typing import TypeVar

from app.config import Settings
from app.domain import CatalogItem, Interaction
from app.model_versions import ModelSnapshot, ModelTracker
from app.ranking import cursor
from app.ranking.page import (
    PageDraft,
    PageRules,
    add_candidates,
    assemble_page,
    fill_segments,
    popular_candidates,
    preferred_category_and_region,
)
from app.ranking.scoring import (
    blend,
    score_candidates,
    seed_weights,
    strongest,
    top_candidates,
)
from app.ranking.similar import rerank_by_region, similar_candidates
from app.ranking.types import EMPTY_LIST, Scored, ScoredList
from app.results import RecommendationPage, RecommendedItem
from app.sources.base import (
    DEP_CATALOG,
    DEP_DYNAMODB,
    DEP_SCYLLA,
    BatchLookup,
    InteractionReader,
)

log = logging.getLogger(__name__)

T = TypeVar("T")


class ModelsNotLoaded(RuntimeError):
    """No model version could be loaded yet: nothing to serve from (503)."""


@dataclass(frozen=True, slots=True)
class FeedQuery:
    user_id: str
    limit: int
    category: str | None = None
    region: str | None = None
    exclude: frozenset[str] = frozenset()
    cursor: str | None = None


@dataclass(frozen=True, slots=True)
class SimilarQuery:
    item_id: str
    limit: int
    exclude: frozenset[str] = frozenset()
    user_id: str | None = None
    region: str | None = None


@dataclass(frozen=True, slots=True)
class PopularQuery:
    limit: int
    category: str | None = None
    region: str | None = None


class _Dropped(Container[str]):
    """Items a page must not show: seen or excluded ids, and hashes of items already served."""

    __slots__ = ("_ids", "_served")

    def __init__(self, ids: Collection[str], served: Container[str]) -> None:
        self._ids = ids
        self._served = served

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._ids or item_id in self._served


def _dropped(ids: frozenset[str] | set[str], served: cursor.Served) -> Container[str]:
    # Without a cursor the plain set is the whole answer, and its lookups run in C; the
    # wrapper costs a Python call (and a hash) per check, hundreds per request.
    return _Dropped(ids, served) if len(served) else ids


class _Request:
    """One request's deadline, shared out among its dependency calls, and the dependencies
    that failed it (reported in the answer's `degraded`)."""

    __slots__ = ("_end", "degraded")

    def __init__(self, deadline_s: float) -> None:
        self._end = time.monotonic() + deadline_s
        self.degraded: list[str] = []

    def timeout(self, dependency_timeout_s: float) -> float:
        return max(0.0, min(dependency_timeout_s, self._end - time.monotonic()))

    def degrade(self, dependency: str, exc: BaseException | None = None) -> None:
        if dependency not in self.degraded:
            self.degraded.append(dependency)
        if exc is not None:
            log.debug("dependency failed", extra={"dependency": dependency, "error": repr(exc)})

    def answered(self, dependency: str) -> bool:
        return dependency not in self.degraded


class Recommender:
    def __init__(
        self,
        settings: Settings,
        *,
        models: ModelTracker,
        interactions: InteractionReader,
        neighbours: BatchLookup[ScoredList],
        catalog: BatchLookup[CatalogItem],
    ) -> None:
        self._settings = settings
        self._models = models
        self._interactions = interactions
        self._neighbours = neighbours
        self._catalog = catalog
        self._signer = cursor.Signer(settings.cursor_secret, settings.cursor_previous_secrets)
        self._deadline_s = settings.request_deadline_ms / 1000
        self._dynamodb_timeout_s = settings.dynamodb_timeout_ms / 1000
        # The cache waits this long for a Scylla hop; the driver's own timeout bounds the hop.
        self._scylla_timeout_s = settings.scylla_timeout_ms / 1000
        self._catalog_timeout_s = settings.catalog_timeout_ms / 1000

    # --- endpoints ---------------------------------------------------------------------
    async def feed(self, query: FeedQuery) -> RecommendationPage:
        settings = self._settings
        snapshot = self._snapshot()
        request = _Request(self._deadline_s)
        request_fingerprint = cursor.fingerprint(query.user_id, query.category, query.region)
        served = (
            cursor.decode(
                query.cursor,
                request_fingerprint,
                self._signer,
                max_items=settings.cursor_max_items,
            )
            if query.cursor
            else cursor.Served()
        )

        interactions = await self._recent(query.user_id, request)
        seeds = strongest(
            seed_weights(
                interactions,
                event_weights=settings.event_weights,
                half_life_ms=settings.recency_half_life_ms,
                position_decay=settings.recency_position_decay,
            ),
            settings.max_seeds,
        )
        seen = {interaction.item_id for interaction in interactions}
        scores: dict[str, float] = {}
        if seeds and snapshot.neighbours_version is not None:
            lists = await self._neighbour_lists(snapshot.neighbours_version, seeds, request)
            scores = score_candidates(seeds, lists)
        index = snapshot.embeddings
        if seeds and index is not None and settings.ann_weight > 0.0:
            # The user vector and the search use the snapshot's one embeddings version.
            vector = index.table.user_vector(seeds)
            if vector is not None:
                nearest = index.search(vector, settings.ann_candidates + len(seeds))
                scores = blend(scores, nearest, settings.ann_weight)

        drop = _dropped(seen | query.exclude, served)
        filtered = query.category is not None or query.region is not None
        # A chain of pages never serves more than cursor_max_items items in all.
        limit = min(query.limit, settings.cursor_max_items - len(served))
        pool = top_candidates(scores, drop=drop, count=limit * (10 if filtered else 3) + 20)
        fill_count = None if filtered else 2 * limit + 10
        fill = popular_candidates(
            snapshot.popular,
            fill_segments(category=query.category, region=query.region),
            drop=drop,
            count=fill_count,
        )
        asked = _ids(pool, fill, seen)
        catalog = await self._catalog_items(asked, request)
        rules = PageRules(
            limit=limit,
            max_per_category=settings.max_per_category,
            max_per_seller=settings.max_per_seller,
            category=query.category,
            region=query.region,
        )
        draft = PageDraft(rules, drop)
        add_candidates(
            draft, pool, catalog=catalog, catalog_available=request.answered(DEP_CATALOG)
        )
        if not draft.full:
            # Short: fill from popular lists, those matching the filters first, then the
            # user's own region and category. The draft keeps its choices (and the catalog
            # answer they were judged by); only the fill is new.
            if seen:
                preferred_category, preferred_region = preferred_category_and_region(seen, catalog)
                fill = popular_candidates(
                    snapshot.popular,
                    fill_segments(
                        category=query.category,
                        region=query.region,
                        preferred_category=preferred_category,
                        preferred_region=preferred_region,
                    ),
                    drop=drop,
                    count=fill_count,
                )
                if request.answered(DEP_CATALOG):
                    # The first call answered: the items it left out are gone, not to be
                    # asked again, nor judged "catalog down" if the next call fails.
                    gone = {item_id for item_id in asked if item_id not in catalog}
                    fill = [c for c in fill if c.item_id not in gone]
                    missing = [c.item_id for c in fill if c.item_id not in catalog]
                    if missing:
                        catalog.update(await self._catalog_items(missing, request))
            add_candidates(
                draft, fill, catalog=catalog, catalog_available=request.answered(DEP_CATALOG)
            )
        # Popular items filled a short page before the diversity caps give way.
        page = draft.finish()

        next_cursor = None
        if page and len(page) == limit and len(served) + len(page) < settings.cursor_max_items:
            next_cursor = cursor.encode(
                served.plus(c.item_id for c in page), request_fingerprint, self._signer
            )
        return RecommendationPage(
            _items(page, catalog), snapshot.label, request.degraded, next_cursor
        )

    async def similar(self, query: SimilarQuery) -> RecommendationPage:
        snapshot = self._snapshot()
        request = _Request(self._deadline_s)
        lists_task = (
            self._neighbour_lists(snapshot.neighbours_version, (query.item_id,), request)
            if snapshot.neighbours_version is not None
            else _nothing()
        )
        if query.user_id is not None:
            lists, interactions = await asyncio.gather(
                lists_task, self._recent(query.user_id, request)
            )
        else:
            lists, interactions = await lists_task, []

        drop = query.exclude | {i.item_id for i in interactions} | {query.item_id}
        neighbour_list = lists.get(query.item_id, EMPTY_LIST)
        if not neighbour_list and snapshot.embeddings is not None:
            # No list (a new item, or one too rarely seen): its nearest vectors instead.
            neighbour_list = _as_list(
                snapshot.embeddings.similar(query.item_id, 2 * query.limit + len(drop))
            )
        rules = PageRules(
            limit=query.limit, max_per_category=query.limit, max_per_seller=query.limit
        )
        draft = PageDraft(rules, drop)
        catalog: dict[str, CatalogItem] = {}
        offered = 0  # neighbours already on offer, judged by the catalog answer they came with
        if query.region is None:
            # Without the region rerank a page is the first usable neighbours in list order:
            # the catalog is asked for twice a page's worth, and for the rest only when
            # inactive or unknown items leave that page short (about half the keys of a
            # reranked page: docs/performance.md).
            head = similar_candidates(neighbour_list, drop=drop, count=2 * query.limit)
            if len(head) == 2 * query.limit:
                catalog = await self._catalog_items([c.item_id for c in head], request)
                add_candidates(
                    draft, head, catalog=catalog, catalog_available=request.answered(DEP_CATALOG)
                )
                if draft.full:
                    return RecommendationPage(
                        _items(draft.finish(), catalog), snapshot.label, request.degraded
                    )
                offered = len(head)

        primary = similar_candidates(neighbour_list, drop=drop)
        fill: list[Scored] = []
        if len(primary) < query.limit * 2:
            # Unknown item, or too few neighbours left: popular items fill the page.
            fill = popular_candidates(
                snapshot.popular,
                fill_segments(preferred_region=query.region),
                drop=drop,
                count=2 * query.limit + 10,
            )
        rest = primary[offered:]  # the head is a prefix of the same list
        missing = [item_id for item_id in _ids(rest, fill, ()) if item_id not in catalog]
        if missing and request.answered(DEP_CATALOG):
            catalog.update(await self._catalog_items(missing, request))
        if query.region is not None:
            rest = rerank_by_region(
                rest,
                catalog,
                region=query.region,
                region_weight=self._settings.similar_region_weight,
            )
        catalog_available = request.answered(DEP_CATALOG)
        add_candidates(draft, rest, catalog=catalog, catalog_available=catalog_available)
        add_candidates(draft, fill, catalog=catalog, catalog_available=catalog_available)
        return RecommendationPage(_items(draft.finish(), catalog), snapshot.label, request.degraded)

    async def popular(self, query: PopularQuery) -> RecommendationPage:
        snapshot = self._snapshot()
        request = _Request(self._deadline_s)
        filtered = query.category is not None or query.region is not None
        candidates = popular_candidates(
            snapshot.popular,
            fill_segments(category=query.category, region=query.region),
            drop=(),
            count=None if filtered else 2 * query.limit + 20,
        )
        catalog = await self._catalog_items(_ids(candidates, (), ()), request)
        page = assemble_page(
            candidates,
            (),
            catalog=catalog,
            catalog_available=request.answered(DEP_CATALOG),
            drop=(),
            rules=PageRules(
                limit=query.limit,
                max_per_category=query.limit,
                max_per_seller=query.limit,
                category=query.category,
                region=query.region,
            ),
        )
        return RecommendationPage(_items(page, catalog), snapshot.label, request.degraded)

    # --- dependency calls ----------------------------------------------------------------
    def _snapshot(self) -> ModelSnapshot:
        snapshot = self._models.current
        if snapshot is None:
            raise ModelsNotLoaded("no model version loaded yet")
        return snapshot

    async def _recent(self, user_id: str, request: _Request) -> list[Interaction]:
        try:
            async with asyncio.timeout(request.timeout(self._dynamodb_timeout_s)):
                return await self._interactions.recent(user_id, self._settings.history_limit)
        except Exception as exc:  # any failure of the store degrades, never fails, the feed
            request.degrade(DEP_DYNAMODB, exc)
            return []

    async def _neighbour_lists(
        self, version: str, item_ids: Iterable[str], request: _Request
    ) -> dict[str, ScoredList]:
        return await self._lookup(
            self._neighbours, version, item_ids, self._scylla_timeout_s, DEP_SCYLLA, request
        )

    async def _catalog_items(
        self, item_ids: Iterable[str], request: _Request
    ) -> dict[str, CatalogItem]:
        return await self._lookup(
            self._catalog, "", item_ids, self._catalog_timeout_s, DEP_CATALOG, request
        )

    async def _lookup(
        self,
        lookup: BatchLookup[T],
        namespace: str,
        keys: Iterable[str],
        timeout_s: float,
        dependency: str,
        request: _Request,
    ) -> dict[str, T]:
        try:
            result = await lookup.get_many(namespace, keys, timeout=request.timeout(timeout_s))
        except Exception as exc:
            request.degrade(dependency, exc)
            return {}
        if not result.complete:
            request.degrade(dependency)
        return dict(result.found)


async def _nothing() -> dict[str, ScoredList]:
    return {}


def _as_list(scores: dict[str, float]) -> ScoredList:
    ranked = sorted(scores.items(), key=lambda entry: (-entry[1], entry[0]))
    return ScoredList(tuple(i for i, _ in ranked), tuple(s for _, s in ranked))


def _ids(first: Iterable[Scored], second: Iterable[Scored], third: Iterable[str]) -> list[str]:
    ids = dict.fromkeys(c.item_id for c in first)
    ids.update(dict.fromkeys(c.item_id for c in second))
    ids.update(dict.fromkeys(third))
    return list(ids)


def _items(page: list[Scored], catalog: dict[str, CatalogItem]) -> list[RecommendedItem]:
    items = []
    for candidate in page:
        meta = catalog.get(candidate.item_id)
        if meta is None:
            items.append(RecommendedItem(candidate.item_id, candidate.score, candidate.source))
        else:
            items.append(
                RecommendedItem(
                    candidate.item_id,
                    candidate.score,
                    candidate.source,
                    meta.title,
                    meta.category,
                    meta.price,
                    meta.region,
                    meta.seller_id,
                )
            )
    return items

"""The recommender over in-memory sources (the embedded backend's seams, no files)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import numpy as np
import pytest

from app.config import Settings
from app.domain import CatalogItem, Interaction
from app.embeddings import table_from_arrays
from app.model_versions import ModelTracker
from app.ranking.types import ScoredList
from app.recommender import FeedQuery, PopularQuery, Recommender, SimilarQuery
from app.sources.base import DEP_CATALOG, Lookup
from app.sources.embedded import EmbeddedBackend

NOW = 1_800_000_000_000


def backend(*, unlisted: Iterable[str] = ()) -> EmbeddedBackend:
    """400 items, odd ones bikes, even ones sofas; the catalog lacks the `unlisted` ones."""
    items = [f"i{n}" for n in range(400)]
    catalog = {
        i: CatalogItem(i, f"t{i}", "bikes" if n % 2 else "sofas", 10.0, "berlin", f"s{n}")
        for n, i in enumerate(items)
    }
    for gone in items[1:6]:  # the most popular items after i0, sold since the lists were built
        catalog[gone] = dataclasses.replace(catalog[gone], active=False)
    neighbours = {i: ScoredList(tuple(items[n + 1 : n + 40]), (1.0,) * len(items[n + 1 : n + 40]))
                  for n, i in enumerate(items)}  # fmt: skip
    popular = {"global": ScoredList(tuple(items), tuple(float(400 - n) for n in range(400)))}
    popular["category:bikes"] = ScoredList(
        tuple(i for i in items if catalog[i].category == "bikes"), (1.0,) * 200
    )
    for gone in unlisted:
        del catalog[gone]
    return EmbeddedBackend(
        version="v1",
        neighbours=neighbours,
        popular=popular,
        catalog=catalog,
        interactions={
            "u": [Interaction("i0", "view", NOW)],
            "bike-fan": [Interaction("i9", "view", NOW)],
        },
    )


class RecordingCatalog:
    """The embedded catalog lookup, recording the keys of every call; from call number
    `down_from` on (1 is the first), every call fails."""

    def __init__(self, data: EmbeddedBackend, *, down_from: int | None = None) -> None:
        self._lookup = data.catalog_lookup
        self._down_from = down_from
        self.calls: list[list[str]] = []

    async def get_many(
        self, namespace: str, keys: Iterable[str], *, timeout: float
    ) -> Lookup[CatalogItem]:
        self.calls.append(list(keys))
        if self._down_from is not None and len(self.calls) >= self._down_from:
            raise ConnectionError("catalog down")
        return await self._lookup.get_many(namespace, self.calls[-1], timeout=timeout)


async def recommender(catalog: RecordingCatalog | None = None, **overrides: object) -> Recommender:
    settings = Settings.from_env({}).model_copy(update=overrides)
    data = backend()
    models = ModelTracker(data, refresh_s=60)
    await models.refresh()
    return Recommender(
        settings,
        models=models,
        interactions=data,
        neighbours=data.neighbour_lookup,
        catalog=catalog or data.catalog_lookup,
    )


@pytest.mark.parametrize("limit", [3, 7])
async def test_a_cursor_chain_serves_at_most_the_cap(limit: int) -> None:
    rec = await recommender(cursor_max_items=10, max_per_category=1000, max_per_seller=1000)
    served: list[str] = []
    cursor = None
    for _ in range(20):
        page = await rec.feed(FeedQuery("u", limit, cursor=cursor))
        served += [item.item_id for item in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert len(served) == 10 and len(set(served)) == 10


async def test_unfiltered_popular_has_slack_for_items_gone_inactive() -> None:
    rec = await recommender()
    page = await rec.popular(PopularQuery(limit=20))
    assert len(page.items) == 20
    assert not {item.item_id for item in page.items} & {f"i{n}" for n in range(1, 6)}


async def test_similar_items_ask_the_catalog_for_twice_a_page_of_neighbours() -> None:
    # i0's neighbours are i1..i39, of which i1..i5 are inactive: the first 20 fill a page of 10.
    catalog = RecordingCatalog(backend())
    rec = await recommender(catalog)
    page = await rec.similar(SimilarQuery("i0", 10))
    assert [item.item_id for item in page.items] == [f"i{n}" for n in range(6, 16)]
    assert catalog.calls == [[f"i{n}" for n in range(1, 21)]]
    assert page.degraded == []


async def test_similar_items_look_further_when_inactive_items_leave_the_page_short() -> None:
    # The first 6 neighbours (i1..i6) hold one active item: the rest of the list fills the page.
    catalog = RecordingCatalog(backend())
    rec = await recommender(catalog)
    page = await rec.similar(SimilarQuery("i0", 3))
    assert [item.item_id for item in page.items] == ["i6", "i7", "i8"]
    assert catalog.calls[0] == [f"i{n}" for n in range(1, 7)]
    assert catalog.calls[1] == [f"i{n}" for n in range(7, 40)]


async def test_similar_items_with_a_region_ask_for_every_neighbour() -> None:
    catalog = RecordingCatalog(backend())
    rec = await recommender(catalog)
    page = await rec.similar(SimilarQuery("i0", 10, region="berlin"))
    assert len(page.items) == 10
    assert catalog.calls == [[f"i{n}" for n in range(1, 40)]]


async def test_similar_items_without_the_catalog_fill_a_degraded_page_with_one_call() -> None:
    catalog = RecordingCatalog(backend(), down_from=1)
    rec = await recommender(catalog)
    page = await rec.similar(SimilarQuery("i0", 3))
    assert [item.item_id for item in page.items] == ["i1", "i2", "i3"]  # activity unknown
    assert page.degraded == [DEP_CATALOG]
    assert len(catalog.calls) == 1


async def test_a_feed_never_shows_an_unlisted_item_when_the_fill_lookup_fails() -> None:
    # bike-fan viewed i9: its neighbours i10..i48 fill 5 bikes and 5 sofas (the caps), so the
    # page is short and the bikes' popular list fills it, for which the catalog is asked
    # again, and fails. i12 is a neighbour the catalog's first answer did not list: gone.
    data = backend(unlisted=["i12"])
    catalog = RecordingCatalog(data, down_from=2)
    rec = await recommender(catalog, max_per_category=5)
    page = await rec.feed(FeedQuery("bike-fan", 20))
    assert len(catalog.calls) == 2 and "i12" in catalog.calls[0]
    assert page.degraded == [DEP_CATALOG]
    assert len(page.items) == 20
    assert "i12" not in {item.item_id for item in page.items}


async def test_a_feed_never_fills_with_an_item_the_first_lookup_found_gone() -> None:
    # bike-fan's neighbours (i10..i48, asked first) leave the page short at the caps, and
    # the bikes' popular list fills it. i13, a bike among those neighbours, is gone by the
    # first answer; the fill must not ask for it again, nor show it when the fill's own
    # lookup fails and every other unknown item is shown on segment evidence.
    catalog = RecordingCatalog(backend(unlisted=["i13"]), down_from=2)
    rec = await recommender(catalog, max_per_category=5)
    page = await rec.feed(FeedQuery("bike-fan", 20))
    assert len(catalog.calls) == 2 and "i13" in catalog.calls[0]
    assert "i13" not in catalog.calls[1]
    assert page.degraded == [DEP_CATALOG]
    assert len(page.items) == 20
    assert "i13" not in {item.item_id for item in page.items}


async def test_similar_items_never_show_an_unlisted_neighbour_if_the_next_lookup_fails() -> None:
    # Page of 3: i0's first 6 neighbours are i1..i5 (inactive) and i6, which the catalog's
    # first answer does not list (gone). The rest is looked up, and that call fails.
    catalog = RecordingCatalog(backend(unlisted=["i6"]), down_from=2)
    rec = await recommender(catalog)
    page = await rec.similar(SimilarQuery("i0", 3))
    assert len(catalog.calls) == 2 and "i6" in catalog.calls[0]
    assert page.degraded == [DEP_CATALOG]
    assert [item.item_id for item in page.items] == ["i7", "i8", "i9"]  # activity unknown


def backend_with_vectors() -> EmbeddedBackend:
    """Items w0..w99 in two directions (even ones along x, odd ones along y); no neighbour
    list for any of them: a catalog whose lists are thin, as for new items."""
    items = [f"w{n}" for n in range(100)]
    vectors = np.array([[1.0, 0.01 * n] if n % 2 == 0 else [0.01 * n, 1.0] for n in range(100)])
    return EmbeddedBackend(
        version="v1",
        neighbours={},
        popular={"global": ScoredList(("w99", "w97"), (2.0, 1.0))},
        catalog={i: CatalogItem(i, active=True) for i in items},
        interactions={"even-fan": [Interaction("w0", "view", NOW), Interaction("w2", "view", NOW)]},
        embeddings=table_from_arrays(items, vectors, "test"),
    )


async def vector_recommender(ann_weight: float) -> Recommender:
    data = backend_with_vectors()
    models = ModelTracker(data, refresh_s=60)
    await models.refresh()
    settings = Settings.from_env({}).model_copy(update={"ann_weight": ann_weight})
    return Recommender(
        settings,
        models=models,
        interactions=data,
        neighbours=data.neighbour_lookup,
        catalog=data.catalog_lookup,
    )


async def test_without_neighbour_lists_the_feed_finds_candidates_near_the_users_vector() -> None:
    page = await (await vector_recommender(ann_weight=0.5)).feed(FeedQuery("even-fan", 5))
    assert page.model_version == "neighbours=v1,popular=v1,embeddings=v1"
    assert [item.source for item in page.items] == ["personalized"] * 5
    assert all(int(item.item_id[1:]) % 2 == 0 for item in page.items)  # the user's direction
    assert not {"w0", "w2"} & {item.item_id for item in page.items}  # seen
    # With the weight at 0 the same user gets the popular fallback.
    page = await (await vector_recommender(ann_weight=0.0)).feed(FeedQuery("even-fan", 2))
    assert [item.item_id for item in page.items] == ["w99", "w97"]


async def test_an_item_without_a_neighbour_list_gets_similar_items_from_its_vector() -> None:
    page = await (await vector_recommender(ann_weight=0.0)).similar(SimilarQuery("w1", 3))
    assert [item.source for item in page.items] == ["similar"] * 3
    assert all(int(item.item_id[1:]) % 2 == 1 for item in page.items)
    assert "w1" not in {item.item_id for item in page.items}

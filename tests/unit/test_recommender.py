"""The recommender over in-memory sources (the embedded backend's seams, no files)."""

from __future__ import annotations

import dataclasses

import pytest

from app.config import Settings
from app.domain import CatalogItem, Interaction
from app.model_versions import ModelTracker
from app.ranking.types import ScoredList
from app.recommender import FeedQuery, PopularQuery, Recommender
from app.sources.embedded import EmbeddedBackend

NOW = 1_800_000_000_000


def backend() -> EmbeddedBackend:
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
    return EmbeddedBackend(
        version="v1",
        neighbours=neighbours,
        popular=popular,
        catalog=catalog,
        interactions={"u": [Interaction("i0", "view", NOW)]},
    )


async def recommender(**overrides: object) -> Recommender:
    settings = dataclasses.replace(Settings.from_env({}), **overrides)  # type: ignore[arg-type]
    data = backend()
    models = ModelTracker(data, refresh_s=60)
    await models.refresh()
    return Recommender(
        settings,
        models=models,
        interactions=data,
        neighbours=data.neighbour_lookup,
        catalog=data.catalog_lookup,
        clock_ms=lambda: NOW,
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

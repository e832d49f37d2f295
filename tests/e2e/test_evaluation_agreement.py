"""Offline and online agree: the evaluator's top K is the embedded service's feed.

A small demo is split leave-last-out and its models are built from the training part; the
service (`python -m app`, embedded backend) serves that data folder over HTTP with the same
settings the evaluator reads. For a sample of users, the items (and their order) of the
service's feed equal the evaluator's list, and so do the served-from-history flags. Both
blend in the candidates of an embeddings version, indexed each on its own side.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.config import Settings
from app.embeddings import read_embeddings, write_embeddings
from app.evaluation.protocols import split_log
from app.evaluation.runner import feed_page, in_process_recommender
from app.offline.cooccurrence import build_neighbours, write_neighbours_csv
from app.offline.demo import generate_demo
from app.offline.factorization import FactorizationConfig, train_factors
from app.offline.formats import read_catalog, write_interactions
from app.offline.popular import item_popularity, popular_lists, write_popular_csv
from app.sources.embedded import read_neighbour_lists, read_popular_lists
from tests.support import ServiceProcess

pytestmark = pytest.mark.e2e

K = 20
# Serving knobs away from their defaults, so agreement cannot come from both sides falling
# back on the same defaults while one of them ignores the settings.
KNOBS = {
    "RECS_HISTORY_LIMIT": "30",
    "RECS_RECENCY_HALF_LIFE_MS": "7200000",
    "RECS_RECENCY_POSITION_DECAY": "0.85",
    "RECS_MAX_PER_CATEGORY": "4",
    "RECS_MAX_PER_SELLER": "1",
    "RECS_EVENT_WEIGHTS": "view=1,favorite=2,message=6,add_to_cart=3,purchase=9",
    "RECS_ANN_WEIGHT": "0.3",
    "RECS_ANN_CANDIDATES": "40",
}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    root = tmp_path_factory.mktemp("agreement")
    generate_demo(root / "demo", items=2000, users=300, seed=5)
    split = split_log(root / "demo" / "interactions.csv.gz", "leave-last-out", history_kept=200)
    data = root / "train"
    data.mkdir()
    write_interactions(data / "interactions.csv", split.train_rows)
    write_neighbours_csv(data / "neighbours.csv", build_neighbours(split.train_rows))
    catalog = {item.item_id: item for item in read_catalog(root / "demo" / "catalog.jsonl")}
    write_popular_csv(
        data / "popular.csv", popular_lists(item_popularity(split.train_rows), catalog)
    )
    (data / "catalog.jsonl").write_bytes((root / "demo" / "catalog.jsonl").read_bytes())
    learned = train_factors(split.train_rows, FactorizationConfig(factors=16, threads=1))
    write_embeddings(data / "embeddings.npz", learned.item_ids, learned.items)
    service = ServiceProcess(
        env={
            **KNOBS,
            "RECS_BACKEND": "embedded",
            "RECS_EMBEDDED_DATA_DIR": str(data),
            "RECS_LOG_LEVEL": "warning",
        },
        log=root / "service.log",
    )
    service.start()
    yield data, service.url
    service.stop()


def test_the_evaluators_top_k_is_the_services_feed(served: tuple[Path, str]) -> None:
    data, url = served
    settings = Settings.from_env(KNOBS)
    split = split_log(data.parent / "demo" / "interactions.csv.gz", "leave-last-out",
                      history_kept=settings.history_limit)  # fmt: skip
    catalog = {item.item_id: item for item in read_catalog(data / "catalog.jsonl")}
    recommender, models = in_process_recommender(
        settings,
        split,
        read_neighbour_lists(data / "neighbours.csv"),
        read_popular_lists(data / "popular.csv"),
        catalog,
        read_embeddings(data / "embeddings.npz"),
    )
    users = random.Random(3).sample(sorted(split.targets), 60)

    async def offline() -> dict[str, list[tuple[str, str]]]:
        snapshot = await models.refresh()
        assert snapshot.embeddings is not None
        pages = {user: await feed_page(recommender, user, K) for user in users}
        return {u: [(i.item_id, i.source) for i in page.items] for u, page in pages.items()}

    expected = asyncio.run(offline())
    with httpx.Client(base_url=url, timeout=10) as http:
        for user in users:
            response = http.get(f"/v1/users/{user}/recommendations", params={"limit": K})
            assert response.status_code == 200, response.text
            online = [(i["item_id"], i["source"]) for i in response.json()["items"]]
            assert online == expected[user], user
    # The sample is not trivial: personalized pages, and more than one shape of page.
    assert sum(any(s == "personalized" for _, s in page) for page in expected.values()) > 40
    assert len({tuple(page) for page in expected.values()}) > 50

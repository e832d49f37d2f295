"""Embeddings versions while serving: one snapshot per request, across a switch and a rollback.

The service (remote backend, its own keyspace) blends embedding candidates into the feed.
Two embeddings versions hold the same vectors given to different items, so a user's feed
differs between them, and a feed built from one version's user vector and the other's index
would match neither. Only the embeddings model changes: neighbours and popular stay at their
versions throughout (a version published without the others). Under a steady load, the
version is switched and rolled back; every answer must name one embeddings version and be,
item for item, the page that version gives when it serves alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest

from app.config import Settings
from app.embeddings import write_embeddings
from app.offline.factorization import FactorizationConfig, train_factors
from app.offline.formats import InteractionLog
from tests.conftest import Dataset, own_keyspace, recs_cli
from tests.support import Probe, ServiceProcess, wait_for

pytestmark = pytest.mark.e2e

LIMIT = 10


def embeddings_version(body: dict[str, Any]) -> str:
    return str(body["model_version"]).rsplit("embeddings=", 1)[1]


@pytest.fixture(scope="module")
def served(
    loaded_env: dict[str, str],
    dataset: Dataset,
    cql_session: Any,
    settings: Settings,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[dict[str, str], ServiceProcess]]:
    tmp = tmp_path_factory.mktemp("embeddings")
    learned = train_factors(
        InteractionLog(dataset.path / "interactions.csv.gz"),
        FactorizationConfig(factors=16, threads=1),
    )
    permuted = np.random.default_rng(1).permutation(len(learned.item_ids))
    write_embeddings(tmp / "one.npz", learned.item_ids, learned.items)
    write_embeddings(tmp / "two.npz", learned.item_ids, learned.items[permuted])
    with own_keyspace(cql_session, settings, "embsync") as keyspace:
        env = {**loaded_env, "RECS_SCYLLA_KEYSPACE": keyspace}
        recs_cli(env, "load", "neighbours", str(dataset.path / "neighbours.csv.gz"))
        recs_cli(env, "load", "popular", str(dataset.path / "popular.csv"))
        recs_cli(env, "load", "embeddings", str(tmp / "one.npz"), "--version", "emb-one")
        recs_cli(env, "load", "embeddings", str(tmp / "two.npz"), "--version", "emb-two",
                 "--no-activate")  # fmt: skip
        service = ServiceProcess(
            env={
                **env,
                "RECS_ANN_WEIGHT": "0.5",
                "RECS_MODEL_REFRESH_S": "0.2",
                # Answers are compared item by item: a dependency that misses a busy box's
                # deadline would degrade a page (no catalog: no caps), not the version.
                "RECS_REQUEST_DEADLINE_MS": "4500",
                "RECS_SCYLLA_TIMEOUT_MS": "4000",
                "RECS_DYNAMODB_TIMEOUT_MS": "4000",
                "RECS_CATALOG_TIMEOUT_MS": "4000",
                "RECS_LOG_LEVEL": "warning",
            },
            log=tmp / "service.log",
        )
        service.start()
        try:
            yield env, service
        finally:
            service.stop()


def users(dataset: Dataset) -> list[str]:
    return [u for u, history in sorted(dataset.histories.items()) if len(history) >= 5][:8]


def pages(http: httpx.Client, who: list[str], version: str) -> dict[str, list[str]]:
    """Each user's page once `version` serves alone (checked on every answer)."""
    out = {}
    for user in who:
        body = http.get(f"/v1/users/{user}/recommendations", params={"limit": LIMIT}).json()
        assert embeddings_version(body) == version, body["model_version"]
        assert body["degraded"] == []
        out[user] = [item["item_id"] for item in body["items"]]
    return out


def switch(env: dict[str, str], http: httpx.Client, *args: str, to: str) -> None:
    recs_cli(env, "versions", *args)

    def serving() -> bool:
        body = http.get("/readyz").json()
        return embeddings_version({"model_version": body["model_version"]}) == to

    wait_for(serving, timeout_s=60)


def test_every_answer_comes_from_one_embeddings_version_across_switch_and_rollback(
    served: tuple[dict[str, str], ServiceProcess], dataset: Dataset
) -> None:
    env, service = served
    who = users(dataset)
    with httpx.Client(base_url=service.url, timeout=10) as http:
        expected = {"emb-one": pages(http, who, "emb-one")}
        switch(env, http, "activate", "embeddings", "emb-two", to="emb-two")
        expected["emb-two"] = pages(http, who, "emb-two")
        differing = sum(expected["emb-one"][u] != expected["emb-two"][u] for u in who)
        assert differing >= len(who) // 2, "the two versions must give different feeds"

        def feed(client: httpx.Client, n: int) -> tuple[str, httpx.Response]:
            user = who[n % len(who)]
            response = client.get(f"/v1/users/{user}/recommendations", params={"limit": LIMIT})
            return user, response

        with Probe(service.url, feed, threads=2) as probe:
            wait_for(lambda: len(probe.samples) >= 20, timeout_s=60)
            switch(env, http, "rollback", "embeddings", to="emb-one")
            wait_for(lambda: len(probe.samples) >= 60, timeout_s=60)
            switch(env, http, "activate", "embeddings", "emb-two", to="emb-two")
            wait_for(lambda: len(probe.samples) >= 100, timeout_s=60)

    seen = {"emb-one": 0, "emb-two": 0}
    for sample in probe.samples:
        assert sample.status == 200, sample.body
        version = embeddings_version(sample.body)
        assert sample.body["model_version"].startswith("neighbours=nb-")
        items = [item["item_id"] for item in sample.body["items"]]
        assert items == expected[version][sample.kind], (sample.kind, version, sample.body)
        seen[version] += 1
    assert min(seen.values()) > 0, seen

"""Activation gated by quality, through the real `recs` command line and Cassandra.

A version that scores worse than the active one on a holdout log is published but never
activated (exit 1): it stays ready and inactive, the active version keeps serving, and no
older version is cleaned up. A version that scores as well is activated.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.config import Settings
from app.evaluation.protocols import split_log
from app.offline.cooccurrence import build_neighbours, write_neighbours_csv
from app.offline.demo import generate_demo
from app.offline.formats import read_catalog
from app.offline.popular import item_popularity, popular_lists, write_popular_csv
from app.publishing import versions
from tests.conftest import own_keyspace, recs_cli

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def gate_env(
    test_env: dict[str, str], settings: Settings, cql_session: Any
) -> Iterator[dict[str, str]]:
    with own_keyspace(cql_session, settings, "gate") as keyspace:
        yield {**test_env, "RECS_SCYLLA_KEYSPACE": keyspace, "RECS_MODEL_VERSIONS_KEPT": "2"}


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("gate")
    generate_demo(root, items=1500, users=250, seed=8)
    holdout = root / "interactions.csv.gz"
    split = split_log(holdout, "leave-last-out", history_kept=50)
    good = build_neighbours(split.train_rows)
    # The same items with other items' lists: a model that learned nothing.
    shuffled = list(good.values())
    random.Random(1).shuffle(shuffled)
    bad = {
        item: [(other, score) for other, score in lists if other != item]
        for item, lists in zip(good, shuffled, strict=True)
    }
    catalog = {item.item_id: item for item in read_catalog(root / "catalog.jsonl")}
    out = {"holdout": holdout, "good": root / "good.csv", "bad": root / "bad.csv"}
    write_neighbours_csv(out["good"], good)
    write_neighbours_csv(out["bad"], bad)
    out["popular"] = root / "popular-train.csv"
    write_popular_csv(out["popular"], popular_lists(item_popularity(split.train_rows), catalog))
    return out


def hit_rates(stdout: str) -> dict[str, float]:
    return {
        kind: float(rate)
        for kind, rate in re.findall(r"\((candidate|active)\): hr@10 ([0-9.]+)", stdout)
    }


def test_a_worse_version_is_refused_and_a_good_one_activated(
    gate_env: dict[str, str], cql_session: Any, files: dict[str, Path]
) -> None:
    keyspace = gate_env["RECS_SCYLLA_KEYSPACE"]
    recs_cli(gate_env, "load", "popular", str(files["popular"]))
    recs_cli(gate_env, "load", "neighbours", str(files["good"]), "--version", "nb-good")
    recs_cli(gate_env, "load", "neighbours", str(files["good"]), "--version", "nb-older",
             "--no-activate")  # fmt: skip
    before = {v.version for v in versions.list_versions(cql_session, keyspace, "neighbours")}

    refused = recs_cli(
        gate_env, "load", "neighbours", str(files["bad"]), "--version", "nb-bad",
        "--gate", str(files["holdout"]), check=False,
    )  # fmt: skip
    assert refused.returncode == 1, refused.stderr
    rates = hit_rates(refused.stdout)
    assert rates["candidate"] < 0.5 * rates["active"], refused.stdout
    assert "activation refused" in refused.stderr
    listing = {v.version: v for v in versions.list_versions(cql_session, keyspace, "neighbours")}
    assert listing["nb-bad"].status == versions.STATUS_READY
    assert not listing["nb-bad"].active
    assert listing["nb-good"].active
    # Nothing else changed: with 2 versions kept, a clean-up would have deleted one.
    assert set(listing) == before | {"nb-bad"}

    again = recs_cli(
        gate_env, "versions", "activate", "neighbours", "nb-bad",
        "--gate", str(files["holdout"]), check=False,
    )  # fmt: skip
    assert again.returncode == 1
    assert versions.active_version(cql_session, keyspace, "neighbours") == "nb-good"

    passed = recs_cli(
        gate_env, "load", "neighbours", str(files["good"]), "--version", "nb-same",
        "--gate", str(files["holdout"]),
    )  # fmt: skip
    rates = hit_rates(passed.stdout)
    assert rates["candidate"] == rates["active"] > 0.05
    assert "nb-same: activated" in passed.stdout
    assert versions.active_version(cql_session, keyspace, "neighbours") == "nb-same"
    # Activated, the gated load cleaned up as any load does (2 kept, the active among them).
    kept = {v.version for v in versions.list_versions(cql_session, keyspace, "neighbours")}
    assert "nb-same" in kept and len(kept) == 2

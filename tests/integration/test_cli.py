"""The `recs` command line as an operator runs it: `python -m app.cli.main` in a subprocess,
against the real local stack.

The module works in a keyspace, a DynamoDB table and a catalog service of its own (named
after the session's), so the versions it activates and rolls back never reach the data the
other integration and end-to-end tests serve from. Files are a few rows each: a test's time
goes into process starts and the driver's connection, not into data.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
import numpy as np
import pytest

from app.config import Settings
from app.embeddings import write_embeddings
from app.offline.formats import read_neighbours, read_popular
from app.publishing import versions
from app.schema.dynamodb import ensure_table
from tests.conftest import own_keyspace, recs_cli
from tests.support import REPO, CatalogProcess

pytestmark = pytest.mark.integration

# A day ago: well inside the events' retention (DynamoDB's TTL counts from ts_ms).
TS = time.time_ns() // 1_000_000 - 86_400_000

NEIGHBOURS_HEADER = "item_id,similar_item_id,score\n"
POPULAR_HEADER = "segment,item_id,score\n"
INTERACTIONS_HEADER = "user_id,item_id,event_type,ts_ms\n"


@dataclass(frozen=True)
class Cli:
    env: dict[str, str]
    tmp: Path

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return recs_cli(self.env, *args, check=False)

    def ok(self, *args: str) -> subprocess.CompletedProcess[str]:
        result = self(*args)
        assert result.returncode == 0, f"recs {' '.join(args)}:\n{result.stderr[-2000:]}"
        return result

    def file(self, name: str, text: str) -> Path:
        path = self.tmp / name
        path.write_text(text)
        return path


@pytest.fixture(scope="module")
def cli(
    test_env: dict[str, str],
    settings: Settings,
    cql_session: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Cli]:
    tmp = tmp_path_factory.mktemp("cli")
    catalog = CatalogProcess(data=tmp / "catalog-service.jsonl")
    catalog.start()
    table = f"{test_env['RECS_DYNAMODB_TABLE']}_cli"
    # The schema as `recs schema apply` makes it, in process: a CLI run costs a driver start-up.
    with own_keyspace(cql_session, settings, "cli") as keyspace:
        env = {
            **test_env,
            "RECS_SCYLLA_KEYSPACE": keyspace,
            "RECS_DYNAMODB_TABLE": table,
            "RECS_CATALOG_URL": catalog.url,
            # Enough that no test here loses a version to clean-up (tested in publishing/).
            "RECS_MODEL_VERSIONS_KEPT": "20",
        }
        try:
            ensure_table(dynamodb(env), table)
            yield Cli(env, tmp)
        finally:
            catalog.stop()
            client = dynamodb(env)
            with contextlib.suppress(client.exceptions.ResourceNotFoundException):
                client.delete_table(TableName=table)


def dynamodb(env: dict[str, str]) -> Any:
    return boto3.client(
        "dynamodb",
        region_name=env["RECS_DYNAMODB_REGION"],
        endpoint_url=env["RECS_DYNAMODB_ENDPOINT_URL"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )


def stored_events(env: dict[str, str], user_id: str) -> int:
    return int(
        dynamodb(env).query(
            TableName=env["RECS_DYNAMODB_TABLE"],
            KeyConditionExpression="user_id = :u",
            ExpressionAttributeValues={":u": {"S": user_id}},
            Select="COUNT",
            ConsistentRead=True,
        )["Count"]
    )


_PUBLISHED = re.compile(r"^(neighbours|popular) ((?:nb|pop)-[0-9a-f]{12}): (.+)$", re.MULTILINE)


def published(result: subprocess.CompletedProcess[str], model: str) -> tuple[str, str]:
    """(version, what happened) from the first line a load prints."""
    match = _PUBLISHED.search(result.stdout)
    assert match is not None and match[1] == model, result.stdout
    return match[2], match[3]


def listed(cli: Cli, model: str) -> dict[str, tuple[bool, str]]:
    """`recs versions list MODEL`: version -> (active, status)."""
    out = cli.ok("versions", "list", model).stdout
    assert out.startswith(f"{model}:\n"), out
    rows = re.findall(r"^ ([* ]) (\S+)\s+(loading|ready)\s+created ", out, re.MULTILINE)
    return {version: (mark == "*", status) for mark, version, status in rows}


def active(listing: dict[str, tuple[bool, str]]) -> list[str]:
    return [version for version, (is_active, _) in listing.items() if is_active]


def assert_stopped_at(
    result: subprocess.CompletedProcess[str], path: Path, line: int, reason: str
) -> None:
    assert result.returncode == 2, result.stderr
    assert f"error: {path}:{line}: {reason}" in result.stderr
    assert "nothing was loaded; fix the row or pass --skip-invalid" in result.stderr


def assert_skipped_one(result: subprocess.CompletedProcess[str], path: Path, line: int) -> None:
    assert f"{path}: skipped 1 invalid rows" in result.stderr
    assert f"  {path}:{line}: " in result.stderr


# --- model data: neighbours and popular lists ---------------------------------------------


def test_neighbours_load_stops_at_a_bad_row_skips_it_on_request_and_versions_follow(
    cli: Cli, cql_session: Any
) -> None:
    keyspace = cli.env["RECS_SCYLLA_KEYSPACE"]
    good = cli.file("nb-good.csv", NEIGHBOURS_HEADER + "nb-a,nb-b,0.9\nnb-b,nb-a,0.9\n")
    # Columns in another order, a blank line, then an item pointing to itself on line 4.
    bad = cli.file(
        "nb-bad.csv",
        "score,similar_item_id,item_id\n0.8,nb-d,nb-c\n\n0.5,nb-c,nb-c\n0.7,nb-c,nb-d\n",
    )

    good_version, what = published(cli.ok("load", "neighbours", str(good)), "neighbours")
    assert what.startswith("published and activated: 2 rows read")

    stopped = cli("load", "neighbours", str(bad))
    assert_stopped_at(stopped, bad, 4, "item_id equals similar_item_id: 'nb-c'")
    assert stopped.stdout == ""
    listing = listed(cli, "neighbours")
    assert active(listing) == [good_version]
    assert all(status == "ready" for _, status in listing.values())  # nothing half-loaded

    skipping = cli.ok("load", "neighbours", str(bad), "--skip-invalid")
    assert_skipped_one(skipping, bad, 4)
    skip_version, what = published(skipping, "neighbours")
    assert skip_version != good_version
    assert what.startswith("published and activated: 2 rows read")
    assert "2 rows in 2 partitions written and verified" in what

    # Same file, same options: the same content-derived version, not a second copy.
    again = cli.ok("load", "neighbours", str(bad), "--skip-invalid")
    assert published(again, "neighbours") == (skip_version, "already published; activated (2 keys)")

    rolled = cli.ok("versions", "rollback", "neighbours")
    assert rolled.stdout == f"neighbours: rolled back to {good_version}\n"
    assert versions.active_version(cql_session, keyspace, "neighbours") == good_version
    activated = cli.ok("versions", "activate", "neighbours", skip_version)
    assert activated.stdout == f"neighbours: {skip_version} is active\n"
    assert versions.active_version(cql_session, keyspace, "neighbours") == skip_version

    unknown = cli("versions", "activate", "neighbours", "nb-000000000000")
    assert unknown.returncode == 1
    assert "error: neighbours version 'nb-000000000000' does not exist" in unknown.stderr


def test_popular_load_stops_at_a_bad_row_and_skips_it_on_request(cli: Cli) -> None:
    good = cli.file("pop-good.csv", POPULAR_HEADER + "global,pop-a,10\ncategory:bikes,pop-a,10\n")
    bad = cli.file(
        "pop-bad.csv",
        POPULAR_HEADER + "global,pop-b,3\neverywhere,pop-c,2\nregion:berlin,pop-b,3e0\n",
    )

    good_version, what = published(cli.ok("load", "popular", str(good)), "popular")
    assert what.startswith("published and activated: 2 rows read")

    stopped = cli("load", "popular", str(bad))
    assert_stopped_at(
        stopped,
        bad,
        3,
        "segment must be 'global', 'category:<label>' or 'region:<label>' (a label: 1 to 128 "
        "characters, no control characters, not only spaces): 'everywhere'",
    )
    assert active(listed(cli, "popular")) == [good_version]

    skipping = cli.ok("load", "popular", str(bad), "--skip-invalid")
    assert_skipped_one(skipping, bad, 3)
    version, what = published(skipping, "popular")
    assert version != good_version
    assert what.startswith("published and activated: 2 rows read")
    assert "2 rows in 2 partitions written and verified" in what  # global, region:berlin


# --- interactions (DynamoDB) and the catalog service -------------------------------------


def test_interactions_load_once_unless_forced_and_stop_at_a_bad_row(cli: Cli) -> None:
    rows = [f"ix-user-{n % 2},ix-item-{n},view,{TS + n * 1000}" for n in range(6)]
    good = cli.file("ix-good.csv", INTERACTIONS_HEADER + "\n".join(rows) + "\n")
    # 850 good rows before the bad one: more than the loader writes at a time (800).
    before = "".join(f"ix-bad-0,ix-item-{n},view,{TS + n}\n" for n in range(850))
    bad = cli.file(
        "ix-bad.csv",
        INTERACTIONS_HEADER
        + before
        + f"ix-bad-1,ix-item-2,like,{TS}\n"
        + f"ix-bad-2,ix-item-3,view,{TS}\n",
    )
    table = cli.env["RECS_DYNAMODB_TABLE"]

    stopped = cli("load", "interactions", str(bad))
    assert_stopped_at(
        stopped,
        bad,
        852,
        "unknown event_type 'like' (expected one of view, favorite, message, add_to_cart, "
        "purchase)",
    )
    # The whole file is checked before the first write: none of the 850 rows is stored.
    assert stored_events(cli.env, "ix-bad-0") == 0

    first = cli.ok("load", "interactions", str(good))
    assert first.stdout.startswith(f"interactions: 6 events stored in {table} in ")
    assert (stored_events(cli.env, "ix-user-0"), stored_events(cli.env, "ix-user-1")) == (3, 3)

    second = cli.ok("load", "interactions", str(good))
    assert second.stdout == f"interactions: {good} was loaded already (--force loads it again)\n"

    forced = cli.ok("load", "interactions", str(good), "--force")
    assert forced.stdout.startswith(f"interactions: 6 events stored in {table} in ")
    # Event ids derive from the row: loading a file again stores nothing twice.
    assert (stored_events(cli.env, "ix-user-0"), stored_events(cli.env, "ix-user-1")) == (3, 3)

    # The failed load recorded nothing, so the same file loads once its bad row is skipped.
    skipping = cli.ok("load", "interactions", str(bad), "--skip-invalid")
    assert skipping.stdout.startswith(f"interactions: 851 events stored in {table} in ")
    assert_skipped_one(skipping, bad, 852)
    assert stored_events(cli.env, "ix-bad-0") == 850
    assert stored_events(cli.env, "ix-bad-2") == 1


def test_catalog_load_stops_at_a_bad_line_and_skips_it_on_request(cli: Cli) -> None:
    bad = cli.file(
        "catalog-bad.jsonl",
        '{"item_id": "cat-a", "title": "A bike", "category": "bikes", "price": 120}\n'
        '{"item_id": "cat-b", "price": "12"}\n'
        '{"item_id": "cat-c", "region": "berlin", "active": false}\n',
    )

    def in_catalog() -> dict[str, Any]:
        url = f"{cli.env['RECS_CATALOG_URL']}/items"
        response = httpx.get(url, params={"ids": "cat-a,cat-b,cat-c"}, timeout=5)
        response.raise_for_status()
        return {item["item_id"]: item for item in response.json()["items"]}

    stopped = cli("load", "catalog", str(bad))
    assert_stopped_at(stopped, bad, 2, "price must be a number, got a string")
    assert in_catalog() == {}

    skipping = cli.ok("load", "catalog", str(bad), "--skip-invalid")
    assert skipping.stdout == f"catalog: 2 items loaded into {cli.env['RECS_CATALOG_URL']}\n"
    assert_skipped_one(skipping, bad, 2)
    loaded = in_catalog()
    assert sorted(loaded) == ["cat-a", "cat-c"]
    assert loaded["cat-a"]["price"] == 120 and loaded["cat-c"]["active"] is False


# --- building model files --------------------------------------------------------------


def test_built_neighbours_and_popular_files_load(cli: Cli) -> None:
    # Four users each view bd-1, bd-2, bd-3 a minute apart, an hour after one another: one
    # session each. A day later, a purchase of bd-4 is a session of its own: no pairs.
    start = TS - 2 * 86_400_000
    rows = [
        f"bd-user-{user},bd-{item},view,{start + user * 3_600_000 + item * 60_000}"
        for user in range(4)
        for item in (1, 2, 3)
    ]
    rows.append(f"bd-user-0,bd-4,purchase,{start + 86_400_000}")
    interactions = cli.file("bd-interactions.csv", INTERACTIONS_HEADER + "\n".join(rows) + "\n")
    catalog = cli.file(
        "bd-catalog.jsonl",
        '{"item_id": "bd-1", "category": "bikes", "region": "berlin"}\n'
        '{"item_id": "bd-2", "category": "bikes", "region": "paris"}\n'
        '{"item_id": "bd-3", "category": "books", "region": "berlin", "active": false}\n',
    )
    neighbours_out = cli.tmp / "built" / "neighbours.csv.gz"
    popular_out = cli.tmp / "built" / "popular.csv"
    neighbours_out.parent.mkdir()

    built = cli.ok(
        "build", "neighbours", str(interactions), str(neighbours_out), "--top-k", "5",
        "--session-gap-minutes", "30",
    )  # fmt: skip
    assert built.stdout.startswith(
        f"neighbours (cooccurrence): 13 interactions -> 6 rows in {neighbours_out}"
    )
    viewed_together = ("bd-1", "bd-2", "bd-3")
    pairs = {(item, other) for item, other, _ in read_neighbours(neighbours_out)}
    assert pairs == {(a, b) for a in viewed_together for b in viewed_together if a != b}

    built = cli.ok("build", "popular", str(interactions), str(catalog), str(popular_out))
    assert built.stdout.startswith(f"popular: 6 rows in {popular_out}")
    # bd-3 is inactive and bd-4 is not in the catalog: neither is listed anywhere.
    assert {(segment, item) for segment, item, _ in read_popular(popular_out)} == {
        ("global", "bd-1"),
        ("global", "bd-2"),
        ("category:bikes", "bd-1"),
        ("category:bikes", "bd-2"),
        ("region:berlin", "bd-1"),
        ("region:paris", "bd-2"),
    }

    # The two models are independent: load them side by side.
    with ThreadPoolExecutor(max_workers=2) as pool:
        loads = pool.map(
            lambda args: cli.ok(*args),
            [("load", "neighbours", str(neighbours_out)), ("load", "popular", str(popular_out))],
        )
        neighbours_load, popular_load = list(loads)
    _, what = published(neighbours_load, "neighbours")
    assert what.startswith("published and activated: 6 rows read")
    _, what = published(popular_load, "popular")
    assert what.startswith("published and activated: 6 rows read")


def test_a_command_exits_as_soon_as_it_is_done(cli: Cli) -> None:
    """The driver's libev reactor must not hold a command 5 s at exit once its work is done."""
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli.main", "versions", "list"],
        env={**os.environ, **cli.env, "PYTHONUNBUFFERED": "1"},
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    first_line = process.stdout.readline()  # printed once the work is done
    printed = time.monotonic()
    process.communicate(timeout=120)
    assert first_line and process.returncode == 0
    assert time.monotonic() - printed < 2.5  # not held for the reactor's 5 s


def test_embeddings_load_validate_and_respect_the_memory_bound(cli: Cli) -> None:
    vectors = np.random.default_rng(4).standard_normal((2500, 16))
    good = cli.tmp / "emb-good.npz"
    write_embeddings(good, [f"emb-{n}" for n in range(2500)], vectors)
    loaded = cli.ok("load", "embeddings", str(good), "--version", "emb-cli-1")
    assert "embeddings emb-cli-1: published and activated: 2500 vectors of 16" in loaded.stdout
    assert active(listed(cli, "embeddings")) == ["emb-cli-1"]

    bad = cli.tmp / "emb-bad.npz"
    np.savez(bad, item_ids=np.asarray(["a", "b"]), vectors=np.asarray([[1.0], [np.nan]]))
    refused = cli("load", "embeddings", str(bad))
    assert refused.returncode == 2
    assert f"error: {bad}: row 2 (item 'b'): vector has a value" in refused.stderr
    assert "nothing was loaded" in refused.stderr

    over = recs_cli(
        {**cli.env, "RECS_EMBEDDINGS_MAX_MB": "1"},
        "load", "embeddings", str(good), "--version", "emb-cli-2",
        check=False,
    )  # fmt: skip
    assert over.returncode == 1
    assert "activation refused" in over.stderr and "RECS_EMBEDDINGS_MAX_MB (1)" in over.stderr
    listing = listed(cli, "embeddings")
    assert listing["emb-cli-2"] == (False, "ready")
    assert active(listing) == ["emb-cli-1"]

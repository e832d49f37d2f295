"""Model versions while serving: switch, rollback, and atomic activation during a load."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.offline.formats import write_neighbours
from app.offline.topk import iter_rows
from tests.conftest import Dataset, recs_cli
from tests.support import Probe, ServiceProcess, wait_for

pytestmark = pytest.mark.e2e

Lists = dict[str, list[tuple[str, float]]]


def reads(url: str, path: str) -> Probe:
    """One thread asking for `path` in a loop, every answer recorded in order."""
    return Probe(url, lambda client, _: ("read", client.get(path)), threads=1)


def versions(probe: Probe) -> list[str]:
    """The neighbours version of each answer so far, in order."""
    return [neighbours_version(s.body) for s in probe.samples if s.status == 200]


def failures(probe: Probe, check: Callable[[dict[str, Any]], None] | None = None) -> list[str]:
    """Answers that were not a 200, or that `check` rejected."""
    out = []
    for sample in probe.samples:
        if sample.status != 200:
            out.append(f"{sample.status}: {sample.body}")
        elif check is not None:
            try:
                check(sample.body)
            except AssertionError as exc:
                out.append(str(exc))
    return out


def neighbours_version(body: dict[str, object]) -> str:
    return str(body["model_version"]).split(",")[0].removeprefix("neighbours=")


def wait_for_version(http: httpx.Client, predicate: Callable[[str], bool]) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        version = neighbours_version(http.get("/v1/popular", params={"limit": 1}).json())
        if predicate(version):
            return version
        time.sleep(0.05)
    raise AssertionError("the service did not pick up the version change within 30 s")


def test_switch_and_rollback_while_serving(
    service: ServiceProcess, loaded_env: dict[str, str], dataset: Dataset, tmp_path: Path
) -> None:
    item = next(i for i, n in sorted(dataset.neighbours.items()) if len(n) >= 12)
    eligible = {i for i, meta in dataset.catalog.items() if meta.active}
    old_order = [n for n, _ in dataset.neighbours[item] if n in eligible][:10]
    # The new model ranks the item's neighbours the other way round.
    changed: Lists = dict(dataset.neighbours)
    changed[item] = [(n, float(rank + 1)) for rank, (n, _) in enumerate(dataset.neighbours[item])]
    new_order = [n for n, _ in sorted(changed[item], key=lambda p: -p[1]) if n in eligible][:10]
    assert old_order != new_order
    new_file = tmp_path / "neighbours-v2.csv"
    write_neighbours(new_file, iter_rows(changed))

    with httpx.Client(base_url=service.url, timeout=5) as http:
        old_version = neighbours_version(http.get("/v1/popular").json())
        # Named before it is loaded, so that every answer, those at the switch included, is
        # checked against its version's order.
        new_version = f"reversed-{uuid.uuid4().hex[:8]}"
        orders = {old_version: old_order, new_version: new_order}

        def consistent(body: dict[str, Any]) -> None:
            served = [i["item_id"] for i in body["items"]]
            version = neighbours_version(body)
            assert version in orders, f"an unknown version {version!r} was served"
            assert served == orders[version], "a response mixed model versions"

        def answered_by(version: str, count: int) -> Callable[[], bool]:
            start = len(versions(probe))
            return lambda: versions(probe)[start:].count(version) >= count

        with reads(service.url, f"/v1/items/{item}/similar?limit=10") as probe:
            recs_cli(
                loaded_env, "load", "neighbours", str(new_file), "--version", new_version,
                "--quiet",
            )  # fmt: skip
            wait_for_version(http, lambda v: v == new_version)
            wait_for(answered_by(new_version, 20), timeout_s=30)
            recs_cli(loaded_env, "versions", "rollback", "neighbours")
            wait_for_version(http, lambda v: v == old_version)
            wait_for(answered_by(old_version, 20), timeout_s=30)
        assert failures(probe, consistent) == []
        assert set(versions(probe)) == {old_version, new_version}
        served = [
            i["item_id"] for i in http.get(f"/v1/items/{item}/similar?limit=10").json()["items"]
        ]
        assert served == old_order
        # Forward again, as an operator would after the incident.
        recs_cli(loaded_env, "versions", "activate", "neighbours", new_version)
        wait_for_version(http, lambda v: v == new_version)
        recs_cli(loaded_env, "versions", "activate", "neighbours", old_version)
        wait_for_version(http, lambda v: v == old_version)


def test_requests_during_a_load_see_only_the_old_version(
    service: ServiceProcess, loaded_env: dict[str, str], dataset: Dataset, tmp_path: Path
) -> None:
    # A bigger version, so the load takes a few seconds while requests keep coming.
    items = sorted(dataset.catalog)
    bigger: Lists = dict(dataset.neighbours)
    for n in range(6000):
        bigger[f"extra-{n}"] = [(items[(n + j) % len(items)], 1.0 / (j + 1)) for j in range(20)]
    new_file = tmp_path / "neighbours-big.csv"
    write_neighbours(new_file, iter_rows(bigger))

    with httpx.Client(base_url=service.url, timeout=5) as http:
        old_version = neighbours_version(http.get("/v1/popular").json())
        # The whole load (writes, verification), held back from activation: only the old
        # version may be served throughout.
        with reads(service.url, "/v1/popular?limit=5") as probe:
            time.sleep(0.2)
            recs_cli(loaded_env, "load", "neighbours", str(new_file), "--no-activate", "--quiet")
            time.sleep(0.5)  # more than one refresh interval after the load
        assert failures(probe) == []
        assert len(versions(probe)) > 20 and set(versions(probe)) == {old_version}
        # The same load activating itself: the switch happens once and never flaps back.
        with reads(service.url, "/v1/popular?limit=5") as probe:
            recs_cli(loaded_env, "load", "neighbours", str(new_file), "--quiet")
            new_version = wait_for_version(http, lambda v: v != old_version)
            time.sleep(0.3)
        assert failures(probe) == []
        seen = versions(probe)
        switch = seen.index(new_version)
        assert set(seen[:switch]) <= {old_version} and set(seen[switch:]) == {new_version}
        recs_cli(loaded_env, "versions", "activate", "neighbours", old_version)
        wait_for_version(http, lambda v: v == old_version)

"""End-to-end fixtures: a small demo loaded through the real CLI into the real stack, and
the service started as a subprocess (`python -m app`) serving from it over HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from app.domain import CatalogItem
from app.offline.demo import generate_demo
from app.offline.formats import read_catalog, read_interactions, read_neighbours
from app.offline.topk import top_k_neighbours
from tests.support import REPO, ServiceProcess


@dataclass(frozen=True)
class Dataset:
    path: Path
    catalog: dict[str, CatalogItem]
    histories: dict[str, list[tuple[str, int]]]  # user -> [(item, ts)] newest first
    neighbours: dict[str, list[tuple[str, float]]]

    def seen(self, user_id: str, limit: int = 50) -> set[str]:
        return {item for item, _ in self.histories.get(user_id, [])[:limit]}

    def inactive(self) -> set[str]:
        return {i for i, item in self.catalog.items() if not item.active}


def recs_cli(
    env: dict[str, str], *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """The real `recs` command line, against the test keyspace and table."""
    result = subprocess.run(
        [sys.executable, "-m", "app.cli.main", *args],
        env={**os.environ, **env},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if check:
        assert result.returncode == 0, result.stderr[-2000:]
    return result


@pytest.fixture(scope="session")
def dataset(data_root: Path) -> Dataset:
    path = data_root / "demo"
    generate_demo(path, items=3000, users=400, seed=11)
    histories: dict[str, list[tuple[str, int]]] = {}
    for user_id, item_id, _, ts_ms in read_interactions(path / "interactions.csv.gz"):
        histories.setdefault(user_id, []).append((item_id, ts_ms))
    for history in histories.values():
        history.sort(key=lambda pair: pair[1], reverse=True)
    return Dataset(
        path=path,
        catalog={item.item_id: item for item in read_catalog(path / "catalog.jsonl")},
        histories=histories,
        neighbours=top_k_neighbours(read_neighbours(path / "neighbours.csv.gz"), 50),
    )


@pytest.fixture(scope="session")
def loaded_env(
    test_env: dict[str, str], dataset: Dataset, cql_session: object, dynamodb_table: str
) -> dict[str, str]:
    """The dataset in the stack, loaded by `recs demo load` (schema, all four files)."""
    recs_cli(test_env, "demo", "load", "--data", str(dataset.path))
    return test_env


@pytest.fixture(scope="session")
def service(loaded_env: dict[str, str], data_root: Path) -> Iterator[ServiceProcess]:
    process = ServiceProcess(
        env={**loaded_env, "RECS_MODEL_REFRESH_S": "0.3", "RECS_LOG_LEVEL": "warning"},
        log=data_root / "service.log",
    )
    process.start()
    yield process
    process.stop()


@pytest.fixture
def http(service: ServiceProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=service.url, timeout=5) as client:
        yield client

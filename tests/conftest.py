"""Fixtures for the tests that use the real local stack (Cassandra, DynamoDB Local, catalog).

`make test` starts the stack once per run (`make stack-up`). A test that needs it fails,
never skips, when it is down. Each test session works in its own keyspace, DynamoDB table
and catalog instance, so tests never touch what `make dev` loaded.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from app.config import Settings
from app.domain import CatalogItem
from app.offline.demo import generate_demo
from app.offline.formats import read_catalog, read_interactions, read_neighbours
from app.offline.topk import top_k_neighbours
from app.publishing import versions
from app.schema import cql, dynamodb
from app.sources.scylla import connect
from scripts import stack
from tests.support import REPO, CatalogProcess

RUN_ID = uuid.uuid4().hex[:8]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Fault tests kill and freeze the shared servers: run them after everything else.
    items.sort(key=lambda item: item.get_closest_marker("fault") is not None)


@pytest.fixture(scope="session")
def stack_env() -> dict[str, str]:
    down = [s.server for s in stack.status() if s.pid is None or not s.ready]
    if down:
        pytest.fail(f"the local stack is not up ({', '.join(down)} down): run `make stack-up`")
    env: dict[str, str] = stack.client_env()
    return env


@pytest.fixture(scope="session")
def catalog_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CatalogProcess]:
    catalog = CatalogProcess(data=tmp_path_factory.mktemp("catalog") / "items.jsonl")
    catalog.start()
    yield catalog
    catalog.stop()


@pytest.fixture(scope="session")
def test_env(stack_env: dict[str, str], catalog_service: CatalogProcess) -> dict[str, str]:
    """RECS_* variables pointing at the stack, with this session's own keyspace and table."""
    return {
        **stack_env,
        "RECS_CATALOG_URL": catalog_service.url,
        "RECS_SCYLLA_KEYSPACE": f"recs_test_{RUN_ID}",
        "RECS_SCYLLA_REPLICATION": "SimpleStrategy:1",
        "RECS_DYNAMODB_TABLE": f"recs_test_{RUN_ID}",
        "RECS_BACKEND": "remote",
        "RECS_CURSOR_SECRET": "test-cursor-secret",
        # Cassandra 5, DynamoDB Local and the catalog service share a busy 2-core box with the
        # suite; their answers outlive the production timeouts (100, 100 and 80 ms) now and
        # then. The suite's services wait up to the request deadline instead, so a test fails
        # on behaviour, not on a stand-in's tail; the tests of timeouts and outages set their
        # own or freeze the servers outright.
        "RECS_SCYLLA_TIMEOUT_MS": "250",
        "RECS_DYNAMODB_TIMEOUT_MS": "250",
        "RECS_CATALOG_TIMEOUT_MS": "250",
    }


@pytest.fixture(scope="session")
def settings(test_env: dict[str, str]) -> Settings:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(name, test_env[name])
    return Settings.from_env(test_env)


@pytest.fixture(scope="session")
def cql_session(settings: Settings) -> Iterator[Any]:
    """A driver session with the session keyspace migrated; dropped at the end."""
    cluster, session = connect(settings.model_copy(update={"scylla_timeout_ms": 30_000}))
    cql.apply(session, keyspace=settings.scylla_keyspace, replication=settings.scylla_replication)
    yield session
    session.execute(f"DROP KEYSPACE IF EXISTS {settings.scylla_keyspace}", timeout=60)
    cluster.shutdown()


@contextmanager
def own_keyspace(cql_session: Any, settings: Settings, suffix: str) -> Iterator[str]:
    """A migrated keyspace of a test module's own, dropped after it: versions published,
    activated or deleted there never reach what the rest of the session serves from."""
    keyspace = f"{settings.scylla_keyspace}_{suffix}"
    cql.apply(cql_session, keyspace=keyspace, replication=settings.scylla_replication)
    try:
        yield keyspace
    finally:
        cql_session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=60)


def _active_versions(cql_session: Any, keyspace: str) -> dict[str, str | None]:
    return {
        model: versions.active_version(cql_session, keyspace, model)
        for model in ("neighbours", "popular")
    }


@dataclass(frozen=True)
class _Served:
    """What `loaded_env` activated in the session keyspace, and where to look it up again."""

    cql_session: Any
    keyspace: str
    versions: dict[str, str | None]


_served: list[_Served] = []


@pytest.fixture(scope="module", autouse=True)
def session_models_untouched(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fails the module that changed the session's active model versions: every later test
    would serve another model (this once broke the fault tests, far from its cause)."""
    yield
    for served in _served:
        assert _active_versions(served.cql_session, served.keyspace) == served.versions, (
            f"{request.node.name} changed the session's active model versions: "
            "publish into own_keyspace(...) instead"
        )


@pytest.fixture(scope="session")
def dynamodb_table(settings: Settings) -> Iterator[str]:
    client = boto3.client(
        "dynamodb",
        region_name=settings.dynamodb_region,
        endpoint_url=settings.dynamodb_endpoint_url,
    )
    dynamodb.ensure_table(client, settings.dynamodb_table)
    yield settings.dynamodb_table
    client.delete_table(TableName=settings.dynamodb_table)


@pytest.fixture(scope="session")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("data")


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
    keyspace = test_env["RECS_SCYLLA_KEYSPACE"]
    _served.append(_Served(cql_session, keyspace, _active_versions(cql_session, keyspace)))
    return test_env

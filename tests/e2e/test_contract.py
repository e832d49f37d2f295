"""A client generated from the service's own OpenAPI document, driven through every
endpoint and every kind of answer the service sends: successes, bad input, keys, unknown
paths, overload and a partial write. Whatever the service answers, the generated client
parses it into the model the document promised (no KeyError, no JSON error).

The client is generated at test time (`openapi-python-client`, a dev dependency) from the
live document, so the test follows the document as it is.
"""

from __future__ import annotations

import contextlib
import importlib
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from scripts import procs
from tests.conftest import Dataset
from tests.e2e.conftest import API_KEYS
from tests.support import ServiceProcess, wait_for

pytestmark = pytest.mark.e2e

PACKAGE = "recs_contract_client"


@pytest.fixture(scope="module")
def generated(service: ServiceProcess, tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    root = tmp_path_factory.mktemp("client")
    (root / "config.yaml").write_text(f"post_hooks: []\npackage_name_override: {PACKAGE}\n")
    done = subprocess.run(
        [sys.executable, "-m", "openapi_python_client", "generate",
         "--url", f"{service.url}/openapi.json", "--config", str(root / "config.yaml"),
         "--meta", "none", "--output-path", str(root / PACKAGE)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    sys.path.insert(0, str(root))
    try:
        return importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(root))


def api(package: ModuleType, module: str) -> Any:
    return importlib.import_module(f"{PACKAGE}.api.{module}")


def models(package: ModuleType) -> Any:
    return importlib.import_module(f"{PACKAGE}.models")


@contextlib.contextmanager
def client(package: ModuleType, url: str, key: str | None = None) -> Iterator[Any]:
    if key is None:
        made = package.Client(base_url=url, raise_on_unexpected_status=True)
    else:
        made = package.AuthenticatedClient(base_url=url, token=key, raise_on_unexpected_status=True)
    with made as opened:
        yield opened


def feed_module(package: ModuleType) -> Any:
    return api(package, "recommendations.recommendations_v1_users_user_id_recommendations_get")


def test_reads_and_operations_parse_into_their_models(
    generated: ModuleType, service: ServiceProcess, dataset: Dataset
) -> None:
    with client(generated, service.url) as anonymous:
        check_reads(generated, anonymous, dataset)


def check_reads(generated: ModuleType, anonymous: Any, dataset: Dataset) -> None:
    m = models(generated)
    user = next(u for u, h in sorted(dataset.histories.items()) if len(h) >= 10)
    feed = feed_module(generated)
    page = feed.sync(user, client=anonymous, limit=5)
    assert isinstance(page, m.RecommendationPage) and len(page.items) == 5
    assert page.model_version.startswith("neighbours=")
    second = feed.sync(user, client=anonymous, limit=5, cursor=page.next_cursor)
    assert isinstance(second, m.RecommendationPage)
    assert not {i.item_id for i in page.items} & {i.item_id for i in second.items}
    item = next(iter(dataset.neighbours))
    similar = api(generated, "recommendations.similar_v1_items_item_id_similar_get")
    assert isinstance(similar.sync(item, client=anonymous, limit=3), m.RecommendationPage)
    popular = api(generated, "recommendations.popular_v1_popular_get")
    assert isinstance(popular.sync(client=anonymous, limit=3), m.RecommendationPage)
    health = api(generated, "operations.healthz_healthz_get").sync(client=anonymous)
    assert isinstance(health, m.Health) and health.status == "ok"
    ready = api(generated, "operations.readyz_readyz_get").sync(client=anonymous)
    assert isinstance(ready, m.Readiness) and ready.status == "ready"
    metrics = api(generated, "operations.metrics_metrics_get").sync_detailed(client=anonymous)
    assert metrics.status_code == 200 and b"recs_model_version_info" in metrics.content


@pytest.mark.parametrize(
    ("call", "status", "code"),
    [
        (lambda feed, c: feed.sync_detailed("u", client=c, limit=0), 400, "invalid_parameter"),
        (lambda feed, c: feed.sync_detailed("u", client=c, cursor="A" * 28), 400, "invalid_cursor"),
        (lambda feed, c: feed.sync_detailed("a/b", client=c), 404, "not_found"),
        (lambda feed, c: feed.sync_detailed(".", client=c), 404, "not_found"),
        (
            lambda feed, c: feed.sync_detailed("u", client=c, category="a\tb"),
            400,
            "invalid_parameter",
        ),
    ],
    ids=["limit", "cursor", "encoded-slash", "dot", "label"],
)  # fmt: skip
def test_errors_parse_into_the_error_model(
    generated: ModuleType, service: ServiceProcess, call: Any, status: int, code: str
) -> None:
    with client(generated, service.url) as anonymous:
        answer = call(feed_module(generated), anonymous)
    assert answer.status_code == status
    assert isinstance(answer.parsed, models(generated).ErrorBody), answer.content
    assert answer.parsed.error.code == code


def events(package: ModuleType, *batch: dict[str, object]) -> Any:
    return models(package).EventBatch(events=list(batch))


def event(n: int, **fields: object) -> dict[str, object]:
    now = time.time_ns() // 1_000_000
    return {"event_id": f"c-{now}-{n}", "user_id": "contract-user", "item_id": "item-1",
            "event_type": "view", "ts_ms": now, **fields}  # fmt: skip


def post_events(package: ModuleType) -> Any:
    return api(package, "events.post_events_v1_events_post")


def test_writes_keys_and_per_event_rejections(
    generated: ModuleType, service: ServiceProcess
) -> None:
    m = models(generated)
    post = post_events(generated)
    body = events(generated, event(1), event(2, ts_ms="yesterday"), {"user_id": "no-id"})
    with client(generated, service.url, API_KEYS[0]) as keyed:
        answer = post.sync(client=keyed, body=body)
    assert isinstance(answer, m.EventsResult)
    assert len(answer.accepted) == 1 and [r.index for r in answer.rejected] == [1, 2]
    for key, status in ((None, 401), ("not-a-key", 403)):
        with client(generated, service.url, key) as c:
            refused = post.sync_detailed(client=c, body=body)
        assert refused.status_code == status
        assert isinstance(refused.parsed, m.ErrorBody)


@pytest.fixture(scope="module")
def starved(loaded_env: dict[str, str], data_root: Path) -> Iterator[ServiceProcess]:
    """The service with DynamoDB unreachable, and room for one write at a time."""
    process = ServiceProcess(
        env={
            **loaded_env,
            "RECS_DYNAMODB_ENDPOINT_URL": f"http://127.0.0.1:{procs.free_port()}",
            "RECS_API_KEYS": API_KEYS[0],
            "RECS_MAX_IN_FLIGHT_WRITES": "1",
            # The held write below keeps its slot for longer than the test waits for a 503.
            "RECS_BODY_TIMEOUT_S": "120",
            "RECS_LOG_LEVEL": "error",
        },
        log=data_root / "starved.log",
    )
    process.start()
    yield process
    process.stop()


def test_a_partial_write_and_an_overload_parse_into_their_503_models(
    generated: ModuleType, starved: ServiceProcess
) -> None:
    with client(generated, starved.url, API_KEYS[0]) as keyed:
        check_starved(generated, starved, keyed)
    with client(generated, starved.url) as anonymous:
        feed = feed_module(generated).sync("u", client=anonymous, limit=3)
    assert isinstance(feed, models(generated).RecommendationPage)
    # What is being checked is that a degraded answer parses; on a busy machine the catalog
    # may also miss what remains of the deadline after DynamoDB's failure.
    assert "dynamodb" in feed.degraded


def check_starved(generated: ModuleType, starved: ServiceProcess, keyed: Any) -> None:
    m = models(generated)
    post = post_events(generated)
    partial = post.sync_detailed(client=keyed, body=events(generated, event(3), {"x": 1}))
    assert partial.status_code == 503 and partial.headers["retry-after"]
    assert isinstance(partial.parsed, m.PartialWriteBody), partial.content
    assert partial.parsed.failed and partial.parsed.error.code == "storage_unavailable"
    # One write in flight (a body that never finishes) fills the writes' one slot.
    with socket.create_connection(("127.0.0.1", starved.port)) as held:
        held.sendall(
            b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n"
            b"Authorization: Bearer " + API_KEYS[0].encode() + b"\r\n\r\n{"
        )

        seen: list[tuple[int, str]] = []

        def overloaded() -> bool:
            answer = post.sync_detailed(client=keyed, body=events(generated, event(4)))
            seen.append((answer.status_code, type(answer.parsed).__name__))
            return answer.status_code == 503 and isinstance(answer.parsed, m.ErrorBody)

        try:
            wait_for(overloaded, timeout_s=30)
        except AssertionError:
            raise AssertionError(f"no overload 503; answers seen: {Counter(seen)}") from None

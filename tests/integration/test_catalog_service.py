"""The reference catalog service (scripts/catalog_service.py), run as a real uvicorn process."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from tests.support import CatalogProcess

pytestmark = pytest.mark.integration


@pytest.fixture
def catalog(tmp_path: Path) -> Iterator[CatalogProcess]:
    service = CatalogProcess(data=tmp_path / "items.jsonl")
    service.start()
    yield service
    service.stop()


@pytest.fixture
def client(catalog: CatalogProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=catalog.url, timeout=10) as http:
        yield http


def _jsonl(*items: dict[str, object]) -> bytes:
    return b"".join(orjson.dumps(item) + b"\n" for item in items)


ITEMS: tuple[dict[str, object], ...] = (
    {"item_id": "a", "title": "Lamp", "category": "home", "price": 19.5, "region": "eu"},
    {"item_id": "b", "title": "Bike", "price": 250, "seller_id": "s1", "active": False},
    {"item_id": "c"},
)


def _full(item_id: str, **fields: object) -> dict[str, object]:
    empty = dict.fromkeys(("title", "category", "price", "region", "seller_id"))
    return {"item_id": item_id, **empty, "active": True, **fields}


def test_put_then_get_in_request_order_without_unknown_ids(client: httpx.Client) -> None:
    response = client.put("/items", content=_jsonl(*ITEMS))
    assert response.status_code == 200
    assert response.json() == {"upserted": 3, "total": 3}

    response = client.get("/items", params={"ids": "c,zz,a,b"})

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "items": [
            _full("c"),
            _full("a", title="Lamp", category="home", price=19.5, region="eu"),
            _full("b", title="Bike", price=250, seller_id="s1", active=False),
        ]
    }


def test_put_replaces_whole_items(client: httpx.Client) -> None:
    client.put("/items", content=_jsonl(*ITEMS))

    response = client.put("/items", content=_jsonl({"item_id": "a", "price": 1}, {"item_id": "d"}))

    assert response.json() == {"upserted": 2, "total": 4}
    got = client.get("/items", params={"ids": "a,d"}).json()["items"]
    assert got == [_full("a", price=1), _full("d")]


def test_healthz_counts_items(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "items": 0}
    client.put("/items", content=_jsonl(*ITEMS))
    assert client.get("/healthz").json() == {"status": "ok", "items": 3}


def test_more_than_500_ids_is_a_400(client: httpx.Client) -> None:
    client.put("/items", content=_jsonl(*ITEMS))
    ids = ["a", *(f"x{n}" for n in range(499))]
    assert client.get("/items", params={"ids": ",".join(ids)}).status_code == 200

    response = client.get("/items", params={"ids": ",".join([*ids, "b"])})

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "too_many_ids"
    assert "500" in response.json()["error"]["message"]


@pytest.mark.parametrize("query", ["", "?ids=", "?ids=,,"])
def test_missing_or_empty_ids_is_a_400(client: httpx.Client, query: str) -> None:
    response = client.get(f"/items{query}")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "missing_ids"


def test_lookup_answers_as_get_does(client: httpx.Client) -> None:
    client.put("/items", content=_jsonl(*ITEMS))

    response = client.post("/items/lookup", json={"ids": ["c", "zz", "a", "b", "a"]})

    assert response.status_code == 200
    assert response.json() == client.get("/items", params={"ids": "c,zz,a,b"}).json()
    assert [item["item_id"] for item in response.json()["items"]] == ["c", "a", "b"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{not json", "invalid_json"),
        (b'["a"]', "invalid_ids"),
        (b'{"ids": "a,b"}', "invalid_ids"),
        (b'{"ids": ["a", 7]}', "invalid_ids"),
        (b'{"ids": [""]}', "invalid_ids"),
        (b'{"ids": []}', "missing_ids"),
        (orjson.dumps({"ids": [f"x{n}" for n in range(501)]}), "too_many_ids"),
    ],
)
def test_a_bad_lookup_is_a_400(client: httpx.Client, body: bytes, code: str) -> None:
    response = client.post("/items/lookup", content=body)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == code


@pytest.mark.parametrize(
    ("bad_line", "reason"),
    [
        (b"{not json", "JSON"),
        (b'{"title": "no id"}', "item_id"),
        (b'{"item_id": "e", "price": "12"}', "price"),
        (b'{"item_id": "e", "active": "yes"}', "active"),
        (b'["item_id", "e"]', "object"),
    ],
)
def test_malformed_jsonl_is_a_400_that_changes_nothing(
    client: httpx.Client, catalog: CatalogProcess, bad_line: bytes, reason: str
) -> None:
    client.put("/items", content=_jsonl(*ITEMS))
    on_disk = catalog.data.read_bytes()
    body = _jsonl({"item_id": "a", "title": "changed"}, {"item_id": "new"}) + b"\n" + bad_line

    response = client.put("/items", content=body)

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_jsonl"
    assert error["line"] == 4  # the blank third line counts
    assert "line 4" in error["message"]
    assert reason.lower() in error["message"].lower()
    assert client.get("/healthz").json()["items"] == 3
    assert client.get("/items", params={"ids": "a"}).json()["items"][0]["title"] == "Lamp"
    assert catalog.data.read_bytes() == on_disk


def test_items_persist_across_restart(client: httpx.Client, catalog: CatalogProcess) -> None:
    client.put("/items", content=_jsonl(*ITEMS))
    catalog.restart()

    got = httpx.get(f"{catalog.url}/items", params={"ids": "a,b,c"}).json()["items"]

    assert [item["item_id"] for item in got] == ["a", "b", "c"]
    assert got[1]["active"] is False
    assert not list(catalog.data.parent.glob(".*.tmp")), "temporary file left behind"


def test_delete_clears_and_persists(client: httpx.Client, catalog: CatalogProcess) -> None:
    client.put("/items", content=_jsonl(*ITEMS))

    response = client.delete("/items")

    assert response.json() == {"deleted": 3, "total": 0}
    assert catalog.data.read_bytes() == b""
    catalog.restart()
    assert httpx.get(f"{catalog.url}/healthz").json() == {"status": "ok", "items": 0}


def test_delay_ms_delays_item_reads_only(tmp_path: Path) -> None:
    slow = CatalogProcess(data=tmp_path / "items.jsonl", delay_ms=3000)
    slow.start()
    try:
        with httpx.Client(base_url=slow.url, timeout=30) as http:
            http.put("/items", content=_jsonl(*ITEMS))

            started = time.monotonic()
            response = http.get("/items", params={"ids": "a"})
            items_s = time.monotonic() - started

            started = time.monotonic()
            http.get("/healthz")
            health_s = time.monotonic() - started

            with pytest.raises(httpx.ReadTimeout):
                http.get("/items", params={"ids": "a"}, timeout=0.5)
            with pytest.raises(httpx.ReadTimeout):
                http.post("/items/lookup", json={"ids": ["a"]}, timeout=0.5)
    finally:
        slow.stop()

    assert response.json()["items"][0]["item_id"] == "a"
    assert items_s >= 3.0
    assert health_s < 1.5  # well under the delay: health is not delayed

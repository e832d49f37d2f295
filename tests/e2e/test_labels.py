"""Categories and regions as free text: filters and segments work with the labels real
catalogs write, URL-encoded, and a control character or an oversized label is a 400 that
names the parameter."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.domain import CatalogItem
from app.offline.formats import write_catalog, write_neighbours, write_popular
from app.offline.popular import popular_lists
from tests.support import ServiceProcess

pytestmark = pytest.mark.e2e

ITEMS = [
    CatalogItem("m1", "Toy Story", "Children's", 5.0, "São Paulo", "s1"),
    CatalogItem("m2", "Babe", "Children's", 5.0, "Zürich, Altstadt", "s2"),
    CatalogItem("g1", "Rake", "Home & Garden", 9.0, "São Paulo", "s3"),
]


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    data: Path = tmp_path_factory.mktemp("labels")
    write_catalog(data / "catalog.jsonl", ITEMS)
    write_neighbours(data / "neighbours.csv", [("m1", "m2", 1.0), ("m2", "m1", 1.0)])
    popularity = {"m1": 3.0, "m2": 2.0, "g1": 1.0}
    lists = popular_lists(popularity, {item.item_id: item for item in ITEMS})
    write_popular(
        data / "popular.csv", [(s, i, v) for s, ranked in lists.items() for i, v in ranked]
    )
    service = ServiceProcess(
        env={"RECS_BACKEND": "embedded", "RECS_EMBEDDED_DATA_DIR": str(data)},
        log=data / "service.log",
    )
    service.start()
    try:
        with httpx.Client(base_url=service.url, timeout=10) as http:
            yield http
    finally:
        service.stop()


def ids(response: object) -> list[str]:
    return [item["item_id"] for item in response.json()["items"]]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("category=Children%27s", ["m1", "m2"]),
        ("category=Home%20%26%20Garden", ["g1"]),
        ("region=S%C3%A3o%20Paulo", ["m1", "g1"]),
        ("region=Z%C3%BCrich%2C%20Altstadt", ["m2"]),
        ("category=Children%27s&region=S%C3%A3o%20Paulo", ["m1"]),
    ],
)
def test_popular_filters_by_free_text_labels(
    client: httpx.Client, query: str, expected: list[str]
) -> None:
    response = client.get(f"/v1/popular?{query}")
    assert response.status_code == 200, response.text
    assert ids(response) == expected


def test_the_feed_filters_by_a_label_too(client: httpx.Client) -> None:
    response = client.get("/v1/users/new-user/recommendations?category=Home%20%26%20Garden")
    assert response.status_code == 200, response.text
    assert ids(response) == ["g1"]


@pytest.mark.parametrize(
    "value", ["", "%20%20", "a%00b", "tab%09in", "x" * 129, "line%0Abreak"], ids=repr
)
def test_control_characters_blank_or_oversized_labels_are_a_400(
    client: httpx.Client, value: str
) -> None:
    response = client.get(f"/v1/popular?category={value}")
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_parameter"
    assert "category" in response.json()["error"]["message"]


def test_the_documented_label_pattern_agrees_with_the_server(client: httpx.Client) -> None:
    parameters = client.get("/openapi.json").json()["paths"]["/v1/popular"]["get"]["parameters"]
    schema = next(p for p in parameters if p["name"] == "category")["schema"]
    pattern = re.compile(next(s for s in schema["anyOf"] if s.get("type") == "string")["pattern"])
    for value in ["bikes", "Children's", "Home & Garden", "São Paulo", " x ", "", "  ", "a\tb"]:
        accepted = client.get("/v1/popular", params={"category": value}).status_code == 200
        assert accepted == bool(pattern.search(value)), repr(value)

import pytest
from fastapi.exceptions import RequestValidationError
from pydantic import Field
from starlette.requests import Request

from app.api.params import RouteParams, openapi_parameters, parse_params
from app.config import Settings
from app.main import create_app


class ItemParams(RouteParams):
    item_id: str = Field(..., pattern=r"^[a-z0-9-]+$", description="The item.")
    limit: int = Field(20, ge=1, le=100, description="Items per page.")
    region: str | None = Field(None, max_length=8)


def request(path_params: dict[str, str], query: bytes) -> Request:
    return Request(
        {"type": "http", "method": "GET", "query_string": query, "path_params": path_params}
    )


def test_path_and_query_values_become_one_validated_model() -> None:
    params = parse_params(ItemParams, request({"item_id": "item-1"}, b"limit=7&region=berlin"))
    assert params == ItemParams(item_id="item-1", limit=7, region="berlin")


def test_defaults_repeats_and_unknown_names_as_fastapi_treats_them() -> None:
    params = parse_params(ItemParams, request({"item_id": "a"}, b"limit=3&limit=5&other=x"))
    assert (params.limit, params.region) == (5, None)  # the last value wins; unknown ignored
    assert parse_params(ItemParams, request({"item_id": "a"}, b"")).limit == 20


def test_a_query_value_never_overrides_the_path() -> None:
    params = parse_params(ItemParams, request({"item_id": "from-path"}, b"item_id=from-query"))
    assert params.item_id == "from-path"


def test_refusals_name_where_each_bad_value_came_from() -> None:
    with pytest.raises(RequestValidationError) as caught:
        parse_params(ItemParams, request({"item_id": "Bad!"}, b"limit=0&region=far-too-long"))
    assert sorted(tuple(e["loc"]) for e in caught.value.errors()) == [
        ("path", "item_id"),
        ("query", "limit"),
        ("query", "region"),
    ]


def test_documented_parameters_come_from_the_model() -> None:
    parameters = {p["name"]: p for p in openapi_parameters(ItemParams, "/items/{item_id}")}
    assert parameters["item_id"]["in"] == "path"
    assert parameters["item_id"]["required"] is True
    assert parameters["item_id"]["schema"]["pattern"] == r"^[a-z0-9-]+$"
    assert parameters["limit"] == {
        "name": "limit",
        "in": "query",
        "required": False,
        "description": "Items per page.",
        "schema": {
            "type": "integer",
            "minimum": 1,
            "maximum": 100,
            "default": 20,
            "title": "Limit",
            "description": "Items per page.",
        },
    }


def test_read_routes_document_their_bounds_from_the_settings_and_no_422() -> None:
    document = create_app(
        Settings.from_env({"RECS_MAX_LIMIT": "50", "RECS_CURSOR_SECRET": "s"})
    ).openapi()
    for path in ("/v1/users/{user_id}/recommendations", "/v1/items/{item_id}/similar"):
        operation = document["paths"][path]["get"]
        limit = next(p for p in operation["parameters"] if p["name"] == "limit")
        assert limit["schema"]["maximum"] == 50
        # Bad input is a 400 with the service's error body, never FastAPI's 422.
        assert "422" not in operation["responses"]
        assert "400" in operation["responses"]

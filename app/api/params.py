"""A read route's parameters as one Pydantic model, validated in one call per request.

FastAPI handles each declared parameter on its own and re-inspects its annotation on every
request (fastapi/fastapi#13824); one model per route validates them all in one call, for
less CPU (docs/performance.md). The hot read routes therefore declare only the request;
their path and query parameters are the fields of one model, validated here, and documented
from the same model, so the OpenAPI document and the validation cannot drift apart. A
refusal is the `RequestValidationError` FastAPI would raise, with the same locations
(`path`, `query`), so the error handler answers it with the same 400.
"""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.requests import Request

P = TypeVar("P", bound="RouteParams")


class RouteParams(BaseModel):
    """Base of a route's parameters. Fields named like the route's path parameters are read
    from the path, the others from the query string; unknown query parameters are ignored,
    as FastAPI ignores them."""

    model_config = ConfigDict(extra="ignore", frozen=True)


def parse_params(model: type[P], request: Request) -> P:
    path_params: dict[str, str] = request.path_params
    # The query's last value of a repeated name wins, as with FastAPI's scalar parameters.
    values: dict[str, Any] = dict(request.query_params)
    values.update(path_params)
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        errors = []
        for error in exc.errors(include_url=False):
            field = error["loc"][0] if error["loc"] else ""
            where = "path" if field in path_params else "query"
            errors.append({**error, "loc": (where, *error["loc"])})
        raise RequestValidationError(errors) from None


def openapi_parameters(model: type[RouteParams], path: str) -> list[dict[str, Any]]:
    """The model's fields as OpenAPI parameters of the route `path` (for `openapi_extra`)."""
    schema = model.model_json_schema()
    required = set(schema.get("required", ()))
    parameters = []
    for name, field_schema in schema["properties"].items():
        description = field_schema.get("description")
        in_path = "{" + name + "}" in path
        parameter: dict[str, Any] = {
            "name": name,
            "in": "path" if in_path else "query",
            "required": in_path or name in required,
            "schema": field_schema,
        }
        if description:
            parameter["description"] = description
        parameters.append(parameter)
    return parameters

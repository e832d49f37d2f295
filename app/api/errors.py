"""Errors as JSON: `{"error": {"code": "...", "message": "..."}}`, never a bare 500.

Bad input is a 4xx that changes nothing; a service that cannot answer at all is a 503.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from app.api.events import Rejection
from app.api.serialization import json_response
from app.ranking.cursor import CursorError
from app.recommender import ModelsNotLoaded


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    return json_response({"error": {"code": code, "message": message}}, status, headers)


class ErrorDetail(BaseModel):
    code: str = Field(description="Machine-readable: `invalid_parameter`, `overloaded`, ...")
    message: str = Field(description="For people: what was wrong.")


class ErrorBody(BaseModel):
    """Every error the service sends, from the HTTP server's own to the routes'."""

    error: ErrorDetail


class PartialWriteBody(BaseModel):
    """A batch of which some valid events could not be stored: send `failed` again."""

    error: ErrorDetail
    accepted: list[str]
    rejected: list[Rejection]
    failed: list[str]


# The statuses every operation may get, whatever its route: from the HTTP server (400 not
# HTTP, 431 headers too large), the router (404 no such path, e.g. an id with an encoded /)
# and the request middleware (413 a declared body too large).
_DESCRIPTIONS = {
    400: "Invalid parameter, id, exclude list, cursor or body, or a request that is not HTTP",
    401: "API key required",
    403: "API key not accepted",
    404: "No such path (an id holding an encoded `/`, for one)",
    408: "The body did not arrive within RECS_BODY_TIMEOUT_S",
    413: "Body larger than RECS_MAX_BODY_BYTES",
    431: "Request line and headers larger than RECS_MAX_HEADER_BYTES, or too many headers",
    503: "No model loaded yet, or overloaded (Retry-After)",
}
EVERY_OPERATION = (400, 404, 413, 431)


def documented_errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI responses for these statuses (and EVERY_OPERATION's), all with ErrorBody."""
    return {
        status: {"model": ErrorBody, "description": _DESCRIPTIONS[status]}
        for status in sorted({*EVERY_OPERATION, *statuses})
    }


def install_error_handlers(app: FastAPI) -> None:
    async def api_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return error_response(exc.status, exc.code, exc.message, exc.headers)

    async def validation_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        # A cursor of the wrong shape is as much a bad cursor as one with a wrong signature.
        locations = {tuple(error.get("loc", ())) for error in exc.errors()}
        code = "invalid_cursor" if locations == {("query", "cursor")} else "invalid_parameter"
        return error_response(400, code, _describe(exc))

    async def http_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        # A 400 here is FastAPI's own "error parsing the body" (JSON nested too deep,
        # invalid UTF-8): as invalid a parameter as any other.
        code = {
            400: "invalid_parameter",
            404: "not_found",
            405: "method_not_allowed",
            413: "body_too_large",
        }.get(exc.status_code, "http_error")
        headers = dict(exc.headers) if exc.headers else None
        return error_response(exc.status_code, code, str(exc.detail), headers)

    async def cursor_error(_: Request, exc: Exception) -> Response:
        return error_response(400, "invalid_cursor", str(exc))

    async def not_loaded(_: Request, exc: Exception) -> Response:
        return error_response(503, "models_not_loaded", str(exc), {"Retry-After": "5"})

    async def unexpected(_: Request, exc: Exception) -> Response:
        # Starlette re-raises after this response, and the server logs the traceback.
        return error_response(500, "internal_error", "internal error")

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(CursorError, cursor_error)
    app.add_exception_handler(ModelsNotLoaded, not_loaded)
    app.add_exception_handler(Exception, unexpected)


def _describe(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors():
        location = ".".join(str(part) for part in error.get("loc", ()) if part != "query")
        parts.append(f"{location}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"

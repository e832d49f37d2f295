"""Errors as JSON: `{"error": {"code": "...", "message": "..."}}`, never a bare 500.

Bad input is a 4xx that changes nothing; a service that cannot answer at all is a 503.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

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


# The schema every error body follows, for the OpenAPI document.
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
        }
    },
}


def install_error_handlers(app: FastAPI) -> None:
    async def api_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return error_response(exc.status, exc.code, exc.message, exc.headers)

    async def validation_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return error_response(400, "invalid_parameter", _describe(exc))

    async def http_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        code = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}.get(
            exc.status_code, "http_error"
        )
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

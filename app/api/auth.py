"""API keys: `Authorization: Bearer <key>`, compared in constant time.

401 without a key (or with another scheme), 403 with a key that is not accepted. Keys come
from `RECS_API_KEYS` (a Kubernetes Secret in production). Write endpoints always require a
key; read endpoints only when `RECS_REQUIRE_KEY_FOR_READS` is on.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.api.errors import ApiError

_bearer = HTTPBearer(auto_error=False, description="An API key from RECS_API_KEYS.")


def key_checker(accepted: list[str]) -> Callable[[HTTPAuthorizationCredentials | None], None]:
    keys = [key.encode() for key in accepted]

    def require_key(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> None:
        if credentials is None or not credentials.credentials:
            raise ApiError(
                401,
                "unauthorized",
                "an API key is required: Authorization: Bearer <key>",
                headers={"WWW-Authenticate": "Bearer"},
            )
        offered = credentials.credentials.encode()
        matched = False
        for key in keys:  # every key compared, so timing tells nothing about which matched
            matched |= hmac.compare_digest(offered, key)
        if not matched:
            raise ApiError(403, "forbidden", "the API key is not accepted")

    return require_key

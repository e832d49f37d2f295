"""API keys: `Authorization: Bearer <key>`, compared in constant time.

401 without a key (or with another scheme), 403 with a key that is not accepted. Keys come
from `RECS_API_KEYS` (a Kubernetes Secret in production). Write endpoints always require a
key; read endpoints only when `RECS_REQUIRE_KEY_FOR_READS` is on.

The check runs in the request middleware, on the headers alone, before the request takes a
slot or its body is read: a caller without a key costs a header scan, nothing more. The
routes also declare it (`key_checker`), which documents the scheme in the OpenAPI document.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Sequence
from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.api.errors import ApiError

_bearer = HTTPBearer(auto_error=False, description="An API key from RECS_API_KEYS.")

MISSING = (401, "unauthorized", "an API key is required: Authorization: Bearer <key>")
REFUSED = (403, "forbidden", "the API key is not accepted")


class Keys:
    """The accepted keys; `verdict` judges an Authorization header value."""

    def __init__(self, accepted: Sequence[str]) -> None:
        self._keys = [key.encode() for key in accepted]

    def verdict(self, authorization: bytes | None) -> tuple[int, str, str] | None:
        """None when the header carries an accepted key, else (status, code, message)."""
        scheme, _, offered = (authorization or b"").strip().partition(b" ")
        offered = offered.strip()
        if scheme.lower() != b"bearer" or not offered:
            return MISSING
        matched = False
        for key in self._keys:  # every key compared, so timing tells nothing about which matched
            matched |= hmac.compare_digest(offered, key)
        return None if matched else REFUSED


def key_checker(accepted: list[str]) -> Callable[[HTTPAuthorizationCredentials | None], None]:
    keys = Keys(accepted)

    def require_key(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> None:
        header = (
            None
            if credentials is None
            else f"{credentials.scheme} {credentials.credentials}".encode()
        )
        verdict = keys.verdict(header)
        if verdict is not None:
            status, code, message = verdict
            headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
            raise ApiError(status, code, message, headers=headers)

    return require_key

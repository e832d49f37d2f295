"""Responses: slotted dataclasses to JSON bytes with orjson, without Pydantic.

orjson serializes slotted dataclasses field by field through getattr; building the dicts by
hand first is cheaper (docs/performance.md). tests/unit/api/test_serialization.py keeps
these functions equal to orjson's own dataclass output, so a new field cannot be forgotten
here.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from app.results import RecommendationPage, RecommendedItem


def item_dict(item: RecommendedItem) -> dict[str, Any]:
    return {
        "item_id": item.item_id,
        "score": item.score,
        "source": item.source,
        "title": item.title,
        "category": item.category,
        "price": item.price,
        "region": item.region,
        "seller_id": item.seller_id,
    }


def page_bytes(page: RecommendationPage) -> bytes:
    return orjson.dumps(
        {
            "items": [item_dict(item) for item in page.items],
            "model_version": page.model_version,
            "degraded": page.degraded,
            "next_cursor": page.next_cursor,
        }
    )


class JSONBytesResponse(Response):
    media_type = "application/json"


def json_response(
    payload: Any, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """Any JSON-able payload (dicts, lists, dataclasses) serialized by orjson."""
    return JSONBytesResponse(orjson.dumps(payload), status_code=status_code, headers=headers)


def page_response(page: RecommendationPage) -> Response:
    return JSONBytesResponse(page_bytes(page))

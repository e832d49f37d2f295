"""What the recommender returns: slotted dataclasses, serialized by the API with orjson.

These are also the response schemas in the OpenAPI document (FastAPI derives the schema
from the dataclasses; responses bypass Pydantic at run time).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class RecommendedItem:
    item_id: str
    score: float
    # The path that produced the item: personalized, similar or popular.
    source: str
    # Catalog fields; null when the catalog could not be reached (see `degraded`).
    title: str | None = None
    category: str | None = None
    price: float | None = None
    region: str | None = None
    seller_id: str | None = None


@dataclass(slots=True)
class RecommendationPage:
    items: list[RecommendedItem]
    # The pinned model versions that produced this page, e.g. "neighbours=nb-..,popular=pop-..".
    model_version: str
    # Dependencies that failed or timed out for this request: scylla, dynamodb, catalog.
    degraded: list[str] = field(default_factory=list)
    # Opaque token for the next page (personalized feed only); null when there is none.
    next_cursor: str | None = None

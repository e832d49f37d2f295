"""The HTTP surface. Each route parses its input, calls the recommender once, serializes.

Input validation is Pydantic's: the read routes' parameters are one model per route
(app.api.params: cheaper than FastAPI's handling of each parameter on its own),
the events body a FastAPI body model; the OpenAPI document states every constraint from the
same models. Responses are dataclasses serialized by orjson.
"""

# No `from __future__ import annotations` here: FastAPI and Pydantic read these annotations at
# run time, and the parameter models are built inside build_router from the settings.
import dataclasses
import math
import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import AfterValidator, BaseModel, Field, WithJsonSchema
from starlette.responses import PlainTextResponse, Response

from app.api.auth import key_checker
from app.api.errors import ApiError, documented_errors
from app.api.events import EventBatch, EventsResult, validate
from app.api.params import RouteParams, openapi_parameters, parse_params
from app.api.serialization import json_response, page_response
from app.config import Settings
from app.domain import (
    ID_CHARSET_DESCRIPTION,
    ID_PATTERN,
    ID_REGEX,
    LABEL_DESCRIPTION,
    LABEL_PATTERN,
    MAX_ID_LENGTH,
    MAX_LABEL_LENGTH,
    Event,
    WriteOutcome,
    is_valid_id,
    is_valid_label,
)
from app.ranking import cursor
from app.recommender import FeedQuery, PopularQuery, Recommender, SimilarQuery
from app.results import RecommendationPage
from app.sources.base import InteractionStore


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ready", "not_ready"]
    model_version: str | None = Field(
        None, description="The model versions a request would pin (ready only)."
    )
    reason: str | None = Field(
        None,
        description="Why not ready (not_ready only): `draining`, `saturated`, `shedding` or "
        "`model versions not loaded`.",
    )
    refused: dict[str, str] | None = Field(
        None, description="Embeddings versions not served, with the reason (ready only)."
    )


def _id_field(
    kind: str, description: str | None = None, *, example: str = "", required: bool = False
) -> Any:
    return Field(
        ... if required else None,
        pattern=ID_PATTERN,
        max_length=MAX_ID_LENGTH,
        description=description or f"{kind.capitalize()} id: {ID_CHARSET_DESCRIPTION}.",
        examples=[example or f"{kind}-1"],
    )


def _label(value: str) -> str:
    if not is_valid_label(value):
        raise ValueError(f"must be {LABEL_DESCRIPTION}")
    return value


# The document states the exact rule (LABEL_PATTERN) on the string itself, where generated
# clients and fuzzers look for it; the validator says what is wrong in words.
Label = Annotated[
    str,
    AfterValidator(_label),
    WithJsonSchema(
        {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_LABEL_LENGTH,
            "pattern": LABEL_PATTERN,
        }
    ),
]


def _label_field(description: str, example: str) -> Any:
    return Field(
        None,
        description=f"{description} Free text ({LABEL_DESCRIPTION}), URL-encoded.",
        examples=[example],
    )


def _category_field() -> Any:
    return _label_field("Only items of this category.", "Home & Garden")


def _region_field(description: str = "Only items of this region.") -> Any:
    return _label_field(description, "São Paulo")


def _limit_field(settings: Settings) -> Any:
    return Field(
        settings.default_limit,
        ge=1,
        le=settings.max_limit,
        description=f"Items per page, 1 to {settings.max_limit}.",
    )


def _exclude_field(settings: Settings) -> Any:
    id_re = f"(?:{ID_REGEX})"
    return Field(
        None,
        max_length=settings.max_exclude * (MAX_ID_LENGTH + 1),
        # The exact rule, stated in the document; parse_exclude enforces it with its own
        # error codes (invalid_exclude, too_many_excludes).
        json_schema_extra={
            "pattern": f"^,*(?:{id_re}(?:,+{id_re}){{0,{settings.max_exclude - 1}}})?,*$"
        },
        description=f"Comma-separated item ids never to show; at most {settings.max_exclude} "
        "(empty parts are ignored).",
        examples=["item-1,item-2"],
    )


def _cursor_field(settings: Settings) -> Any:
    # 4 bytes per served item, a 5-byte header and a 16-byte signature, in base64url. Only the
    # service can tell a cursor it signed: a string of this shape may still be refused.
    return Field(
        None,
        min_length=cursor.MIN_LENGTH,
        max_length=math.ceil((settings.cursor_max_items * 4 + 5 + cursor.MAC_BYTES) * 4 / 3),
        pattern=r"^[A-Za-z0-9_\-]+$",
        description="`next_cursor` of the previous page: the next page, never "
        "repeating an item served earlier in the chain.",
    )


def parse_exclude(raw: str | None, max_items: int) -> frozenset[str]:
    """`exclude=a,b,c`: up to `max_items` valid ids, comma-separated; empty parts ignored."""
    if not raw:
        return frozenset()
    ids = [part for part in raw.split(",") if part]
    if len(ids) > max_items:
        raise ApiError(
            400, "too_many_excludes", f"exclude lists {len(ids)} ids; at most {max_items}"
        )
    for item_id in ids:
        if not is_valid_id(item_id):
            raise ApiError(
                400,
                "invalid_exclude",
                f"exclude has an invalid id {item_id[:80]!r}: {ID_CHARSET_DESCRIPTION}",
            )
    return frozenset(ids)


async def _store(store: InteractionStore, events: list[Event], deadline_s: float) -> WriteOutcome:
    if not events:
        return WriteOutcome()
    try:
        return await store.write(events, deadline_s=deadline_s)
    except Exception:  # breaker open, store unreachable: nothing was confirmed stored
        return WriteOutcome(failed=list(events))


def _recommender(request: Request) -> Recommender:
    recommender: Recommender = request.state.recommender
    return recommender


def build_router(settings: Settings) -> APIRouter:
    require_key = key_checker(settings.api_keys)
    read_guard = [Depends(require_key)] if settings.require_key_for_reads else []
    key_errors = (401, 403) if settings.require_key_for_reads else ()
    read_errors = documented_errors(*key_errors, 503)
    router = APIRouter()

    class FeedParams(RouteParams):
        user_id: str = _id_field("user", required=True)
        limit: int = _limit_field(settings)
        category: Label | None = _category_field()
        region: Label | None = _region_field()
        exclude: str | None = _exclude_field(settings)
        cursor: str | None = _cursor_field(settings)

    class SimilarParams(RouteParams):
        item_id: str = _id_field("item", required=True)
        limit: int = _limit_field(settings)
        exclude: str | None = _exclude_field(settings)
        user_id: str | None = _id_field("user", "Drop the items this user already interacted with.")
        region: Label | None = _region_field(
            "Rerank: blend similarity with a match of this region."
        )

    class PopularParams(RouteParams):
        limit: int = _limit_field(settings)
        category: Label | None = _category_field()
        region: Label | None = _region_field()

    feed_path = "/v1/users/{user_id}/recommendations"
    similar_path = "/v1/items/{item_id}/similar"
    popular_path = "/v1/popular"

    @router.get(
        feed_path,
        response_model=RecommendationPage,
        dependencies=read_guard,
        responses=read_errors,
        openapi_extra={"parameters": openapi_parameters(FeedParams, feed_path)},
        summary="Personalized feed",
        tags=["recommendations"],
    )
    async def recommendations(request: Request) -> Response:
        """The user's recent interactions expanded through item neighbour lists, scored by
        event type and recency, filtered, enriched with catalog metadata, diversified
        (at most a few items per category and seller), and filled from popular lists when
        short (cold start)."""
        params = parse_params(FeedParams, request)
        query = FeedQuery(
            user_id=params.user_id,
            limit=params.limit,
            category=params.category,
            region=params.region,
            exclude=parse_exclude(params.exclude, settings.max_exclude),
            cursor=params.cursor,
        )
        return page_response(await _recommender(request).feed(query))

    @router.get(
        similar_path,
        response_model=RecommendationPage,
        dependencies=read_guard,
        responses=read_errors,
        openapi_extra={"parameters": openapi_parameters(SimilarParams, similar_path)},
        summary="Similar items",
        tags=["recommendations"],
    )
    async def similar(request: Request) -> Response:
        """Items similar to this one. An unknown item gets popular items instead
        (`source: popular`)."""
        params = parse_params(SimilarParams, request)
        query = SimilarQuery(
            item_id=params.item_id,
            limit=params.limit,
            exclude=parse_exclude(params.exclude, settings.max_exclude),
            user_id=params.user_id,
            region=params.region,
        )
        return page_response(await _recommender(request).similar(query))

    @router.get(
        popular_path,
        response_model=RecommendationPage,
        dependencies=read_guard,
        responses=read_errors,
        openapi_extra={"parameters": openapi_parameters(PopularParams, popular_path)},
        summary="Popular items",
        tags=["recommendations"],
    )
    async def popular(request: Request) -> Response:
        """The most popular items overall, in a category, in a region, or both."""
        params = parse_params(PopularParams, request)
        query = PopularQuery(limit=params.limit, category=params.category, region=params.region)
        return page_response(await _recommender(request).popular(query))

    event_types = frozenset(settings.event_weights)
    write_deadline_s = settings.event_write_deadline_ms / 1000

    @router.post(
        "/v1/events",
        response_model=EventsResult,
        responses={
            **documented_errors(401, 403, 408),
            503: {
                "description": "Some valid events could not be stored (send `failed` again), "
                "or overloaded: nothing was stored (Retry-After either way)",
                "content": {
                    "application/json": {
                        "schema": {
                            "anyOf": [
                                {"$ref": "#/components/schemas/PartialWriteBody"},
                                {"$ref": "#/components/schemas/ErrorBody"},
                            ]
                        }
                    }
                },
            },
        },
        dependencies=[Depends(require_key)],
        summary="Ingest user interactions",
        tags=["events"],
    )
    async def post_events(request: Request, batch: EventBatch) -> Response:
        """Store a batch of 1 to 500 interactions, idempotently by event id. Each event is
        validated on its own: invalid ones are listed in `rejected` with a reason. Only
        events DynamoDB confirmed are listed in `accepted`."""
        valid, rejected = validate(batch.events, event_types)
        outcome = await _store(request.state.sources.interactions, valid, write_deadline_s)
        result = EventsResult(
            accepted=[event.event_id for event in outcome.stored],
            rejected=rejected,
            failed=[event.event_id for event in outcome.failed],
        )
        if result.failed:
            body = {
                "error": {
                    "code": "storage_unavailable",
                    "message": f"{len(result.failed)} events were not stored; send them again",
                },
                **dataclasses.asdict(result),
            }
            return json_response(body, 503, {"Retry-After": "1"})
        return json_response(result)

    @router.get(
        "/metrics",
        tags=["operations"],
        summary="Prometheus metrics",
        response_class=PlainTextResponse,
        responses=documented_errors(),
    )
    async def metrics(request: Request) -> Response:
        """Request, dependency, event-loop, GC, pool, cache and model-version metrics."""
        return Response(request.state.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    @router.get(
        "/healthz",
        tags=["operations"],
        summary="Liveness",
        response_model=Health,
        responses=documented_errors(),
    )
    async def healthz() -> Response:
        """The event loop answers."""
        return json_response({"status": "ok"})

    @router.get(
        "/readyz",
        tags=["operations"],
        summary="Readiness",
        response_model=Readiness,
        responses={
            **documented_errors(),
            503: {
                "model": Readiness,
                "description": "Not ready: models not loaded, draining, saturated or shedding",
            },
        },
    )
    async def readyz(request: Request) -> Response:
        """Ready once clients are built and the active model versions are loaded, and while
        neither draining, saturated (every read slot taken) nor shedding (refusing requests
        that queued too long): a load balancer should send the next request elsewhere."""
        lifecycle = request.state.lifecycle
        if lifecycle.draining:
            return json_response({"status": "not_ready", "reason": "draining"}, 503)
        if lifecycle.in_flight >= settings.max_in_flight:
            return json_response({"status": "not_ready", "reason": "saturated"}, 503)
        if lifecycle.admission is not None and lifecycle.admission.shedding(time.monotonic()):
            return json_response({"status": "not_ready", "reason": "shedding"}, 503)
        snapshot = request.state.models.current
        if snapshot is None or not snapshot.complete:
            return json_response(
                {"status": "not_ready", "reason": "model versions not loaded"}, 503
            )
        body: dict[str, Any] = {"status": "ready", "model_version": snapshot.label}
        if request.state.models.refused:
            # Still ready: the previous embeddings version serves. An operator sees why not.
            body["refused"] = request.state.models.refused
        return json_response(body)

    return router

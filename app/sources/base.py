"""The interfaces between the recommender and its data.

The service reads through these protocols only, so the remote backends (ScyllaDB, DynamoDB,
the catalog service) and the embedded in-process backend run the same ranking code.
Readers raise on failure; the caching layer and the recommender turn failures into
degraded answers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Generic, Protocol, TypeVar

from app.domain import CatalogItem, Event, Interaction, WriteOutcome
from app.embeddings import EmbeddingTable
from app.ranking.types import ScoredList

T = TypeVar("T")

# Model names in the model_versions table.
NEIGHBOURS_MODEL: Final = "neighbours"
POPULAR_MODEL: Final = "popular"
EMBEDDINGS_MODEL: Final = "embeddings"
MODELS: Final = (NEIGHBOURS_MODEL, POPULAR_MODEL, EMBEDDINGS_MODEL)

# Dependency names reported in a response's `degraded` list.
DEP_SCYLLA: Final = "scylla"
DEP_DYNAMODB: Final = "dynamodb"
DEP_CATALOG: Final = "catalog"


class ModelStore(Protocol):
    """Model versions, and the parts of a version the service holds in memory."""

    async def active_versions(self) -> dict[str, str]:
        """Active version of each model that has one: {"neighbours": ..., ...}."""
        ...

    async def popular_lists(self, version: str) -> dict[str, ScoredList]:
        """Every popular list (by segment) of one popular-model version."""
        ...

    async def embeddings(self, version: str) -> EmbeddingTable:
        """Every item vector of one embeddings-model version."""
        ...


class NeighbourReader(Protocol):
    async def neighbours(self, version: str, item_ids: Sequence[str]) -> dict[str, ScoredList]:
        """Neighbour lists of the given items in one round trip; unknown items are absent."""
        ...


class InteractionReader(Protocol):
    async def recent(self, user_id: str, limit: int) -> list[Interaction]:
        """A user's newest interactions, newest first, read-your-writes consistent."""
        ...


class InteractionStore(InteractionReader, Protocol):
    async def write(self, events: Sequence[Event], *, deadline_s: float) -> WriteOutcome:
        """Store events idempotently; report which were stored and which failed."""
        ...


class CatalogReader(Protocol):
    async def items(self, item_ids: Sequence[str]) -> dict[str, CatalogItem]:
        """Metadata of the given items in one batched call; unknown items are absent."""
        ...


@dataclass(frozen=True, slots=True)
class Lookup(Generic[T]):
    """What a cached lookup found, and whether everything asked for could be looked up.

    `complete` is False when the backing store failed or timed out: `found` then holds
    only what the cache already had.
    """

    found: Mapping[str, T] = field(default_factory=dict)
    complete: bool = True


class BatchLookup(Protocol[T]):
    """Many keys in, what was found out: the cached view the recommender reads through.

    `namespace` scopes keys (the model version for neighbour lists; "" for the catalog).
    Implemented by `cache.BatchCache` (remote stores) and `embedded.InMemoryLookup`.
    """

    async def get_many(
        self, namespace: str, keys: Iterable[str], *, timeout: float
    ) -> Lookup[T]: ...

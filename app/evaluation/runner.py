"""Offline evaluation: score what the feed would serve, beside the baselines.

The feed is scored through the service's own `Recommender`, with the service's settings
(event weights, recency, history limit, seen-item drop, diversity caps, popular fill), on
in-process sources: the split's training histories, the model files, and the catalog (or,
without one, an open catalog in which every item is active and has no category, region or
seller, so no cap applies). So an offline figure is what the online feed does, not a model
of it: a test checks that for sampled users the evaluator's list equals the embedded
service's answer.

Baselines, scored on the same users and cut-offs:
- `popular`: the popular model's global list without the items the user met in training
  (and, with a catalog, without inactive items): the feed's own cold-start answer;
- `mf:als` / `mf:bpr` (optional): user · item scores of a matrix factorisation trained on
  the same training events, the user's training items left out.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.config import Settings
from app.domain import CatalogItem
from app.embeddings import EmbeddingTable
from app.evaluation.metrics import MetricTotals
from app.evaluation.protocols import LEAVE_LAST_OUT, EvaluationInputError, Split
from app.model_versions import EmbeddingLimits, ModelTracker
from app.offline.factorization import FactorizationConfig, train_factors
from app.ranking.types import SOURCE_PERSONALIZED, ScoredList
from app.recommender import FeedQuery, Recommender
from app.results import RecommendationPage
from app.sources.base import BatchLookup, Lookup
from app.sources.embedded import EmbeddedBackend, InMemoryLookup

__all__ = [
    "MethodScores",
    "OpenCatalog",
    "Report",
    "evaluate",
    "feed_page",
    "feed_scores",
    "in_process_recommender",
    "mf_scores",
    "popular_scores",
]

GLOBAL_SEGMENT = "global"


class OpenCatalog:
    """A catalog that knows every item as active, with no metadata (no filter or cap applies)."""

    async def get_many(
        self, namespace: str, keys: Iterable[str], *, timeout: float
    ) -> Lookup[CatalogItem]:
        return Lookup({key: CatalogItem(key) for key in keys})


# Users this short of history are scored apart too: where a cold start shows.
SHORT_HISTORY = 3


@dataclass(slots=True)
class MethodScores:
    name: str
    metrics: dict[int, dict[str, float]]
    coverage: dict[int, float]
    users: int
    short: dict[int, dict[str, float]] = field(default_factory=dict)
    """The metrics of the users with 1 to SHORT_HISTORY training events only."""
    short_users: int = 0
    from_history: float | None = None
    """Feed only: share of users whose top K holds at least one item from their history."""
    seconds: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "users": self.users,
            "metrics": {str(k): values for k, values in self.metrics.items()},
            "coverage": {str(k): value for k, value in self.coverage.items()},
            "short_history": {
                "users": self.short_users,
                "metrics": {str(k): values for k, values in self.short.items()},
            },
            "from_history": self.from_history,
            "seconds": round(self.seconds, 3),
        }


class _Scoring:
    """One method's totals: over every scored user, and over the short histories."""

    def __init__(self, split: Split, ks: Sequence[int]) -> None:
        self._histories = split.histories
        self.every = MetricTotals(tuple(ks))
        self.short = MetricTotals(tuple(ks))
        self._started = time.perf_counter()

    def add(self, user: str, recommended: Sequence[str], relevant: Collection[str]) -> None:
        self.every.add(recommended, relevant)
        if 0 < len(self._histories.get(user, ())) <= SHORT_HISTORY:
            self.short.add(recommended, relevant)

    def scores(
        self, name: str, catalog_items: int, from_history: float | None = None
    ) -> MethodScores:
        return MethodScores(
            name,
            self.every.means(),
            self.every.coverage(catalog_items),
            self.every.users,
            short=self.short.means(),
            short_users=self.short.users,
            from_history=from_history,
            seconds=time.perf_counter() - self._started,
        )


@dataclass(slots=True)
class Report:
    split: str
    log: str
    users: int
    train_events: int
    test_events: int
    catalog_items: int
    repeat_share: float
    ks: tuple[int, ...]
    methods: list[MethodScores] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def method(self, name: str) -> MethodScores:
        return next(m for m in self.methods if m.name == name)

    def as_json(self) -> dict[str, Any]:
        return {
            "split": self.split,
            "log": self.log,
            "users": self.users,
            "train_events": self.train_events,
            "test_events": self.test_events,
            "catalog_items": self.catalog_items,
            "repeat_share": self.repeat_share,
            "ks": list(self.ks),
            "methods": [m.as_json() for m in self.methods],
            "notes": self.notes,
        }

    def table(self) -> str:
        """A plain-text table: one row per method, each metric at each K."""
        names = ["hr", "ndcg", "mrr"]
        if self.split != LEAVE_LAST_OUT:
            names += ["precision", "recall"]
        header = ["method"] + [f"{name}@{k}" for k in self.ks for name in names]
        first = self.ks[0]
        header += [f"cov@{k}" for k in self.ks] + ["history", f"hr@{first} 1-{SHORT_HISTORY}"]
        rows = [header]
        for method in self.methods:
            row = [method.name]
            row += [f"{method.metrics[k][name]:.4f}" for k in self.ks for name in names]
            row += [f"{method.coverage[k]:.3f}" for k in self.ks]
            row.append("" if method.from_history is None else f"{method.from_history:.3f}")
            row.append(f"{method.short[first]['hr']:.4f}" if method.short_users else "")
            rows.append(row)
        widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
        lines = [
            f"{self.log}: {self.split}, {self.users} users scored, {self.train_events} training "
            f"and {self.test_events} test events, {self.catalog_items} catalog items",
        ]
        lines.append(
            f"hr@{first} 1-{SHORT_HISTORY}: the users with 1 to {SHORT_HISTORY} training events "
            f"({self.methods[0].short_users if self.methods else 0})"
        )
        if self.split == LEAVE_LAST_OUT:
            lines.append(
                f"held-out items the user had met before: {self.repeat_share:.1%} "
                "(never recommended again: the feed drops seen items)"
            )
        lines += [
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
            for row in rows
        ]
        feed = next((m for m in self.methods if m.name == "feed"), None)
        if feed is not None:
            for other in self.methods:
                if other is feed:
                    continue
                base = other.metrics[first]["hr"]
                ratio = f"{feed.metrics[first]['hr'] / base:.2f}x" if base else "n/a"
                lines.append(f"feed hr@{first} / {other.name}: {ratio}")
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)


def in_process_recommender(
    settings: Settings,
    split: Split,
    neighbours: Mapping[str, ScoredList],
    popular: Mapping[str, ScoredList],
    catalog: Mapping[str, CatalogItem] | None,
    embeddings: EmbeddingTable | None = None,
) -> tuple[Recommender, ModelTracker]:
    """The service's recommender over the split's histories and in-memory models (the
    embeddings, if any, indexed as the service indexes them once `models` is refreshed)."""
    backend = EmbeddedBackend(
        version="evaluation",
        neighbours=dict(neighbours),
        popular=dict(popular),
        catalog=dict(catalog or {}),
        interactions=split.histories,
        embeddings=embeddings,
    )
    models = ModelTracker(
        backend, refresh_s=3600, embeddings=EmbeddingLimits.from_settings(settings)
    )
    catalog_lookup: BatchLookup[CatalogItem] = (
        OpenCatalog() if catalog is None else InMemoryLookup(dict(catalog))
    )
    recommender = Recommender(
        settings,
        models=models,
        interactions=backend,
        neighbours=backend.neighbour_lookup,
        catalog=catalog_lookup,
    )
    return recommender, models


async def feed_page(recommender: Recommender, user_id: str, limit: int) -> RecommendationPage:
    """The feed's first page for a user, as the service would answer it."""
    page = await recommender.feed(FeedQuery(user_id, limit))
    if page.degraded:
        # A degraded answer is a fallback: scoring it would measure the outage.
        raise RuntimeError(
            f"the feed of {user_id} answered degraded ({', '.join(page.degraded)}): "
            "the evaluation stops rather than score a fallback"
        )
    return page


async def feed_scores(
    recommender: Recommender, split: Split, ks: Sequence[int], catalog_items: int
) -> MethodScores:
    """The feed's answer for every scored user, scored."""
    scoring = _Scoring(split, ks)
    limit = max(ks)
    personalized = 0
    for user, relevant in split.targets.items():
        page = await feed_page(recommender, user, limit)
        scoring.add(user, [item.item_id for item in page.items], relevant)
        personalized += any(item.source == SOURCE_PERSONALIZED for item in page.items)
    return scoring.scores("feed", catalog_items, personalized / max(len(split.targets), 1))


def popular_scores(
    split: Split,
    popular: Mapping[str, ScoredList],
    catalog: Mapping[str, CatalogItem] | None,
    ks: Sequence[int],
    catalog_items: int,
) -> MethodScores:
    """Baseline: the global popular list minus what the user met in training."""
    ranked = _active(popular.get(GLOBAL_SEGMENT, ScoredList((), ())).item_ids, catalog)
    listed = set(ranked)
    seen: dict[str, set[str]] = {}
    for user, item, _event, _ts in split.train_rows:
        if item in listed and user in split.targets:
            seen.setdefault(user, set()).add(item)
    scoring = _Scoring(split, ks)
    limit = max(ks)
    for user, relevant in split.targets.items():
        met = seen.get(user, set())
        scoring.add(user, [item for item in ranked if item not in met][:limit], relevant)
    return scoring.scores("popular", catalog_items)


def mf_scores(
    split: Split,
    config: FactorizationConfig,
    popular: Mapping[str, ScoredList],
    catalog: Mapping[str, CatalogItem] | None,
    ks: Sequence[int],
    catalog_items: int,
) -> MethodScores:
    """Baseline: user · item scores of a factorisation of the training events."""
    import numpy

    scoring = _Scoring(split, ks)
    factors = train_factors(split.train_rows, config)
    item_ids = numpy.asarray(factors.item_ids, dtype=object)
    eligible = numpy.ones(len(factors.item_ids), dtype=bool)
    if catalog is not None:
        eligible[:] = [item in catalog and catalog[item].active for item in factors.item_ids]
    users = {user: row for row, user in enumerate(factors.user_ids)}
    fallback = _active(popular.get(GLOBAL_SEGMENT, ScoredList((), ())).item_ids, catalog)
    limit = max(ks)
    matrix = factors.matrix
    for user, relevant in split.targets.items():
        row = users.get(user)
        if row is None:  # no training event: the cold-start answer
            scoring.add(user, fallback[:limit], relevant)
            continue
        scores = factors.items @ factors.users[row]
        scores[~eligible] = -numpy.inf
        scores[matrix.indices[matrix.indptr[row] : matrix.indptr[row + 1]]] = -numpy.inf
        count = min(limit, len(scores))
        best = numpy.argpartition(-scores, count - 1)[:count]
        best = best[numpy.argsort(-scores[best], kind="stable")]
        scoring.add(user, [str(item) for item in item_ids[best]], relevant)
    return scoring.scores(f"mf:{config.method}", catalog_items)


def _active(item_ids: Iterable[str], catalog: Mapping[str, CatalogItem] | None) -> list[str]:
    if catalog is None:
        return list(item_ids)
    return [item for item in item_ids if item in catalog and catalog[item].active]


async def evaluate(
    split: Split,
    *,
    settings: Settings,
    neighbours: Mapping[str, ScoredList],
    popular: Mapping[str, ScoredList],
    catalog: Mapping[str, CatalogItem] | None,
    ks: Sequence[int],
    mf: FactorizationConfig | None = None,
    embeddings: EmbeddingTable | None = None,
) -> Report:
    """Score the feed and the baselines on one split (see the module doc)."""
    log_items = {
        item for history in split.histories.values() for item in (i.item_id for i in history)
    }
    if not any(item in neighbours for item in log_items):
        raise EvaluationInputError(
            f"the neighbours model and {split.path} share no item: is it the model of this log?"
        )
    catalog_items = (
        sum(item.active for item in catalog.values()) if catalog is not None else split.log_items
    )
    recommender, models = in_process_recommender(
        settings, split, neighbours, popular, catalog, embeddings
    )
    await models.refresh()
    if models.refused:
        raise EvaluationInputError(f"embeddings refused: {', '.join(models.refused.values())}")
    report = Report(
        split=split.name,
        log=str(split.path),
        users=len(split.targets),
        train_events=split.train_events,
        test_events=split.test_events,
        catalog_items=catalog_items,
        repeat_share=split.repeat_share,
        ks=tuple(ks),
    )
    report.methods.append(await feed_scores(recommender, split, ks, catalog_items))
    report.methods.append(popular_scores(split, popular, catalog, ks, catalog_items))
    if mf is not None:
        report.methods.append(mf_scores(split, mf, popular, catalog, ks, catalog_items))
    return report

"""Item vectors learned from implicit feedback, and neighbour lists from them by cosine.

The user × item matrix holds each pair's summed event weights (`app.offline.weighting`, the
builders' rule). `implicit` factorises it: ALS (alternating least squares with confidence
`1 + alpha * weight`, Hu, Koren and Volinsky 2008) or BPR (Bayesian personalised ranking,
Rendle et al. 2009). An item's row of the item factors is its vector; its neighbours are the
`k` items of highest cosine similarity above 0, ties by id, computed exactly in blocks of
rows (one matrix product per block, memory `block × items` floats).

Offline only, and an optional install (`pip install 'recs[learn]'`: implicit, numpy, scipy);
the service does not import this module. Runs are reproducible for a given seed: BPR trains
on one thread (its parallel updates race), ALS solves users independently.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal

from app.offline.formats import InteractionRow
from app.offline.topk import ScoredLists
from app.offline.weighting import MAX_HALF_LIVES, Weighting, newest_by_user, replayable

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = [
    "FactorizationConfig",
    "Factors",
    "LearnExtraMissing",
    "cosine_neighbours",
    "factor_neighbours",
    "train_factors",
]

Method = Literal["als", "bpr"]
METHODS: Final[tuple[Method, ...]] = ("als", "bpr")
_BLOCK_ROWS: Final = 1024


class LearnExtraMissing(RuntimeError):
    """The learned methods need the optional `learn` dependencies."""


@dataclass(frozen=True, slots=True)
class FactorizationConfig:
    method: Method = "als"
    factors: int = 64
    regularization: float = 0.01
    iterations: int = 15
    alpha: float = 1.0
    """ALS: confidence per unit of event weight."""
    learning_rate: float = 0.01
    """BPR: step size."""
    seed: int = 0
    threads: int = 0
    """ALS worker threads (0: one per core); BPR always uses one, for reproducible runs."""
    weighting: Weighting = field(default_factory=Weighting)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.factors < 1 or self.iterations < 1:
            raise ValueError("factors and iterations must be >= 1")
        for name in ("regularization", "alpha", "learning_rate"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be >= 0, got {value}")


@dataclass(frozen=True, slots=True)
class Factors:
    """What a factorisation learned: one row per user and per item, in id order."""

    user_ids: list[str]
    item_ids: list[str]
    users: npt.NDArray[np.float32]
    items: npt.NDArray[np.float32]
    matrix: Any
    """The user × item CSR matrix it learned from (event weights)."""


def _learn_modules() -> tuple[Any, Any, Any, Any]:
    try:
        import implicit.cpu.als
        import implicit.cpu.bpr
        import numpy
        import scipy.sparse
        import threadpoolctl
    except ImportError as exc:  # pragma: no cover - the suite installs the extra
        raise LearnExtraMissing(
            f"the learned methods need the 'learn' extra (pip install 'recs[learn]'): {exc}"
        ) from None
    return implicit.cpu, numpy, scipy.sparse, threadpoolctl


def interaction_matrix(
    rows: Iterable[InteractionRow], weighting: Weighting | None = None
) -> tuple[list[str], list[str], Any]:
    """Users, items and the CSR user × item matrix of summed event weights."""
    _, numpy, sparse, _ = _learn_modules()
    weighting = weighting if weighting is not None else Weighting()
    newest: Mapping[str, int] = {}
    if weighting.decays:
        rows = replayable(rows)
        newest = newest_by_user(rows)
    inv_half_life = weighting.inv_half_life()
    type_weights = weighting.type_weights()
    users: dict[str, int] = {}
    items: dict[str, int] = {}
    row_index: list[int] = []
    col_index: list[int] = []
    values: list[float] = []
    for user, item, event, ts in rows:
        weight = type_weights[event]
        if inv_half_life:
            age = max(newest.get(user, ts) - ts, 0)
            weight *= math.exp2(-min(age * inv_half_life, MAX_HALF_LIVES))
        row_index.append(users.setdefault(user, len(users)))
        col_index.append(items.setdefault(item, len(items)))
        values.append(weight)
    matrix = sparse.csr_matrix(
        (numpy.asarray(values, dtype=numpy.float32), (row_index, col_index)),
        shape=(len(users), len(items)),
    )
    matrix.sum_duplicates()
    return list(users), list(items), matrix


def train_factors(rows: Iterable[InteractionRow], config: FactorizationConfig) -> Factors:
    """User and item factors of the interaction matrix (see the module doc)."""
    cpu, numpy, _, threadpoolctl = _learn_modules()
    user_ids, item_ids, matrix = interaction_matrix(rows, config.weighting)
    # implicit parallelises itself: BLAS threads on top only contend (it checks, and warns,
    # when the model is built).
    with threadpoolctl.threadpool_limits(1, "blas"):
        if config.method == "als":
            model = cpu.als.AlternatingLeastSquares(
                factors=config.factors,
                regularization=config.regularization,
                alpha=config.alpha,
                iterations=config.iterations,
                num_threads=config.threads,
                random_state=config.seed,
            )
        else:
            model = cpu.bpr.BayesianPersonalizedRanking(
                factors=config.factors,
                learning_rate=config.learning_rate,
                regularization=config.regularization,
                iterations=config.iterations,
                num_threads=1,
                random_state=config.seed,
            )
        model.fit(matrix, show_progress=False)
    users = numpy.ascontiguousarray(model.user_factors, dtype=numpy.float32)
    items = numpy.ascontiguousarray(model.item_factors, dtype=numpy.float32)
    return Factors(user_ids, item_ids, users, items, matrix)


def cosine_neighbours(item_ids: list[str], vectors: Any, k: int) -> ScoredLists:
    """item → its `k` most cosine-similar items (similarity > 0), best first, ties by id."""
    _, numpy, _, _ = _learn_modules()
    vectors = numpy.asarray(vectors, dtype=numpy.float32)
    norms = numpy.linalg.norm(vectors, axis=1)
    usable = norms > 0
    unit = numpy.zeros_like(vectors)
    unit[usable] = vectors[usable] / norms[usable, None]
    count = len(item_ids)
    keep = min(k + 1, count)
    neighbours: ScoredLists = {}
    for start in range(0, count, _BLOCK_ROWS):
        block = unit[start : start + _BLOCK_ROWS] @ unit.T
        for offset in range(block.shape[0]):
            item = start + offset
            if not usable[item]:
                continue
            row = block[offset]
            row[item] = -1.0  # never its own neighbour
            best = numpy.argpartition(-row, keep - 1)[:keep] if keep < count else range(count)
            ranked = sorted(
                (-float(row[other]), item_ids[other]) for other in best if row[other] > 0.0
            )
            if ranked:
                neighbours[item_ids[item]] = [(other, -negated) for negated, other in ranked[:k]]
    return neighbours


def factor_neighbours(
    rows: Iterable[InteractionRow], config: FactorizationConfig, k: int
) -> ScoredLists:
    """Neighbour lists from learned item vectors: `train_factors`, then `cosine_neighbours`."""
    factors = train_factors(rows, config)
    return cosine_neighbours(factors.item_ids, factors.items, k)

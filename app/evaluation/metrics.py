"""Ranking metrics at a cut-off K, summed over users and averaged at the end. Pure.

For one user with recommended list `r` (best first) and relevant items `R`:

- HR@K (hit rate): 1 when any of the first K is relevant;
- NDCG@K: `sum(1 / log2(i + 1) for i, item in enumerate(r[:K], 1) if item in R)`, divided by
  the same sum for a perfect list (`min(|R|, K)` hits on top);
- MRR@K: `1 / i` for the first relevant item at position i <= K, else 0;
- precision@K: hits in the first K, divided by K; recall@K: hits divided by |R|.

With one relevant item (leave-last-out) HR@K equals recall@K and MRR is that item's
reciprocal rank.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Final

__all__ = ["METRICS", "MetricTotals"]

METRICS: Final = ("hr", "ndcg", "mrr", "precision", "recall")


def _discount(position: int) -> float:
    return 1.0 / math.log2(position + 1)


@dataclass(slots=True)
class MetricTotals:
    """Sums of each metric at each K, the users scored, and the items recommended."""

    ks: tuple[int, ...]
    users: int = 0
    sums: dict[int, dict[str, float]] = field(default_factory=dict)
    recommended: dict[int, set[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.ks or min(self.ks) < 1:
            raise ValueError(f"cut-offs must be >= 1, got {self.ks}")
        for k in self.ks:
            self.sums[k] = dict.fromkeys(METRICS, 0.0)
            self.recommended[k] = set()

    def add(self, recommended: Sequence[str], relevant: Collection[str]) -> None:
        """Score one user's list against their relevant items (at least one)."""
        self.users += 1
        for k in self.ks:
            top = recommended[:k]
            self.recommended[k].update(top)
            hits = 0
            dcg = 0.0
            first = 0
            for position, item in enumerate(top, 1):
                if item in relevant:
                    hits += 1
                    dcg += _discount(position)
                    first = first or position
            ideal = sum(_discount(position) for position in range(1, min(len(relevant), k) + 1))
            sums = self.sums[k]
            sums["hr"] += 1.0 if hits else 0.0
            sums["ndcg"] += dcg / ideal
            sums["mrr"] += 1.0 / first if first else 0.0
            sums["precision"] += hits / k
            sums["recall"] += hits / len(relevant)

    def means(self) -> dict[int, dict[str, float]]:
        """Each metric at each K, averaged over the users scored (0 when none was)."""
        users = self.users or 1
        return {
            k: {name: total / users for name, total in sums.items()}
            for k, sums in self.sums.items()
        }

    def coverage(self, catalog_size: int) -> dict[int, float]:
        """Share of the catalog that appears in someone's top K."""
        return {
            k: len(items) / catalog_size if catalog_size else 0.0
            for k, items in self.recommended.items()
        }

"""Zipf-skewed ids, shared by the Locust suite and the benchmark so both send the same mix:
`user-1` and `item-1` the hottest, like the demo's own popularity."""

from __future__ import annotations

import bisect
import itertools
import random
from typing import Final

ZIPF_S: Final = 1.1  # users and items
SEGMENT_ZIPF_S: Final = 0.8  # categories and regions


class Zipf:
    """Ranks 1..n with P(k) ∝ 1 / k**s: a precomputed CDF and a bisect per draw."""

    def __init__(self, n: int, s: float) -> None:
        if n < 1:
            raise ValueError(f"Zipf needs n >= 1, got {n}")
        self._cdf = list(itertools.accumulate(1.0 / k**s for k in range(1, n + 1)))

    def rank(self, rng: random.Random) -> int:
        cdf = self._cdf
        return bisect.bisect_right(cdf, rng.random() * cdf[-1], 0, len(cdf) - 1) + 1

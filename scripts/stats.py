"""The one percentile of the tests, the benchmark and the load scripts."""

from __future__ import annotations

import math
from collections.abc import Iterable


def percentile(values: Iterable[float], q: float) -> float:
    """The nearest-rank percentile `q` (0 to 100) of `values`: the smallest of them that at
    least q % of them do not exceed, ``sorted(values)[ceil(q / 100 * n) - 1]`` (the smallest
    for q = 0). No interpolation: it is always a measured value. ValueError when empty."""
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} is not between 0 and 100")
    ordered = sorted(values)
    if not ordered:
        raise ValueError("a percentile of no values")
    # Rounded first: q * n / 100 in binary floating point may land a hair above an integer.
    rank = math.ceil(round(q * len(ordered) / 100, 9))
    return ordered[max(rank, 1) - 1]

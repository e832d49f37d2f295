"""Pausing the cyclic garbage collector around bulk builds.

The offline builders allocate millions of small acyclic containers (rows, per-item
dicts, session lists). Each allocation burst triggers collections that re-scan
everything built so far: a large share of the run time, for no garbage found. Reference
counting still frees everything; only cycles wait until the pause ends.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused_gc() -> Iterator[None]:
    """Disables the cyclic GC inside the block; restores the previous state after."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()

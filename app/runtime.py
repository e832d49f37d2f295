"""Process-wide runtime tuning done once at startup: garbage collector thresholds.

A request allocates thousands of short-lived objects; with CPython's default thresholds
(700, 10, 10) the collector runs so often that a young-generation pass lands inside most
requests and a full pass inside some, which shows as a second mode in the latency histogram.
Raising the thresholds (default here 7000, 20, 20) and freezing the objects built at startup
(settings, clients, caches' skeletons) takes that work off the hot path;
docs/performance.md has the measurement.
"""

from __future__ import annotations

import gc
import logging

from app.config import Settings

log = logging.getLogger(__name__)


def tune_gc(settings: Settings) -> None:
    first, second, third = settings.gc_thresholds
    gc.set_threshold(first, second, third)
    if settings.gc_freeze:
        # Collect once, then move everything alive now to the permanent generation.
        gc.collect()
        gc.freeze()
    log.info(
        "gc tuned",
        extra={
            "gc_thresholds": list(gc.get_threshold()),
            "gc_frozen_objects": gc.get_freeze_count(),
        },
    )

"""What the `recs` subcommands share."""

from __future__ import annotations

import sys
from pathlib import Path

from app.offline.formats import ReadStats


def report_skipped(path: Path, stats: ReadStats) -> None:
    """With --skip-invalid: how many rows of `path` were skipped, and the first reasons."""
    if stats.rows_skipped:
        print(f"{path}: skipped {stats.rows_skipped} invalid rows", file=sys.stderr)
        for reason in stats.skip_reasons:
            print(f"  {reason}", file=sys.stderr)

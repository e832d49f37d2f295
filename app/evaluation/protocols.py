"""Splitting an interactions log into what a recommender may see and what it must predict.

- **leave-last-out**: each user with at least two events has their newest one held out
  (ties in `ts_ms` broken by file order: the later row is the newer); every other event
  trains. The target is the held-out event's item, even when the user met that item
  before (`Split.repeat_share` says how often: no recommender that drops seen items, as
  the feed does, can hit those).
- **time:F**: one global cut at the F-quantile of the timestamps: events before it train,
  the rest are the test period. A user's targets are the items of their test events they
  had not interacted with in training; users with no such item are not scored. Users with
  no training event are scored too (cold start: served from the fallback).

A split reads the file in passes and keeps per user only what serving reads: their newest
`history_kept` training interactions (newest first), and their targets. Training rows are
read again from the file when a model is built (`Split.train_rows`), so memory grows with
users, not events.
"""

from __future__ import annotations

import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from app.domain import Interaction
from app.offline.formats import InteractionRow, read_interactions

__all__ = ["LEAVE_LAST_OUT", "EvaluationInputError", "Split", "parse_split", "split_log"]

LEAVE_LAST_OUT: Final = "leave-last-out"


class EvaluationInputError(ValueError):
    """A log or model the evaluation cannot score (no user to hold out, no shared item)."""


def parse_split(text: str) -> float | None:
    """`leave-last-out` → None; `time:F` → F (the training share, strictly between 0 and 1)."""
    if text == LEAVE_LAST_OUT:
        return None
    kind, sep, value = text.partition(":")
    try:
        share = float(value) if kind == "time" and sep else -1.0
    except ValueError:
        share = -1.0
    if not 0.0 < share < 1.0:
        raise EvaluationInputError(
            f"split {text!r}: expected {LEAVE_LAST_OUT} or time:F with 0 < F < 1 (time:0.9)"
        )
    return share


@dataclass(slots=True)
class Split:
    path: Path
    name: str
    histories: dict[str, list[Interaction]]
    """Per user, their newest training interactions, newest first."""
    targets: dict[str, frozenset[str]]
    """Per scored user, the items to predict."""
    log_items: int
    """Distinct items in the whole log."""
    train_events: int
    test_events: int
    repeat_share: float
    """Scored users whose target they had already met in training (leave-last-out)."""
    _held_out: frozenset[int] = field(default=frozenset(), repr=False)
    _cut_ts: int | None = field(default=None, repr=False)

    @property
    def train_rows(self) -> Iterable[InteractionRow]:
        """The training events in file order; each iteration reads the file again."""
        return _TrainRows(self.path, self._held_out, self._cut_ts)


class _TrainRows:
    __slots__ = ("cut_ts", "held_out", "path")

    def __init__(self, path: Path, held_out: frozenset[int], cut_ts: int | None) -> None:
        self.path = path
        self.held_out = held_out
        self.cut_ts = cut_ts

    def __iter__(self) -> Iterator[InteractionRow]:
        rows = read_interactions(self.path)
        if self.cut_ts is not None:
            cut = self.cut_ts
            return (row for row in rows if row[3] < cut)
        held_out = self.held_out
        return (row for index, row in enumerate(rows) if index not in held_out)


class _History:
    """A user's newest training interactions, trimmed as they come (bounded memory)."""

    __slots__ = ("entries",)

    def __init__(self) -> None:
        self.entries: list[tuple[int, int, str, str]] = []  # (ts, row index, item, event)

    def add(self, entry: tuple[int, int, str, str], keep: int) -> None:
        self.entries.append(entry)
        if len(self.entries) >= 2 * keep:
            self.entries.sort(reverse=True)
            del self.entries[keep:]

    def newest_first(self, keep: int) -> list[Interaction]:
        self.entries.sort(reverse=True)
        return [Interaction(item, event, ts) for ts, _, item, event in self.entries[:keep]]


def split_log(path: Path, split: str, *, history_kept: int) -> Split:
    """Read `path` and split it (see the module doc); `history_kept` ≥ the feed's history."""
    share = parse_split(split)
    if share is None:
        return _leave_last_out(path, history_kept)
    return _time_split(path, share, split, history_kept)


def _leave_last_out(path: Path, keep: int) -> Split:
    newest: dict[str, tuple[int, int]] = {}
    counts: dict[str, int] = {}
    items: set[str] = set()
    for index, (user, item, _event, ts) in enumerate(read_interactions(path)):
        items.add(item)
        counts[user] = counts.get(user, 0) + 1
        if (ts, index) > newest.get(user, (-1, -1)):
            newest[user] = (ts, index)
    held_out = frozenset(newest[user][1] for user, count in counts.items() if count >= 2)
    if not held_out:
        raise EvaluationInputError(
            f"{path}: no user has two events, so leave-last-out holds nothing out "
            "(try --split time:0.9)"
        )
    histories: dict[str, _History] = {}
    targets: dict[str, frozenset[str]] = {}
    train_events = 0
    for index, (user, item, event, ts) in enumerate(read_interactions(path)):
        if index in held_out:
            targets[user] = frozenset((item,))
            continue
        train_events += 1
        history = histories.get(user)
        if history is None:
            history = histories[user] = _History()
        history.add((ts, index, item, str(event)), keep)
    # A repeat is a target met before: in the kept history or anywhere in training.
    repeats = _repeats(path, held_out, targets)
    return Split(
        path=path,
        name=LEAVE_LAST_OUT,
        histories={user: h.newest_first(keep) for user, h in histories.items()},
        targets=targets,
        log_items=len(items),
        train_events=train_events,
        test_events=len(held_out),
        repeat_share=repeats / len(targets),
        _held_out=held_out,
    )


def _repeats(path: Path, held_out: frozenset[int], targets: dict[str, frozenset[str]]) -> int:
    met: set[str] = set()
    for index, (user, item, _event, _ts) in enumerate(read_interactions(path)):
        if index not in held_out and item in targets.get(user, ()):
            met.add(user)
    return len(met)


def _time_split(path: Path, share: float, name: str, keep: int) -> Split:
    stamps = array.array("q", (ts for _user, _item, _event, ts in read_interactions(path)))
    if not stamps:
        raise EvaluationInputError(f"{path}: the log is empty")
    ordered = sorted(stamps)
    cut = ordered[min(int(len(ordered) * share), len(ordered) - 1)]
    del stamps, ordered
    histories: dict[str, _History] = {}
    tested: dict[str, set[str]] = {}
    items: set[str] = set()
    train_events = test_events = 0
    for index, (user, item, event, ts) in enumerate(read_interactions(path)):
        items.add(item)
        if ts < cut:
            train_events += 1
            history = histories.get(user)
            if history is None:
                history = histories[user] = _History()
            history.add((ts, index, item, str(event)), keep)
        else:
            test_events += 1
            tested.setdefault(user, set()).add(item)
    # A third pass drops the test items a user met in training: memory stays with the test
    # period's (user, item) pairs instead of the whole log's.
    for user, item, _event, ts in read_interactions(path):
        if ts < cut:
            wanted = tested.get(user)
            if wanted is not None:
                wanted.discard(item)
    targets = {user: frozenset(wanted) for user, wanted in tested.items() if wanted}
    if not train_events or not targets:
        raise EvaluationInputError(
            f"{path}: the cut at ts_ms {cut} leaves "
            f"{'no training event' if not train_events else 'no user with a new item after it'}"
        )
    return Split(
        path=path,
        name=name,
        histories={user: h.newest_first(keep) for user, h in histories.items()},
        targets=targets,
        log_items=len(items),
        train_events=train_events,
        test_events=test_events,
        repeat_share=0.0,
        _cut_ts=cut,
    )

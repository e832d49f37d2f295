from pathlib import Path

import pytest

from app.domain import Interaction
from app.evaluation.protocols import EvaluationInputError, parse_split, split_log
from app.offline.formats import write_interactions

T = 1_000_000


def log(tmp_path: Path, *rows: tuple[str, str, str, int]) -> Path:
    path = tmp_path / "log.csv"
    write_interactions(path, rows)
    return path


def test_leave_last_out_holds_out_each_users_newest_event(tmp_path: Path) -> None:
    path = log(
        tmp_path,
        ("u", "a", "view", T),
        ("u", "b", "view", T + 2),
        ("u", "c", "favorite", T + 1),  # out of order: not the newest
        ("v", "x", "view", T),  # one event: trains, never scored
    )
    split = split_log(path, "leave-last-out", history_kept=50)
    assert split.targets == {"u": frozenset({"b"})}
    assert split.histories["u"] == [
        Interaction("c", "favorite", T + 1),
        Interaction("a", "view", T),
    ]
    assert split.histories["v"] == [Interaction("x", "view", T)]
    assert (split.train_events, split.test_events) == (3, 1)
    assert sorted(split.train_rows) == sorted(
        [("u", "a", "view", T), ("u", "c", "favorite", T + 1), ("v", "x", "view", T)]
    )


def test_ties_in_time_are_broken_by_file_order(tmp_path: Path) -> None:
    path = log(tmp_path, ("u", "a", "view", T), ("u", "b", "view", T), ("u", "c", "view", T))
    split = split_log(path, "leave-last-out", history_kept=50)
    assert split.targets == {"u": frozenset({"c"})}
    # The later row is the newer: the history reads b, then a.
    assert [i.item_id for i in split.histories["u"]] == ["b", "a"]


def test_a_target_the_user_met_before_counts_as_a_repeat(tmp_path: Path) -> None:
    path = log(
        tmp_path,
        ("u", "a", "view", T),
        ("u", "a", "favorite", T + 1),
        ("v", "x", "view", T),
        ("v", "y", "view", T + 1),
    )
    assert split_log(path, "leave-last-out", history_kept=50).repeat_share == 0.5


def test_histories_keep_only_the_newest_interactions(tmp_path: Path) -> None:
    rows = [("u", f"i{n}", "view", T + n) for n in range(100)]
    split = split_log(log(tmp_path, *rows), "leave-last-out", history_kept=5)
    assert [i.item_id for i in split.histories["u"]] == ["i98", "i97", "i96", "i95", "i94"]


def test_time_split_scores_new_items_after_the_cut(tmp_path: Path) -> None:
    path = log(
        tmp_path,
        *[("u", f"old{n}", "view", T + n) for n in range(8)],
        ("u", "old0", "view", T + 100),  # met before: not a target
        ("u", "new", "view", T + 101),
        ("cold", "z", "view", T + 102),  # no training event: scored from the fallback
    )
    split = split_log(path, "time:0.8", history_kept=50)
    assert split.targets == {"u": frozenset({"new"}), "cold": frozenset({"z"})}
    assert "cold" not in split.histories
    assert split.train_events == 8
    assert all(row[3] < T + 100 for row in split.train_rows)


@pytest.mark.parametrize("text", ["time", "time:1", "time:0", "time:x", "random", "last"])
def test_unknown_splits_are_refused(text: str) -> None:
    with pytest.raises(EvaluationInputError, match="leave-last-out or time:F"):
        parse_split(text)


def test_a_log_where_no_user_has_two_events_is_refused(tmp_path: Path) -> None:
    path = log(tmp_path, ("u", "a", "view", T), ("v", "b", "view", T))
    with pytest.raises(EvaluationInputError, match="no user has two events"):
        split_log(path, "leave-last-out", history_kept=50)

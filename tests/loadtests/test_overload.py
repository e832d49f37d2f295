"""loadtests.overload: what the overload stage counts, on answers made up here."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadtests import overload
from loadtests.overload import Answer


def test_goodput_counts_only_the_200s_answered_while_the_overload_lasted() -> None:
    answers = [
        Answer(0.0, 200, 0.01),
        Answer(1.0, 200, 0.5),
        Answer(1.9, 200, 0.5),  # answered at 2.4 s, after a 2 s overload: not goodput
        Answer(0.5, 503, 0.002),
        Answer(0.6, 503, 0.004),
        Answer(0.7, 0, 30.0),  # no answer
        Answer(0.8, 500, 0.01),
        Answer(0.9, 200, 0.01, degraded=True),  # served without a dependency: not goodput
    ]
    s = overload._summary(answers, seconds=2.0, knee=2.0)
    assert s["offered"] == 4.0 and s["goodput"] == 1.0 and s["goodput_of_knee"] == 0.5
    assert s["degraded_share"] == 0.25
    assert s["shed_share"] == 0.25 and s["shed_p99_ms"] == 4.0
    assert s["ok_p99_ms"] == 500.0 and s["no_answer"] == 1 and s["other_status"] == 1


def test_recovery_is_the_first_half_second_whose_p99_is_back_to_normal() -> None:
    slow = [Answer(t / 10, 200, 0.2) for t in range(10)]  # the first second: 200 ms
    fast = [Answer(1 + t / 10, 200, 0.01) for t in range(10)]
    assert overload._recovery_s(slow + fast, normal_p99=0.01) == 1.0
    assert overload._recovery_s(slow, normal_p99=0.01) == float("inf")
    refused = [Answer(t / 10, 503, 0.001) for t in range(5)] + fast  # a 503 is not recovered
    assert overload._recovery_s(refused, normal_p99=0.01) == 1.0


def test_an_unknown_mode_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        overload.main(["--modes", "embedded,cloud"])
    assert exit_.value.code == 2 and "unknown cloud" in capsys.readouterr().err


def test_a_closed_loop_without_a_whole_answer_stops_the_stage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A remote service whose DynamoDB lost the demo answers every feed degraded, and fast.
    def attack(
        targets: Path, seconds: float, rate: float | None, folder: Path, in_flight: int = 32
    ) -> list[Answer]:
        return [Answer(0.0, 200, 0.001, degraded=True), Answer(0.1, 503, 0.001)]

    monkeypatch.setattr(overload, "attack", attack)
    with pytest.raises(SystemExit, match="no whole 200 in the closed loop"):
        overload._endpoint_rows("remote", "http://x", "feed", 1.0, tmp_path)

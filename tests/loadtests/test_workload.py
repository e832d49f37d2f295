"""The bench's request stream: attacks on one targets file continue each other."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadtests.bench import workload


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def test_the_stream_starts_at_the_file_and_rotates_as_it_advances(tmp_path: Path) -> None:
    targets = tmp_path / "feed.jsonl"
    targets.write_text("a\nb\nc\nd\n")
    stream = workload.TargetStream(targets)
    assert stream.next_file() == targets
    stream.advance(3)
    assert lines(stream.next_file()) == ["d", "a", "b", "c"]
    stream.advance(6)  # past the end: it wraps, as vegeta cycles through the file
    assert lines(stream.next_file()) == ["b", "c", "d", "a"]
    stream.advance(3)
    assert stream.next_file() == targets
    assert lines(targets) == ["a", "b", "c", "d"]  # the drawn file itself is never rewritten


def test_an_empty_targets_file_is_refused(tmp_path: Path) -> None:
    targets = tmp_path / "feed.jsonl"
    targets.write_text("\n")
    with pytest.raises(ValueError, match="no targets"):
        workload.TargetStream(targets)

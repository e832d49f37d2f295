"""`recs evaluate` as a user runs it: a table or JSON, baselines beside the feed, clear
refusals of input it cannot score. In process (`main`), on small generated files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.cli.main import main
from app.offline.demo import generate_demo
from app.offline.formats import write_interactions, write_neighbours

T = 1_700_000_000_000


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("demo")
    generate_demo(path, items=1500, users=250, seed=4)
    return path


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_table_puts_the_feed_beside_the_popularity_baseline(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(
        ["evaluate", str(demo / "interactions.csv.gz"), "--catalog", str(demo / "catalog.jsonl"),
         "--build"],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    assert "leave-last-out, " in out
    header = next(line for line in out.splitlines() if line.startswith("method"))
    assert header.split()[:4] == ["method", "hr@10", "ndcg@10", "mrr@10"]
    assert "hr@20" in header and "cov@10" in header
    rows: dict[str, list[str]] = {}
    for line in out.splitlines()[out.splitlines().index(header) + 1 :]:
        rows.setdefault(line.split()[0], line.split())
    assert set(rows) >= {"feed", "popular"}
    assert float(rows["feed"][1]) > float(rows["popular"][1]) > 0
    assert "feed hr@10 / popular: " in out


def test_json_with_the_mf_baseline_and_a_time_split(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(
        ["evaluate", str(demo / "interactions.csv.gz"), "--build", "--split", "time:0.9",
         "--k", "5,10", "--mf", "als", "--mf-factors", "8", "--json"],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    report = json.loads(out)
    assert report["split"] == "time:0.9"
    assert report["ks"] == [5, 10]
    methods = {m["name"]: m for m in report["methods"]}
    assert list(methods) == ["feed", "popular", "mf:als"]
    for method in methods.values():
        assert set(method["metrics"]["10"]) == {"hr", "ndcg", "mrr", "precision", "recall"}
        assert 0 <= method["coverage"]["10"] <= 1
    assert 0 < methods["feed"]["from_history"] <= 1
    assert methods["popular"]["from_history"] is None


def test_given_model_files_are_scored_as_they_are(
    demo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(
        ["evaluate", str(demo / "interactions.csv.gz"), "--neighbours",
         str(demo / "neighbours.csv.gz"), "--popular", str(demo / "popular.csv"), "--json"],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["methods"][0]["name"] == "feed"


@pytest.mark.parametrize(
    ("make_args", "message"),
    [
        (
            lambda d, t: [str(t / "one-each.csv"), "--build"],
            "no user has two events",
        ),
        (
            lambda d, t: [
                str(d / "interactions.csv.gz"),
                "--neighbours",
                str(t / "other.csv"),
                "--popular",
                str(d / "popular.csv"),
            ],
            "share no item",
        ),
        (lambda d, t: [str(d / "interactions.csv.gz")], "give --neighbours and --popular"),
        (lambda d, t: [str(d / "interactions.csv.gz"), "--build", "--k", "0"], "--k"),
        (lambda d, t: [str(d / "interactions.csv.gz"), "--build", "--split", "time:2"], "time:F"),
    ],
    ids=["no-repeat-user", "foreign-model", "no-model", "bad-k", "bad-split"],
)
def test_input_it_cannot_score_gets_a_clear_message_and_a_non_zero_exit(
    demo: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    make_args: object,
    message: str,
) -> None:
    write_interactions(tmp_path / "one-each.csv", [("u", "a", "view", T), ("v", "b", "view", T)])
    write_neighbours(tmp_path / "other.csv", [("x1", "x2", 1.0), ("x2", "x1", 1.0)])
    code, out, err = run(["evaluate", *make_args(demo, tmp_path)], capsys)  # type: ignore[operator]
    assert code != 0
    assert out == ""
    assert err.startswith("error: ") and message in err

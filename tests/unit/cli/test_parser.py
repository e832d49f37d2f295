"""The `recs` command line's parser: every subcommand documents itself, bad usage exits 2.

Nothing here connects anywhere: `--help` and usage errors end in argparse, before the
settings are read. docs/data.md describes these commands; the table below is what it promises.
"""

from __future__ import annotations

import re

import pytest

from app.cli.main import main

# Every leaf subcommand and the arguments its --help must mention.
SUBCOMMANDS: dict[tuple[str, ...], tuple[str, ...]] = {
    ("schema", "apply"): (),
    ("load", "neighbours"): (
        "file",
        "--top-k",
        "--skip-invalid",
        "--no-activate",
        "--version",
        "--quiet",
        "--gate",
        "--tolerance",
    ),
    ("load", "popular"): (
        "file",
        "--top-n",
        "--skip-invalid",
        "--no-activate",
        "--version",
        "--quiet",
    ),
    ("load", "embeddings"): ("file", "--no-activate", "--version"),
    ("load", "catalog"): ("file", "--skip-invalid"),
    ("load", "interactions"): ("file", "--skip-invalid", "--force"),
    ("versions", "list"): ("neighbours", "popular", "embeddings"),
    ("versions", "activate"): (
        "neighbours",
        "popular",
        "embeddings",
        "version",
        "--gate",
        "--tolerance",
    ),
    ("versions", "rollback"): ("neighbours", "popular", "embeddings"),
    ("build", "neighbours"): (
        "interactions",
        "out",
        "--method",
        "--top-k",
        "--window",
        "--window-decay",
        "--alpha",
        "--session-gap-minutes",
        "--half-life-days",
        "--factors",
        "--skip-invalid",
    ),
    ("build", "embeddings"): ("interactions", "out", "--method", "--factors", "--skip-invalid"),
    ("build", "popular"): (
        "interactions",
        "catalog",
        "out",
        "--top-n",
        "--half-life-days",
        "--skip-invalid",
    ),
    ("demo", "generate"): ("--out", "--items", "--users", "--seed"),
    ("demo", "ensure"): ("--out", "--items", "--users", "--seed"),
    ("demo", "load"): ("--data",),
    ("evaluate",): (
        "interactions",
        "--catalog",
        "--neighbours",
        "--popular",
        "--build",
        "--split",
        "--k",
        "--mf",
        "--json",
        "--method",
        "--window",
        "--embeddings",
        "--build-embeddings",
    ),
}
# Commands with actions (`recs load neighbours`), and commands that are leaves themselves.
GROUPS = sorted({command[0] for command in SUBCOMMANDS if len(command) == 2})
LEAVES = sorted(command[0] for command in SUBCOMMANDS if len(command) == 1)


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """`recs argv` in process: (exit code, stdout, stderr)."""
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def choices(error: str) -> list[str]:
    """The choices argparse lists in "invalid choice: 'x' (choose from 'a', 'b')"."""
    match = re.search(r"\(choose from (.*)\)", error)
    assert match is not None, error
    return re.findall(r"'([^']+)'", match[1])


def test_top_level_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["--help"], capsys)
    assert code == 0
    assert out.startswith("usage: recs")
    for group in GROUPS + LEAVES:
        assert re.search(rf"^\s+{group}\s", out, re.MULTILINE), f"{group} missing from:\n{out}"


def test_the_commands_are_exactly_the_documented_ones(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["no-such-command"], capsys)
    assert code == 2
    assert sorted(choices(err)) == sorted(GROUPS + LEAVES)
    for group in GROUPS:
        code, _, err = run([group, "no-such-action"], capsys)
        assert code == 2
        documented = sorted(command[1] for command in SUBCOMMANDS if command[0] == group)
        assert sorted(choices(err)) == documented, group


@pytest.mark.parametrize("group", GROUPS)
def test_each_group_answers_help(group: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run([group, "--help"], capsys)
    assert code == 0
    assert out.startswith(f"usage: recs {group}")
    for command in SUBCOMMANDS:
        if command[0] == group and len(command) == 2:
            action = command[1]
            assert re.search(rf"^\s+{action}\b", out, re.MULTILINE), f"{action} missing:\n{out}"


@pytest.mark.parametrize(
    ("command", "arguments"),
    list(SUBCOMMANDS.items()),
    ids=[" ".join(command) for command in SUBCOMMANDS],
)
def test_each_subcommand_answers_help_and_mentions_its_arguments(
    command: tuple[str, ...], arguments: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run([*command, "--help"], capsys)
    assert code == 0, err
    assert out.startswith(f"usage: recs {' '.join(command)}")
    for argument in arguments:
        assert re.search(rf"(?<![\w-]){re.escape(argument)}(?![\w-])", out), (
            f"`recs {' '.join(command)} --help` does not mention {argument}:\n{out}"
        )


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["schema"],
        ["load"],
        ["versions"],
        ["build"],
        ["demo"],
    ],
    ids=lambda argv: " ".join(["recs", *argv]),
)
def test_a_command_without_its_action_prints_help_and_exits_2(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(argv, capsys)
    assert code == 2
    assert "usage: recs" in out


@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        (["load", "neighbours"], "the following arguments are required: file"),
        (["load", "popular", "p.csv", "--top-n", "many"], "invalid int value: 'many'"),
        (["load", "neighbours", "n.csv", "--top-k"], "expected one argument"),
        (["load", "interactions", "i.csv", "--activate"], "unrecognized arguments: --activate"),
        (["load", "catalog", "a.jsonl", "b.jsonl"], "unrecognized arguments: b.jsonl"),
        (["versions", "list", "bananas"], "invalid choice: 'bananas'"),
        (["versions", "activate", "neighbours"], "required: version"),
        (["versions", "rollback"], "required: model"),
        (["build", "popular", "i.csv", "c.jsonl"], "required: out"),
        (["build", "neighbours", "i.csv", "o.csv", "--half-life-days", "x"], "invalid float"),
        (["demo", "generate", "--items", "lots"], "invalid int value: 'lots'"),
        (["demo", "load", "data/demo"], "unrecognized arguments: data/demo"),
        (["evaluate"], "the following arguments are required: interactions"),
        (["evaluate", "i.csv", "--mf", "svd"], "invalid choice: 'svd'"),
        (["build", "neighbours", "i.csv", "o.csv", "--method", "lda"], "invalid choice: 'lda'"),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else None,
)
def test_bad_usage_exits_2_and_says_why(
    argv: list[str], complaint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(argv, capsys)
    assert code == 2
    assert out == ""
    # argparse: unrecognized arguments are reported with the top-level usage line.
    assert "usage: recs" in err
    assert complaint in err

"""app.domain: the id and label rules every reader and route applies."""

from __future__ import annotations

import pytest

from app.domain import is_valid_label


@pytest.mark.parametrize("label", ["bikes", "Children's", "Île-de-France", "a b", "x" * 128])
def test_labels_in_any_script_are_valid(label: str) -> None:
    assert is_valid_label(label)


@pytest.mark.parametrize(
    "label",
    [
        "",
        " ",
        "x" * 129,
        "bikes\n",  # a trailing newline once passed: `$` matches before it
        "a\tb",
        "a\x85b",
        "\ud800",
    ],
)
def test_empty_blank_long_and_control_labels_are_not(label: str) -> None:
    assert not is_valid_label(label)

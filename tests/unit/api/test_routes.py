import re

import pytest

from app.api.errors import ApiError
from app.api.routes import parse_exclude
from app.config import Settings
from app.main import create_app


def test_parse_exclude_accepts_ids_and_nothing_and_ignores_empty_parts() -> None:
    assert parse_exclude(None, 3) == frozenset()
    assert parse_exclude("", 3) == frozenset()
    assert parse_exclude("a,b.c,d:e", 3) == {"a", "b.c", "d:e"}
    assert parse_exclude(",a,,b,", 3) == {"a", "b"}


@pytest.mark.parametrize(
    ("raw", "code"),
    [("a b", "invalid_exclude"), ("x" * 65, "invalid_exclude"), ("a,..", "invalid_exclude"),
     ("a,b,c,d", "too_many_excludes"), ("a,,b,,c,d", "too_many_excludes")],
)  # fmt: skip
def test_parse_exclude_refuses_what_the_documented_pattern_refuses(raw: str, code: str) -> None:
    with pytest.raises(ApiError) as caught:
        parse_exclude(raw, 3)
    assert caught.value.code == code


def test_documented_exclude_pattern_agrees_with_the_parser() -> None:
    document = create_app(
        Settings.from_env({"RECS_MAX_EXCLUDE": "3", "RECS_CURSOR_SECRET": "s"})
    ).openapi()
    parameters = document["paths"]["/v1/items/{item_id}/similar"]["get"]["parameters"]
    pattern = re.compile(next(p for p in parameters if p["name"] == "exclude")["schema"]["pattern"])
    for raw in ["", "a", "a,b,c", "a,,b", "a,", ",", "a b", "x" * 65, "a,b,c,d", ".", "a,.."]:
        try:
            parse_exclude(raw, 3)
            accepted = True
        except ApiError:
            accepted = False
        assert accepted == bool(pattern.fullmatch(raw)), raw

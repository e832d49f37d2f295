"""The recipes behind docs/performance.md: each one imports and parses its options (so a change
to loadtests/bench that breaks one shows here), and their pure parts do what they say."""

from __future__ import annotations

import base64
import importlib
import json
from pathlib import Path

import pytest

from loadtests.recipes import dynamo_query, feed_parts

RECIPES = (
    "asgi_cpu",
    "catalog_cache",
    "catalog_client",
    "dynamo_query",
    "embedded_ab",
    "feed_parts",
    "fixed_rate",
    "gclog",
    "refusal_cost",
    "stages",
    "target_ab",
)


@pytest.mark.parametrize("name", RECIPES)
def test_a_recipe_says_what_it_measures(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    recipe = importlib.import_module(f"loadtests.recipes.{name}")
    assert recipe.__doc__
    with pytest.raises(SystemExit) as exit_:
        recipe.main(["--help"])
    assert exit_.value.code == 0
    assert f"python -m loadtests.recipes.{name}" in capsys.readouterr().out


def test_py_spy_samples_go_to_the_innermost_frame_that_names_an_area(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = tmp_path / "query.txt"
    raw.write_text(
        "main (x.py:1);Runner.run (asyncio/runners.py:1);recent (app/sources/dynamo.py:9);"
        "sign (botocore/signers.py:3) 3\n"
        "main (x.py:1);Runner.run (asyncio/runners.py:1);recent (app/sources/dynamo.py:9) 1\n"
        "main (x.py:1);_find_and_load (importlib/_bootstrap.py:1) 6\n"
    )
    dynamo_query.areas(raw)
    out = capsys.readouterr().out
    assert " 75.0 % signing" in out
    assert " 25.0 % the service's code" in out
    assert "(4 samples)" in out


def test_the_query_posted_alone_is_the_feeds_query() -> None:
    target = json.loads(
        feed_parts.query_target(
            "user-7", endpoint="http://127.0.0.1:8600", table="events", limit=100
        )
    )
    assert target["url"] == "http://127.0.0.1:8600/"
    assert target["header"]["X-Amz-Target"] == ["DynamoDB_20120810.Query"]
    body = json.loads(base64.b64decode(target["body"]))
    assert body["ExpressionAttributeValues"] == {":u": {"S": "user-7"}}
    assert (body["TableName"], body["Limit"], body["ConsistentRead"]) == ("events", 100, True)

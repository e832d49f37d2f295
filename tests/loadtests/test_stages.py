"""`python -m loadtests.recipes.stages`: the feed's stages, timed in-process against the stack."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app import recommender as recommender_module
from app.config import Settings
from loadtests.recipes import stages
from tests.support import REPO

pytestmark = pytest.mark.integration


async def test_every_stage_of_a_feed_request_is_timed(loaded_env: dict[str, str]) -> None:
    core = {name: getattr(recommender_module, name) for name in stages.CORE_STAGES}
    result = await stages.measure(Settings.from_env(loaded_env), calls=40, users=400)

    timed = result["stages"]
    # One DynamoDB read and at least one catalog lookup per feed request; the warm-up
    # before the timed requests read every user's neighbour lists once.
    assert timed["_recent"]["calls_per_request"] == 1.0
    assert timed["_catalog_items"]["calls_per_request"] >= 1.0
    assert {"score_candidates", "top_candidates", "add_candidates", "_items"} <= set(timed)
    assert all(stage["us_per_request"] > 0 for stage in timed.values())
    # Stages run inside the request, one request at a time: together they fit in its wall.
    assert sum(stage["us_per_request"] for stage in timed.values()) <= result["wall_us_per_request"]
    assert result["cpu_us_per_request"] > 0
    # The pure core's functions are the recommender's own again afterwards.
    assert {name: getattr(recommender_module, name) for name in stages.CORE_STAGES} == core


def test_the_command_prints_the_stages_and_writes_json(
    loaded_env: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "stages.json"
    command = [
        "-m",
        "loadtests.recipes.stages",
        "--calls",
        "20",
        "--users",
        "400",
        "--out",
        str(out),
    ]
    run = subprocess.run(
        [sys.executable, *command],
        env={**os.environ, **loaded_env},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "feed, 20 requests one at a time" in run.stdout and "_recent" in run.stdout
    assert out.exists() and '"stages"' in out.read_text()

"""scripts/tools.py: where the tools and the download cache are."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from scripts import tools


def test_the_cache_is_recs_cache_dir_or_the_home_default() -> None:
    default = Path.home() / ".cache" / "recs"

    assert tools.cache_dir({}) == default
    assert tools.cache_dir({"RECS_CACHE_DIR": ""}) == default
    assert tools.cache_dir({"RECS_CACHE_DIR": "/srv/cache"}) == Path("/srv/cache")


def test_go_tools_live_in_the_cache_and_python_tools_in_the_virtualenv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECS_CACHE_DIR", str(tmp_path))

    assert tools.path("vegeta") == tmp_path / "bin" / "vegeta"
    assert tools.path("kustomize") == tmp_path / "bin" / "kustomize"
    assert tools.path("py-spy") == Path(sys.executable).parent / "py-spy"


def test_a_missing_go_tool_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECS_CACHE_DIR", str(tmp_path))

    with pytest.raises(LookupError, match=r"vegeta is not installed at .*: run `make tools`"):
        tools.require("vegeta")


def test_every_go_tool_has_a_pinned_version() -> None:
    for name in tools.GO_TOOLS:
        assert re.fullmatch(r"v\d+\.\d+\.\d+", tools.pinned_version(name)), name
    with pytest.raises(LookupError):
        tools.pinned_version("no-such-tool")

"""The Dockerfile: lint-clean, locked runtime dependencies only, and a runtime stage that matches
the app and the manifests. Nothing is built (no Docker engine needed)."""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from collections.abc import Callable

import pytest
from packaging.specifiers import SpecifierSet

from app.config import Settings
from scripts import tools
from tests.deploy._dockerfile import Stage, image_tag
from tests.deploy._manifests import REPO, Manifests

DOCKERFILE = REPO / "Dockerfile"
PYTHON_TAG = re.compile(r"(?P<version>3\.\d+\.\d+)-slim-bookworm")
# What must never reach the build context (.dockerignore).
NEVER_IN_CONTEXT = {".git", ".venv", ".stack", "data", "reports", "tests", "loadtests", "k8s"}


def _hadolint() -> str:
    try:
        return str(tools.require("hadolint"))
    except tools.ToolMissing as exc:
        pytest.fail(f"{exc} (a dev dependency)")


def _uv_syncs(stage: Stage) -> list[str]:
    return [i.args for i in stage.all("RUN") if "uv sync" in i.args]


def _stage_using_uv(stages: list[Stage]) -> Stage:
    found = [stage for stage in stages if _uv_syncs(stage)]
    assert len(found) == 1, "expected one build stage running `uv sync`"
    return found[0]


def _copy_sources(instruction_args: str) -> list[str]:
    words = [w for w in instruction_args.split() if not w.startswith("--")]
    return words[:-1]


# --- Lint -----------------------------------------------------------------------------------


def test_hadolint_reports_no_errors() -> None:
    out = subprocess.run(
        [_hadolint(), "--no-color", "--failure-threshold", "error", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_hadolint_reports_no_warnings_either() -> None:
    out = subprocess.run(
        [_hadolint(), "--no-color", "--format", "json", "--no-fail", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    findings = json.loads(out.stdout or "[]")
    serious = [f for f in findings if f["level"] in ("error", "warning")]
    assert not serious, "\n".join(f"{f['line']}: {f['code']} {f['message']}" for f in serious)


# --- Build stage ----------------------------------------------------------------------------


def test_images_are_pinned_and_python_matches_requires_python(stages: list[Stage]) -> None:
    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    python_images = {stage.image for stage in stages if image_tag(stage.image)[0] == "python"}
    assert len(python_images) == 1, (
        f"build and runtime must use the same Python image (the venv links to its interpreter):"
        f" {python_images}"
    )
    (image,) = python_images
    match = PYTHON_TAG.fullmatch(image_tag(image)[1])
    assert match, f"{image}: expected python:3.X.Y-slim-bookworm (a precise patch version)"
    assert SpecifierSet(requires).contains(match["version"]), (
        f"{image} is Python {match['version']}, pyproject requires-python is {requires}"
    )
    for stage in stages:
        tag = image_tag(stage.image)[1]
        assert tag and tag != "latest", f"{stage.image}: pin a version"


def test_uv_image_is_the_makefiles_uv(stages: list[Stage]) -> None:
    makefile = (REPO / "Makefile").read_text()
    match = re.search(r"^UV_VERSION\s*:?=\s*(\S+)", makefile, re.MULTILINE)
    assert match, "UV_VERSION not found in the Makefile"
    uv_images = [s.image for s in stages if image_tag(s.image)[0] == "ghcr.io/astral-sh/uv"]
    assert uv_images == [f"ghcr.io/astral-sh/uv:{match[1]}"], uv_images


def test_build_installs_the_locked_runtime_dependencies_only(stages: list[Stage]) -> None:
    build = _stage_using_uv(stages)
    syncs = _uv_syncs(build)
    for args in syncs:
        for flag in ("--frozen", "--no-dev", "--no-default-groups"):
            assert flag in args.split(), f"`{args}` lacks {flag}"
    assert "--no-install-project" in syncs[0].split(), "dependencies first, in their own layer"
    assert "--no-install-project" not in syncs[-1].split(), "then the project"
    assert "--no-editable" in syncs[-1].split(), "the venv must not point back at /src"
    env = build.env()
    assert env.get("UV_COMPILE_BYTECODE") == "1" and env.get("UV_LINK_MODE") == "copy"


# --- Runtime stage --------------------------------------------------------------------------


def test_runtime_stage_carries_only_the_venv(stages: list[Stage], final_stage: Stage) -> None:
    build = _stage_using_uv(stages)
    assert final_stage is not build, "the runtime stage must not be the one with uv"
    for copy in final_stage.all("COPY") + final_stage.all("ADD"):
        source_stage = copy.flags().get("from")
        assert source_stage == build.name, f"COPY {copy.args}: copy from the build stage only"
        assert _copy_sources(copy.args) == [build.env()["UV_PROJECT_ENVIRONMENT"]], copy.args
    for run in final_stage.all("RUN"):
        words = set(re.split(r"[\s;&|]+", run.args))
        assert not words & {"uv", "pip", "apt-get", "apt", "gcc", "make"}, run.args


def test_runtime_user_is_numeric_and_not_root(final_stage: Stage) -> None:
    user = final_stage.last("USER")
    assert user is not None, "no USER: the container would run as root"
    assert re.fullmatch(r"\d+(:\d+)?", user.args), f"USER {user.args}: use numeric uid:gid"
    assert all(int(part) > 0 for part in user.args.split(":")), "uid/gid 0 is root"


def test_runtime_user_is_the_pods_user(final_stage: Stage, manifests: Manifests) -> None:
    user = final_stage.last("USER")
    assert user is not None
    uid, _, gid = user.args.partition(":")
    security = manifests.pod["securityContext"]
    assert (security["runAsUser"], security["runAsGroup"]) == (int(uid), int(gid or uid))


def test_cmd_runs_one_uvicorn_process_in_exec_form(final_stage: Stage) -> None:
    assert final_stage.last("ENTRYPOINT") is None, "an ENTRYPOINT would wrap the CMD"
    cmd = final_stage.last("CMD")
    assert cmd is not None and cmd.exec_form() == ["python", "-m", "app"], (
        "exec form, so python is PID 1 and gets SIGTERM itself"
    )
    stop = final_stage.last("STOPSIGNAL")
    assert stop is not None and stop.args == "SIGTERM"


def test_expose_is_the_app_port(final_stage: Stage, defaults: Settings) -> None:
    expose = final_stage.last("EXPOSE")
    assert expose is not None and expose.args in (str(defaults.port), f"{defaults.port}/tcp")


def test_runtime_environment(final_stage: Stage) -> None:
    env = final_stage.env()
    assert env.get("RECS_HOST") == "0.0.0.0", "in a container uvicorn must bind all interfaces"
    assert env.get("PYTHONDONTWRITEBYTECODE") == "1" and env.get("PYTHONUNBUFFERED") == "1"
    assert env["PATH"].startswith("/opt/venv/bin:")
    unknown = [k for k in env if k.startswith("RECS_") and k not in {"RECS_HOST"}]
    assert not unknown, f"settings belong in the ConfigMap, not the image: {unknown}"


def test_healthcheck_asks_healthz_with_the_standard_library(
    final_stage: Stage, serves_get: Callable[[str], bool]
) -> None:
    healthcheck = final_stage.last("HEALTHCHECK")
    assert healthcheck is not None
    _, _, command = healthcheck.args.partition("CMD ")
    argv = json.loads(command)
    assert argv[:2] == ["python", "-c"] and "urllib.request" in argv[2], argv
    assert "/healthz" in argv[2] and serves_get("/healthz")


# --- Build context --------------------------------------------------------------------------


def test_dockerignore_lets_in_only_what_the_build_copies(stages: list[Stage]) -> None:
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    assert patterns[0] == "*", "start from nothing, then allow what the build needs"
    allowed = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    copied = {
        source.rstrip("/")
        for stage in stages
        for copy in stage.all("COPY")
        if "from" not in copy.flags()
        for source in _copy_sources(copy.args)
        if source not in (".", "./")
    }
    assert allowed == copied, f".dockerignore allows {allowed}, the Dockerfile copies {copied}"
    assert not allowed & NEVER_IN_CONTEXT

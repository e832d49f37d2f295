"""Fixtures of the deployment tests: the rendered overlays, the Dockerfile, the app's routes.

Nothing here needs a cluster, Docker or the network. kustomize comes from scripts/tools.sh
(`make test` runs it first); when it is missing the tests fail, they never skip.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from starlette.routing import Match

from app.config import Settings
from app.main import create_app
from tests.deploy import _dockerfile
from tests.deploy._manifests import OVERLAYS, REPO, Manifests, kustomize_binary, render


@pytest.fixture(scope="session")
def kustomize() -> Path:
    try:
        return kustomize_binary()
    except LookupError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def rendered(kustomize: Path) -> dict[str, Manifests]:
    out: dict[str, Manifests] = {}
    for overlay in OVERLAYS:
        try:
            out[overlay] = Manifests(overlay, render(kustomize, overlay))
        except RuntimeError as exc:
            pytest.fail(str(exc), pytrace=False)
    return out


@pytest.fixture(params=OVERLAYS)
def manifests(request: pytest.FixtureRequest, rendered: dict[str, Manifests]) -> Manifests:
    return rendered[request.param]


@pytest.fixture(scope="session")
def prod(rendered: dict[str, Manifests]) -> Manifests:
    return rendered["prod"]


@pytest.fixture(scope="session")
def dev(rendered: dict[str, Manifests]) -> Manifests:
    return rendered["dev"]


@pytest.fixture(scope="session")
def defaults() -> Settings:
    return Settings.from_env({"RECS_CURSOR_SECRET": "deploy-test-secret"})


@pytest.fixture(scope="session")
def serves_get(defaults: Settings) -> Callable[[str], bool]:
    """`serves_get(path)`: whether the app (as `python -m app` builds it) answers GET path."""
    app = create_app(defaults)

    def matches(path: str) -> bool:
        scope = {"type": "http", "method": "GET", "path": path, "root_path": ""}
        return any(route.matches(scope)[0] == Match.FULL for route in app.routes)

    def serves(path: str) -> bool:
        # A mounted ASGI app (`app.mount("/metrics", make_asgi_app())`) matches "/metrics/";
        # the router redirects "/metrics" there, and Prometheus and probes follow redirects.
        return matches(path) or (app.router.redirect_slashes and matches(path + "/"))

    return serves


@pytest.fixture(scope="session")
def stages() -> list[_dockerfile.Stage]:
    return _dockerfile.parse(REPO / "Dockerfile")


@pytest.fixture(scope="session")
def final_stage(stages: list[_dockerfile.Stage]) -> _dockerfile.Stage:
    return stages[-1]

"""The local stack (scripts/stack.py) and the demo data the benchmark runs against.

The stack is reused when all its servers answer, started otherwise (unless `start` is false),
never stopped here. The demo counts as loaded when the active neighbour and popular versions
are those `recs demo load` would publish, the catalog holds its items and DynamoDB has
`user-1`'s interactions; otherwise `recs demo load` runs (it skips what is there).
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path

from app.config import Settings
from scripts import procs, stack

REPO = Path(__file__).resolve().parents[2]
# `recs load neighbours|popular` defaults: the version id depends on them.
NEIGHBOURS_TOP_K = 50
POPULAR_TOP_N = 500


class SetupError(RuntimeError):
    """The stack or the data is not usable, and was not to be fixed here."""


def ensure_stack(*, start: bool, say: Callable[[str], None]) -> dict[str, str]:
    """The client environment of a ready stack (started first when allowed)."""
    down = [s.server for s in stack.status() if s.pid is None or not s.ready]
    if down:
        if not start:
            raise SetupError(
                f"the local stack is not up ({', '.join(down)} down): run `make stack-up`"
            )
        say(f"stack: {', '.join(down)} down, starting it (scripts/stack.py up)")
        stack.up(report=False)
    else:
        say("stack: up, reused")
    env: dict[str, str] = stack.client_env()
    return env


def _recs(env: dict[str, str], *args: str) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "app.cli.main", *args],
        env={**procs.env_without_settings(), **env},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if run.returncode != 0:
        raise SetupError(f"recs {' '.join(args)} failed:\n{run.stderr[-3000:]}")


def _one(data: Path, name: str) -> Path:
    for candidate in (data / name, data / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    raise SetupError(f"{data}: no {name} or {name}.gz")


def ensure_data(data: Path, env: dict[str, str], *, load: bool, say: Callable[[str], None]) -> str:
    """Make sure `data` exists and (when `load`) is what the stack serves; says what it did."""
    if not (data / "manifest.json").is_file():
        say(f"data: generating the demo into {data} (recs demo ensure)")
        _recs(env, "demo", "ensure", "--out", str(data))
    if not load:
        return "not checked (--skip-load)"
    missing = _not_loaded(data, env)
    if not missing:
        say("data: loaded in the stack, reused")
        return "loaded in the stack, reused"
    say(f"data: {missing}: loading it (recs demo load, a few minutes the first time)")
    _recs(env, "demo", "load", "--data", str(data))
    return f"loaded by this run ({missing})"


def _not_loaded(data: Path, env: dict[str, str]) -> str:
    """What is missing from the stack, or "" when the demo is loaded."""
    from app.publishing import versions
    from app.sources.scylla import connect

    settings = Settings.from_env({**env, "RECS_BACKEND": "remote"})
    manifest = json.loads((data / "manifest.json").read_text())
    expected = {
        "neighbours": versions.content_version(
            "nb", _one(data, "neighbours.csv"), NEIGHBOURS_TOP_K, False
        ),
        "popular": versions.content_version("pop", _one(data, "popular.csv"), POPULAR_TOP_N, False),
    }
    try:
        cluster, session = connect(settings)
    except Exception as exc:
        return f"Scylla unreachable ({exc!r})"
    try:
        for model, version in expected.items():
            try:
                active = versions.active_version(session, settings.scylla_keyspace, model)
            except Exception:
                return f"no {settings.scylla_keyspace} keyspace"
            if active != version:
                return f"active {model} version {active}, not {version}"
    finally:
        cluster.shutdown()
    try:
        with urllib.request.urlopen(f"{settings.catalog_url}/healthz", timeout=5) as answer:
            items = json.loads(answer.read())["items"]
    except Exception as exc:
        return f"catalog unreachable ({exc!r})"
    if items < manifest["counts"]["items"]:
        return f"the catalog holds {items} items, the demo {manifest['counts']['items']}"
    import boto3

    client = boto3.client(
        "dynamodb",
        region_name=settings.dynamodb_region,
        endpoint_url=settings.dynamodb_endpoint_url or None,
        aws_access_key_id=env.get("AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY"),
    )
    try:
        found = client.query(
            TableName=settings.dynamodb_table,
            KeyConditionExpression="user_id = :u",
            ExpressionAttributeValues={":u": {"S": "user-1"}},
            Limit=1,
        )["Items"]
    except Exception as exc:
        return f"no interactions table ({type(exc).__name__})"
    if not found:
        return "no interactions for user-1"
    return ""

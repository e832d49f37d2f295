"""The local stack (scripts/stack.py) and the demo data the benchmark runs against.

The stack is reused when all its servers answer, started otherwise (unless `start` is false),
never stopped here. The data goes in through `recs demo load`, which skips what the stack
already holds (a few seconds when the demo is loaded, a few minutes the first time).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from scripts import procs, stack

REPO = Path(__file__).resolve().parents[2]


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


def ensure_data(data: Path, env: dict[str, str], *, load: bool, say: Callable[[str], None]) -> str:
    """Make sure `data` exists and (when `load`) is what the stack serves; says what it did."""
    if not (data / "manifest.json").is_file():
        say(f"data: generating the demo into {data} (recs demo ensure)")
        _recs(env, "demo", "ensure", "--out", str(data))
    if not load:
        return "not checked (--skip-load)"
    say("data: recs demo load (skips what the stack holds)")
    _recs(env, "demo", "load", "--data", str(data))
    return "loaded in the stack (recs demo load)"


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

"""py-spy of the server under load, reduced to top costs: per function its self samples
(innermost frame) and inclusive samples, and the self samples by area of code.
"""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")

# First match wins: (area, substrings of the frame's file).
AREAS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("bench harness", ("bench/server.py",)),
    ("app: ranking (pure core)", ("app/ranking/",)),
    ("app: recommender", ("app/recommender.py",)),
    ("app: caches", ("app/sources/cache.py",)),
    ("app: sources (scylla, dynamo, catalog clients)", ("app/sources/",)),
    ("app: API, serialization, middleware", ("app/api/",)),
    ("app: observability, resilience", ("app/observability/", "app/resilience.py")),
    ("app: other", ("app/",)),
    ("aiobotocore/botocore (DynamoDB)", ("aiobotocore/", "botocore/", "aioboto3/")),
    ("cassandra driver (Scylla)", ("cassandra/",)),
    ("httpx/aiohttp (catalog)", ("httpx/", "httpx_aiohttp/", "aiohttp/", "httpcore/", "yarl/")),
    ("FastAPI/Starlette/Pydantic", ("fastapi/", "starlette/", "pydantic/", "pydantic_core/")),
    ("uvicorn/httptools", ("uvicorn/", "httptools/")),
    ("prometheus_client", ("prometheus_client/",)),
    ("asyncio/uvloop", ("asyncio/", "uvloop/")),
    ("concurrent.futures/threading", ("concurrent/", "threading.py", "queue.py")),
)


def area_of(file: str) -> str:
    for area, needles in AREAS:
        if any(needle in file for needle in needles):
            return area
    return "other (stdlib, ...)"


@dataclass(frozen=True)
class Profile:
    samples: int
    self_by_function: list[tuple[str, int]]
    inclusive_by_function: list[tuple[str, int]]  # below the request's wrapping chain
    areas: list[tuple[str, int]]
    command: str
    raw_path: str
    app_inclusive: list[tuple[str, int]] = field(default_factory=list)  # app/ functions only


def record(
    py_spy: Path, pid: int, duration_s: float, out: Path, rate: int = 250
) -> tuple[str, Path]:
    """Run py-spy against `pid`; returns the command line for the report (without this
    machine's paths: the output is named in the run's work dir) and the output."""
    argv = [
        str(py_spy),
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(max(1, round(duration_s))),
        "--rate",
        str(rate),
        "--format",
        "raw",
        "--nonblocking",
        "--output",
        str(out),
    ]
    run = subprocess.run(argv, capture_output=True, text=True, timeout=duration_s + 60)
    if run.returncode != 0 or not out.is_file():
        raise RuntimeError(f"py-spy failed ({run.returncode}): {run.stderr[-2000:]}")
    return " ".join(["py-spy", "record", "--pid", "<server pid>", *argv[4:-1], out.name]), out


def _name(frame: str) -> tuple[str, str]:
    match = FRAME.match(frame.strip())
    if not match:
        return frame.strip(), ""
    file = match.group("file")
    return f"{match.group('function')} ({file})", file


def analyse(raw: Path, command: str, top: int = 25) -> Profile:
    self_counts: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    areas: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [_name(frame) for frame in stack.split(";") if frame]
        if not frames:
            continue
        leaf, leaf_file = frames[-1]
        self_counts[leaf] += count
        areas[area_of(leaf_file)] += count
        for name in {name for name, _ in frames}:
            inclusive[name] += count
    # The chain every request runs through (uvicorn, middleware, routing) includes everything:
    # leave out what is on the stack of more than half the samples, the recommender excepted.
    inclusive_top = [
        (name, count)
        for name, count in inclusive.most_common()
        if count <= total / 2 or name.startswith("Recommender.")
    ][:top]
    app_top = [
        (name, count)
        for name, count in inclusive.most_common()
        if "(app/" in name and not name.startswith(("main (", "<module>"))
    ][:top]
    return Profile(
        total,
        self_counts.most_common(top),
        inclusive_top,
        areas.most_common(),
        command,
        str(raw),
        app_top,
    )

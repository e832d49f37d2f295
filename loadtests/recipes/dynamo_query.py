"""Where the feed's DynamoDB Query spends the client's CPU, in-process (no server, no load
generator).

    eval "$(.venv/bin/python scripts/stack.py env)"
    python -m loadtests.recipes.dynamo_query loop [--queries 8000]
    .venv/bin/py-spy record -r 500 -f raw -o query.txt -- \\
        .venv/bin/python -m loadtests.recipes.dynamo_query loop
    python -m loadtests.recipes.dynamo_query areas query.txt

`loop` (the stack up and loaded; settings from `RECS_*` as for the service) sends the
Query (`DynamoInteractions.recent`, through `dynamo.connect`'s client) one at a time for
`--queries` users and prints the main thread's CPU per Query and the young GC collections
per 1,000 Queries (CPython's default thresholds: a plain script's). `areas` reads py-spy's
raw stacks of `loop` (the Queries' samples only: start-up and imports left out) and prints
the share of each area, by the innermost frame that names one.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import time
from collections.abc import Sequence
from pathlib import Path

# (area, file or function name fragments), first match wins from the innermost frame out.
AREAS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("parse", ("parsers.py", "_dynamodb_parsing")),
    ("signing", ("signers.py", "auth.py", "hmac.py", "credentials.py")),
    ("endpoint rules", ("regions.py", "endpoint_provider", "_resolve_endpoint")),
    ("validation, serialization", ("validate.py", "serialize.py")),
    ("building the request", ("awsrequest.py", "prepare_request", "email/")),
    ("aiohttp", ("aiohttp/",)),
    ("aiobotocore HTTP session", ("httpsession.py", "_endpoint_helpers")),
    ("retry checks", ("retries/", "retryhandler")),
    ("event hooks", ("hooks.py", "_helpers.py")),
    (
        "call bookkeeping",
        (
            "client.py",
            "endpoint.py",
            "context.py",
            "useragent",
            "config.py",
            "utils.py",
            "model.py",
        ),
    ),
    ("the service's code", ("app/",)),
    ("event loop", ("asyncio/", "selectors", "uvloop")),
)


async def loop(queries: int) -> None:
    from app.config import Settings
    from app.sources import dynamo

    settings = Settings.from_env()
    async with dynamo.connect(settings, max_connections=16, timeout_s=5, max_attempts=1) as client:
        store = dynamo.DynamoInteractions(client, table=settings.dynamodb_table)
        for i in range(200):
            await store.recent(f"user-{i + 1}", settings.history_limit)
        gc.collect()
        young = gc.get_stats()[0]["collections"]
        began = time.thread_time()
        for i in range(queries):
            await store.recent(f"user-{i % 10_000 + 1}", settings.history_limit)
        spent = time.thread_time() - began
        young = gc.get_stats()[0]["collections"] - young
    print(
        f"{spent / queries * 1e6:.0f} µs main-thread CPU per Query, "
        f"{young / queries * 1000:.1f} young collections per 1,000 Queries"
    )


def areas(raw: Path) -> None:
    counts: collections.Counter[str] = collections.Counter()
    total = 0
    for text in raw.read_text().splitlines():
        stack, _, samples = text.rpartition(" ")
        if "Runner.run" not in stack or "importlib" in stack or "__aenter__" in stack:
            continue
        total += int(samples)
        for frame in reversed(stack.split(";")):
            area = next((name for name, keys in AREAS if any(k in frame for k in keys)), None)
            if area:
                counts[area] += int(samples)
                break
        else:
            counts["other"] += int(samples)
    for area, count in counts.most_common():
        print(f"{100 * count / total:5.1f} % {area}")
    print(f"({total} samples)")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m loadtests.recipes.dynamo_query",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("loop", help="Queries one at a time: CPU and young collections")
    run.add_argument("--queries", type=int, default=8000)
    read = commands.add_parser("areas", help="py-spy's raw stacks of `loop`, by area")
    read.add_argument("raw", type=Path)
    args = parser.parse_args(argv)
    if args.command == "loop":
        asyncio.run(loop(args.queries))
    else:
        areas(args.raw)


if __name__ == "__main__":
    main()

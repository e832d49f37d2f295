"""`recs build ...` and `recs demo ...`: offline work on files, plus loading the demo.

recs build neighbours INTERACTIONS OUT     co-occurrence neighbours (CSV)
recs build popular INTERACTIONS CATALOG OUT
recs demo generate [--out DIR]             the seeded demo marketplace
recs demo ensure [--out DIR]               generate it unless it is already there
recs demo load [--data DIR]                schema + all four files into the configured stack
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from app.cli.common import report_skipped
from app.config import Settings

DEFAULT_DEMO_DIR = Path("data/demo")
DAY_MS = 86_400_000


def add_offline_commands(commands: Any) -> None:
    build = commands.add_parser("build", help="build model files from interactions").add_subparsers(
        metavar="KIND"
    )
    neighbours = build.add_parser(
        "neighbours",
        help="item-to-item neighbours from co-occurrence within user sessions",
        description="Streams the interaction log: items consumed together within a session "
        "window become neighbours, weighted by event type and recency, cosine-normalized.",
    )
    neighbours.add_argument("interactions", type=Path, help="interactions CSV[.gz]")
    neighbours.add_argument("out", type=Path, help="neighbours CSV to write (.gz to compress)")
    neighbours.add_argument("--top-k", type=int, default=50, help="neighbours per item")
    neighbours.add_argument(
        "--session-gap-minutes", type=float, default=30, help="a longer pause starts a session"
    )
    neighbours.add_argument(
        "--half-life-days", type=float, default=14, help="recency half-life of a pair's weight"
    )
    neighbours.add_argument("--skip-invalid", action="store_true", help="skip and count bad rows")
    neighbours.set_defaults(handler=_build_neighbours)

    popular = build.add_parser(
        "popular", help="popular lists (global, per category, per region) from interactions"
    )
    popular.add_argument("interactions", type=Path, help="interactions CSV[.gz]")
    popular.add_argument("catalog", type=Path, help="catalog JSONL (categories, regions, active)")
    popular.add_argument("out", type=Path, help="popular CSV to write")
    popular.add_argument("--top-n", type=int, default=200, help="items per segment")
    popular.add_argument("--half-life-days", type=float, default=14, help="recency half-life")
    popular.add_argument("--skip-invalid", action="store_true", help="skip and count bad rows")
    popular.set_defaults(handler=_build_popular)

    demo = commands.add_parser("demo", help="the demo dataset").add_subparsers(metavar="ACTION")
    for name, help_text, handler in (
        ("generate", "generate the seeded demo marketplace (deterministic)", _demo_generate),
        ("ensure", "generate the demo unless DIR already holds it", _demo_ensure),
    ):
        parser = demo.add_parser(name, help=help_text)
        parser.add_argument("--out", type=Path, default=DEFAULT_DEMO_DIR, help="output folder")
        parser.add_argument("--items", type=int, default=50_000)
        parser.add_argument("--users", type=int, default=10_000)
        parser.add_argument("--seed", type=int, default=42)
        parser.set_defaults(handler=handler)
    load = demo.add_parser(
        "load",
        help="apply the schema and load a dataset folder into the configured stack "
        "(neighbours, popular, catalog, interactions)",
    )
    load.add_argument("--data", type=Path, default=DEFAULT_DEMO_DIR, help="dataset folder")
    load.set_defaults(handler=_demo_load)


def _build_neighbours(args: argparse.Namespace, _: Settings) -> int:
    from app.offline.cooccurrence import CooccurrenceConfig, build_neighbours_file
    from app.offline.weighting import Weighting

    config = CooccurrenceConfig(
        k=args.top_k,
        session_gap_ms=int(args.session_gap_minutes * 60_000),
        weighting=Weighting(half_life_ms=args.half_life_days * DAY_MS),
    )
    started = time.perf_counter()
    result = build_neighbours_file(
        args.interactions, args.out, config, skip_invalid=args.skip_invalid
    )
    print(
        f"neighbours: {result.read.rows_ok} interactions -> {result.rows_written} rows in "
        f"{args.out} ({time.perf_counter() - started:.1f} s)"
    )
    report_skipped(args.interactions, result.read)
    return 0


def _build_popular(args: argparse.Namespace, _: Settings) -> int:
    from app.offline.popular import PopularConfig, build_popular_file
    from app.offline.weighting import Weighting

    config = PopularConfig(
        top_n=args.top_n, weighting=Weighting(half_life_ms=args.half_life_days * DAY_MS)
    )
    started = time.perf_counter()
    result = build_popular_file(
        args.interactions, args.catalog, args.out, config, skip_invalid=args.skip_invalid
    )
    print(
        f"popular: {result.rows_written} rows in {args.out} ({time.perf_counter() - started:.1f} s)"
    )
    report_skipped(args.interactions, result.interactions)
    report_skipped(args.catalog, result.catalog)
    return 0


def _demo_generate(args: argparse.Namespace, _: Settings) -> int:
    from app.offline.demo import generate_demo

    manifest = generate_demo(args.out, items=args.items, users=args.users, seed=args.seed)
    files = ", ".join(f"{name} {info['rows']} rows" for name, info in manifest.files.items())
    print(f"demo in {args.out}: {files} ({manifest.timings_s['total']:.1f} s)")
    return 0


def _demo_ensure(args: argparse.Namespace, settings: Settings) -> int:
    manifest = args.out / "manifest.json"
    if manifest.is_file():
        parameters = json.loads(manifest.read_text())["parameters"]
        wanted = {"items": args.items, "users": args.users, "seed": args.seed}
        if all(parameters.get(key) == value for key, value in wanted.items()):
            print(f"demo in {args.out}: present")
            return 0
    return _demo_generate(args, settings)


def _demo_load(args: argparse.Namespace, settings: Settings) -> int:
    from app.cli.main import main as recs

    data: Path = args.data
    steps = [
        ["schema", "apply"],
        ["load", "neighbours", str(_one(data, "neighbours.csv"))],
        ["load", "popular", str(_one(data, "popular.csv"))],
        ["load", "catalog", str(_one(data, "catalog.jsonl"))],
        ["load", "interactions", str(_one(data, "interactions.csv"))],
    ]
    for step in steps:
        code = recs(step)
        if code != 0:
            return code
    return 0


def _one(data: Path, name: str) -> Path:
    for candidate in (data / name, data / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{data}: no {name} or {name}.gz (run `recs demo generate`)")

"""`recs build ...` and `recs demo ...`: offline work on files, plus loading the demo.

recs build neighbours INTERACTIONS OUT     neighbours (CSV): co-occurrence or learned
recs build popular INTERACTIONS CATALOG OUT
recs demo generate [--out DIR]             the seeded demo marketplace
recs demo ensure [--out DIR]               generate it unless it is already there
recs demo load [--data DIR]                schema + all four files into the configured stack
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from app.cli.common import report_skipped
from app.config import Settings

DEFAULT_DEMO_DIR = Path("data/demo")
DAY_MS = 86_400_000
# Chosen by `recs evaluate` on the demo and on MovieLens-100k (docs/quality.md).
DEFAULT_METHOD = "cooccurrence"


def add_offline_commands(commands: Any) -> None:
    build = commands.add_parser("build", help="build model files from interactions").add_subparsers(
        metavar="KIND"
    )
    neighbours = build.add_parser(
        "neighbours",
        help="item-to-item neighbours: co-occurrence in each user's sequence, or learned vectors",
        description="Streams the interaction log: items a user consumed near each other become "
        "neighbours (--method cooccurrence), or items close in a learned factorisation "
        "(--method als|bpr). docs/quality.md compares them.",
    )
    neighbours.add_argument("interactions", type=Path, help="interactions CSV[.gz]")
    neighbours.add_argument("out", type=Path, help="neighbours CSV to write (.gz to compress)")
    add_neighbour_options(neighbours)
    neighbours.add_argument("--skip-invalid", action="store_true", help="skip and count bad rows")
    neighbours.set_defaults(handler=_build_neighbours)

    embeddings = build.add_parser(
        "embeddings",
        help="item vectors learned from interactions (ALS or BPR), as an embeddings .npz",
    )
    embeddings.add_argument("interactions", type=Path, help="interactions CSV[.gz]")
    embeddings.add_argument("out", type=Path, help="embeddings file to write (.npz)")
    add_factorization_options(embeddings)
    embeddings.add_argument("--skip-invalid", action="store_true", help="skip and count bad rows")
    embeddings.set_defaults(handler=_build_embeddings)

    popular = build.add_parser(
        "popular", help="popular lists (global, per category, per region) from interactions"
    )
    popular.add_argument("interactions", type=Path, help="interactions CSV[.gz]")
    popular.add_argument("catalog", type=Path, help="catalog JSONL (categories, regions, active)")
    popular.add_argument("out", type=Path, help="popular CSV to write")
    popular.add_argument("--top-n", type=int, default=200, help="items per segment")
    popular.add_argument(
        "--half-life-days",
        type=float,
        help="recency half-life before the log's newest event (default: no decay)",
    )
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
        "(neighbours, popular, embeddings if present, catalog, interactions)",
    )
    load.add_argument("--data", type=Path, default=DEFAULT_DEMO_DIR, help="dataset folder")
    load.set_defaults(handler=_demo_load)


def add_neighbour_options(parser: argparse.ArgumentParser) -> None:
    """The neighbour builder's options (`recs build neighbours`, `recs evaluate --build`)."""
    from app.offline.cooccurrence import CooccurrenceConfig

    cooc = CooccurrenceConfig()
    parser.add_argument(
        "--method",
        choices=("cooccurrence", "als", "bpr"),
        default=DEFAULT_METHOD,
        help=f"how neighbours are found (default {DEFAULT_METHOD})",
    )
    parser.add_argument("--top-k", type=int, default=cooc.k, help="neighbours per item")
    parser.add_argument(
        "--half-life-days",
        type=float,
        help="recency half-life before each user's newest event (default: no decay)",
    )
    group = parser.add_argument_group("cooccurrence")
    group.add_argument("--window", type=int, default=cooc.window, help="previous items paired")
    group.add_argument(
        "--window-decay", type=float, default=cooc.window_decay, help="weight per step back"
    )
    group.add_argument(
        "--alpha",
        type=float,
        default=cooc.alpha,
        help="normalisation: 0.5 cosine, 1 P(neighbour | item) (favours popular ones)",
    )
    group.add_argument("--shrinkage", type=float, default=cooc.shrinkage, help="damps rare pairs")
    group.add_argument(
        "--session-gap-minutes",
        type=float,
        help="a longer pause empties the window (default: the window spans visits)",
    )
    add_factorization_options(parser, with_method=False)


def add_factorization_options(parser: argparse.ArgumentParser, *, with_method: bool = True) -> None:
    """Options of the learned methods (ALS, BPR): item vectors and `--method als|bpr`."""
    from app.offline.factorization import FactorizationConfig

    learned = FactorizationConfig()
    group = parser.add_argument_group("als, bpr")
    if with_method:
        group.add_argument("--method", choices=("als", "bpr"), default="als")
        group.add_argument(
            "--half-life-days",
            type=float,
            help="recency half-life before each user's newest event (default: no decay)",
        )
    group.add_argument("--factors", type=int, default=learned.factors, help="vector size")
    group.add_argument("--regularization", type=float, default=learned.regularization)
    group.add_argument("--iterations", type=int, default=learned.iterations)
    group.add_argument(
        "--confidence", type=float, default=learned.alpha, help="ALS confidence per event weight"
    )
    group.add_argument("--learning-rate", type=float, default=learned.learning_rate, help="BPR")
    group.add_argument("--seed", type=int, default=learned.seed)


def factorization_config(args: argparse.Namespace, method: Any = None) -> Any:
    """The learned method's settings from the options (`method` overrides `--method`)."""
    from app.offline.factorization import FactorizationConfig

    return FactorizationConfig(
        method=method or args.method,
        factors=args.factors,
        regularization=args.regularization,
        iterations=args.iterations,
        alpha=args.confidence,
        learning_rate=args.learning_rate,
        seed=args.seed,
        weighting=weighting_of(args),
    )


def weighting_of(args: argparse.Namespace) -> Any:
    from app.offline.weighting import Weighting

    days = args.half_life_days
    return Weighting(half_life_ms=None if days is None else days * DAY_MS)


def neighbour_builder(args: argparse.Namespace) -> Callable[[Iterable[Any]], Any]:
    """rows → neighbour lists, as the options say."""
    if args.method == "cooccurrence":
        from app.offline.cooccurrence import CooccurrenceConfig, build_neighbours

        gap = args.session_gap_minutes
        config = CooccurrenceConfig(
            k=args.top_k,
            window=args.window,
            window_decay=args.window_decay,
            alpha=args.alpha,
            shrinkage=args.shrinkage,
            session_gap_ms=None if gap is None else int(gap * 60_000),
            weighting=weighting_of(args),
        )
        return functools.partial(build_neighbours, config=config)
    from app.offline.factorization import factor_neighbours

    return functools.partial(factor_neighbours, config=factorization_config(args), k=args.top_k)


def _build_neighbours(args: argparse.Namespace, _: Settings) -> int:
    from app.offline.cooccurrence import write_neighbours_csv
    from app.offline.formats import InteractionLog

    build = neighbour_builder(args)
    started = time.perf_counter()
    log = InteractionLog(args.interactions, skip_invalid=args.skip_invalid)
    written = write_neighbours_csv(args.out, build(log))
    print(
        f"neighbours ({args.method}): {log.stats.rows_ok} interactions -> {written} rows in "
        f"{args.out} ({time.perf_counter() - started:.1f} s)"
    )
    report_skipped(args.interactions, log.stats)
    return 0


def _build_embeddings(args: argparse.Namespace, _: Settings) -> int:
    from app.embeddings import write_embeddings
    from app.offline.factorization import train_factors
    from app.offline.formats import InteractionLog

    started = time.perf_counter()
    log = InteractionLog(args.interactions, skip_invalid=args.skip_invalid)
    factors = train_factors(log, factorization_config(args))
    write_embeddings(args.out, factors.item_ids, factors.items)
    print(
        f"embeddings ({args.method}): {log.stats.rows_ok} interactions -> "
        f"{len(factors.item_ids)} vectors of {factors.items.shape[1]} dimensions in {args.out} "
        f"({time.perf_counter() - started:.1f} s)"
    )
    report_skipped(args.interactions, log.stats)
    return 0


def _build_popular(args: argparse.Namespace, _: Settings) -> int:
    from app.offline.popular import PopularConfig, build_popular_file

    config = PopularConfig(top_n=args.top_n, weighting=weighting_of(args))
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
    from app.offline.demo import DEMO_FORMAT

    manifest = args.out / "manifest.json"
    if manifest.is_file():
        parameters = json.loads(manifest.read_text())["parameters"]
        wanted = {
            "items": args.items,
            "users": args.users,
            "seed": args.seed,
            "format": DEMO_FORMAT,
        }
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
    if (data / "embeddings.npz").is_file():
        steps.insert(3, ["load", "embeddings", str(data / "embeddings.npz")])
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

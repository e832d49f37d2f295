"""`recs evaluate`: what the feed would serve, scored offline beside the baselines.

recs evaluate INTERACTIONS [--catalog CATALOG] (--neighbours FILE --popular FILE | --build ...)
              [--split leave-last-out|time:F] [--k 10,20] [--mf als|bpr] [--json]

The serving knobs are the service's own `RECS_*` settings (event weights, recency, history
limit, diversity caps): set them in the environment to evaluate another value.
docs/quality.md explains the protocols, the metrics and the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any

from app.cli.offline import (
    add_neighbour_options,
    factorization_config,
    neighbour_builder,
    weighting_of,
)
from app.config import Settings

DEFAULT_KS = "10,20"


def add_evaluate_command(commands: Any) -> None:
    parser = commands.add_parser(
        "evaluate",
        help="offline evaluation of the feed against popularity (and MF) baselines",
        description="Splits an interactions log (leave-last-out or a time cut), serves each "
        "held-out user's feed through the service's own code and settings, and reports HR, "
        "NDCG and MRR (and precision, recall for a time split) at each K, catalog coverage, "
        "and the share of users served from their history, beside the baselines.",
    )
    parser.add_argument("interactions", type=Path, help="interactions CSV[.gz]")
    parser.add_argument(
        "--catalog",
        type=Path,
        help="catalog JSONL: inactive items, filters and diversity caps as in serving "
        "(default: every item active, no category, region or seller)",
    )
    parser.add_argument("--neighbours", type=Path, help="neighbours CSV to evaluate")
    parser.add_argument("--popular", type=Path, help="popular CSV (the fallback)")
    parser.add_argument(
        "--embeddings",
        type=Path,
        help="embeddings .npz: blended into the feed as RECS_ANN_WEIGHT says",
    )
    parser.add_argument(
        "--build-embeddings",
        action="store_true",
        help="learn item vectors (ALS, the --factors ... options) from the training part",
    )
    parser.add_argument(
        "--build",
        action="store_true",
        help="build the models not given from the training part (builder options below)",
    )
    parser.add_argument(
        "--split",
        default="leave-last-out",
        help="leave-last-out (default) or time:F, a global cut at the F-quantile of time",
    )
    parser.add_argument("--k", default=DEFAULT_KS, help=f"cut-offs, comma-separated ({DEFAULT_KS})")
    parser.add_argument(
        "--mf", choices=("als", "bpr"), help="also score a matrix-factorisation baseline"
    )
    parser.add_argument("--mf-factors", type=int, default=64)
    parser.add_argument("--mf-regularization", type=float, default=0.01)
    parser.add_argument("--mf-iterations", type=int, default=15)
    parser.add_argument("--mf-confidence", type=float, default=1.0, help="ALS alpha")
    parser.add_argument("--mf-learning-rate", type=float, default=0.01, help="BPR")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    add_neighbour_options(parser)
    parser.set_defaults(handler=_evaluate)


def parse_ks(text: str) -> tuple[int, ...]:
    try:
        ks = tuple(sorted({int(part) for part in text.split(",") if part.strip()}))
    except ValueError:
        ks = ()
    if not ks or ks[0] < 1:
        raise argparse.ArgumentTypeError(f"--k {text!r}: positive integers, comma-separated")
    return ks


def _evaluate(args: argparse.Namespace, settings: Settings) -> int:
    from app.domain import CatalogItem
    from app.embeddings import read_embeddings, table_from_arrays
    from app.evaluation.protocols import EvaluationInputError, split_log
    from app.evaluation.runner import evaluate
    from app.offline.factorization import FactorizationConfig, train_factors
    from app.offline.formats import read_catalog
    from app.offline.popular import item_popularity, popular_lists
    from app.ranking.types import ScoredList
    from app.sources.embedded import read_neighbour_lists, read_popular_lists

    ks = parse_ks(args.k)
    if ks[-1] > settings.max_limit:
        raise EvaluationInputError(f"--k {ks[-1]} is above RECS_MAX_LIMIT ({settings.max_limit})")
    if not args.build and (args.neighbours is None or args.popular is None):
        raise EvaluationInputError("give --neighbours and --popular, or --build to build them")
    started = time.perf_counter()
    split = split_log(args.interactions, args.split, history_kept=settings.history_limit)
    catalog = (
        None
        if args.catalog is None
        else {item.item_id: item for item in read_catalog(args.catalog)}
    )
    notes = []
    if args.neighbours is not None:
        neighbours = read_neighbour_lists(args.neighbours)
    else:
        building = time.perf_counter()
        built = neighbour_builder(args)(split.train_rows)
        neighbours = {
            item: ScoredList(tuple(i for i, _ in ranked), tuple(s for _, s in ranked))
            for item, ranked in built.items()
        }
        notes.append(
            f"neighbours built ({args.method}) from the training part in "
            f"{time.perf_counter() - building:.1f} s"
        )
    if args.popular is not None:
        popular = read_popular_lists(args.popular)
    else:
        popularity = item_popularity(split.train_rows, weighting_of(args))
        known = catalog if catalog is not None else {i: CatalogItem(i) for i in popularity}
        popular = {
            segment: ScoredList(tuple(i for i, _ in ranked), tuple(s for _, s in ranked))
            for segment, ranked in popular_lists(popularity, known).items()
        }
    embeddings = None
    if args.embeddings is not None:
        embeddings = read_embeddings(args.embeddings)
    elif args.build_embeddings:
        building = time.perf_counter()
        learned = train_factors(split.train_rows, factorization_config(args, method="als"))
        embeddings = table_from_arrays(learned.item_ids, learned.items, "built embeddings")
        notes.append(
            f"embeddings built (als) from the training part in "
            f"{time.perf_counter() - building:.1f} s"
        )
    mf = None
    if args.mf is not None:
        mf = FactorizationConfig(
            method=args.mf,
            factors=args.mf_factors,
            regularization=args.mf_regularization,
            iterations=args.mf_iterations,
            alpha=args.mf_confidence,
            learning_rate=args.mf_learning_rate,
        )
    report = asyncio.run(
        evaluate(
            split,
            settings=settings,
            neighbours=neighbours,
            popular=popular,
            catalog=catalog,
            ks=ks,
            mf=mf,
            embeddings=embeddings,
        )
    )
    report.notes += notes
    report.notes.append(f"evaluated in {time.perf_counter() - started:.1f} s")
    if args.json:
        print(json.dumps(report.as_json(), indent=2))
    else:
        print(report.table())
    return 0

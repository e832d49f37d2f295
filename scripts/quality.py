"""The table of docs/quality.md: `recs evaluate` per dataset and method, baselines beside.

    python scripts/quality.py [--datasets demo,ml-100k] [--out FILE]     (`make quality`)
    python scripts/quality.py --tune-mf [--datasets ...]   the MF baseline's search
    python scripts/quality.py --demo-ceiling                what an oracle of the demo scores
    python scripts/quality.py --blend-grid 0,0.05,0.1       the embeddings weight, user by user

Each row is one `recs evaluate` run (leave-last-out, K = 10 and 20) with the popularity
baseline and the tuned matrix-factorisation baseline of its dataset; the printed Markdown
gives each row's command, so any figure can be reproduced alone. The datasets must be
present: `make run` generates the demo, `python scripts/movielens.py` fetches MovieLens.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from app.cli.main import main as recs


@dataclass(frozen=True)
class Dataset:
    name: str
    folder: Path
    interactions: str
    mf: tuple[str, ...]
    """The tuned MF baseline's options (docs/quality.md: how they were chosen)."""


@dataclass(frozen=True)
class Row:
    label: str
    build: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)


DATASETS = {
    "demo": Dataset(
        "demo",
        Path("data/demo"),
        "interactions.csv.gz",
        ("--mf", "als", "--mf-factors", "64", "--mf-confidence", "10"),
    ),
    "ml-100k": Dataset(
        "ml-100k",
        Path("data/ml-100k"),
        "interactions.csv",
        ("--mf", "als", "--mf-factors", "32", "--mf-regularization", "0.1"),
    ),
}

# The former serving defaults: the "before" row, what today's defaults are judged against.
BEFORE_SERVING = {
    "RECS_ANN_WEIGHT": "0",
    "RECS_HISTORY_LIMIT": "50",
    "RECS_RECENCY_HALF_LIFE_MS": "259200000",
    "RECS_RECENCY_POSITION_DECAY": "1",
    "RECS_MAX_SEEDS": "1000",
    "RECS_MAX_PER_CATEGORY": "5",
    "RECS_MAX_PER_SELLER": "2",
}
ROWS = (
    Row("defaults: cooccurrence + embeddings (weight 0.05)"),
    Row("cooccurrence alone", env={"RECS_ANN_WEIGHT": "0"}),
    Row("embeddings alone", env={"RECS_ANN_WEIGHT": "1"}),
    Row("defaults, embeddings weight 0.3", env={"RECS_ANN_WEIGHT": "0.3"}),
    Row("cooccurrence, --alpha 0.5 (cosine)", ("--alpha", "0.5")),
    Row("cooccurrence, --window 5", ("--window", "5", "--window-decay", "0.7")),
    Row("cooccurrence, --session-gap-minutes 30", ("--session-gap-minutes", "30")),
    Row("cooccurrence, --half-life-days 14", ("--half-life-days", "14")),
    Row("als (learned vectors, cosine)", ("--method", "als", "--factors", "64")),
    Row("bpr (learned vectors, cosine)", ("--method", "bpr", "--factors", "64",
                                          "--iterations", "100", "--learning-rate", "0.05")),
    Row("defaults, caps 5 per category, 2 per seller",
        env={"RECS_MAX_PER_CATEGORY": "5", "RECS_MAX_PER_SELLER": "2"}),
    Row("defaults, no position decay", env={"RECS_RECENCY_POSITION_DECAY": "1"}),
    Row("defaults, history 50", env={"RECS_HISTORY_LIMIT": "50"}),
    Row("before: window 3, 30 min sessions, 14-day half-life; serving as before",
        ("--window", "3", "--window-decay", "0.5", "--alpha", "0.5",
         "--session-gap-minutes", "30", "--half-life-days", "14"),
        BEFORE_SERVING),
)  # fmt: skip


@contextlib.contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def arguments(dataset: Dataset, row: Row) -> list[str]:
    folder = dataset.folder
    return [
        "evaluate",
        str(folder / dataset.interactions),
        "--catalog",
        str(folder / "catalog.jsonl"),
        "--build",
        "--build-embeddings",
        *row.build,
        *dataset.mf,
        "--json",
    ]


def evaluate(dataset: Dataset, row: Row) -> tuple[dict[str, object], float]:
    out = io.StringIO()
    started = time.perf_counter()
    with environment(row.env), contextlib.redirect_stdout(out):
        code = recs(arguments(dataset, row))
    if code != 0:
        raise SystemExit(f"recs {' '.join(arguments(dataset, row))}: exit {code}")
    return json.loads(out.getvalue()), time.perf_counter() - started


def markdown(results: list[tuple[Dataset, Row, dict[str, object], float]]) -> str:
    lines = [
        "| dataset | feed built with | HR@10 | NDCG@10 | MRR@10 | HR@20 | HR@10, 1-3 events "
        "| popular HR@10 | MF HR@10 | × popular | × MF | cov@10 | s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    commands = []
    for number, (dataset, row, report, seconds) in enumerate(results, 1):
        methods = {m["name"]: m for m in report["methods"]}  # type: ignore[attr-defined]
        feed, popular = methods["feed"], methods["popular"]
        mf = next(m for name, m in methods.items() if name.startswith("mf:"))
        at10, at20 = feed["metrics"]["10"], feed["metrics"]["20"]
        pop, base = popular["metrics"]["10"]["hr"], mf["metrics"]["10"]["hr"]
        short = feed["short_history"]
        cold = f"{short['metrics']['10']['hr']:.4f} ({short['users']})" if short["users"] else "-"
        lines.append(
            f"| {dataset.name} | {number}. {row.label} | {at10['hr']:.4f} | {at10['ndcg']:.4f} "
            f"| {at10['mrr']:.4f} | {at20['hr']:.4f} | {cold} | {pop:.4f} | {base:.4f} "
            f"| {at10['hr'] / pop:.2f} | {at10['hr'] / base:.2f} "
            f"| {feed['coverage']['10']:.3f} | {seconds:.0f} |"
        )
        env = " ".join(f"{name}={value}" for name, value in row.env.items())
        command = " ".join(["recs", *arguments(dataset, row)[:-1]])
        commands.append(f"{number}. `{(env + ' ') if env else ''}{command}`")
    return "\n".join([*lines, "", "Commands:", "", *commands, ""])


MF_GRID = [
    ("als", factors, regularization, confidence, 15, 0.01)
    for factors in (16, 32, 64, 128)
    for regularization in (0.01, 0.1, 1.0)
    for confidence in (1.0, 10.0, 40.0)
] + [
    ("bpr", factors, regularization, 1.0, iterations, rate)
    for factors in (32, 64, 128)
    for regularization in (0.001, 0.01)
    for iterations in (100, 300)
    for rate in (0.01, 0.05)
]


def tune_mf(dataset: Dataset) -> None:
    """HR@10 of every MF configuration of the grid on the dataset's leave-last-out split."""
    from app.evaluation.protocols import split_log
    from app.evaluation.runner import mf_scores
    from app.offline.factorization import FactorizationConfig
    from app.offline.formats import read_catalog

    catalog = {i.item_id: i for i in read_catalog(dataset.folder / "catalog.jsonl")}
    split = split_log(dataset.folder / dataset.interactions, "leave-last-out", history_kept=1)
    for method, factors, regularization, confidence, iterations, rate in MF_GRID:
        config = FactorizationConfig(
            method=method,  # type: ignore[arg-type]
            factors=factors,
            regularization=regularization,
            alpha=confidence,
            iterations=iterations,
            learning_rate=rate,
        )
        scores = mf_scores(split, config, {}, catalog, (10,), len(catalog))
        print(
            f"{dataset.name} {method} factors={factors} regularization={regularization} "
            f"confidence={confidence} iterations={iterations} learning_rate={rate}: "
            f"hr@10 {scores.metrics[10]['hr']:.4f}",
            flush=True,
        )


def demo_ceiling() -> float:
    """HR@10 (leave-last-out) of an oracle that knows how the demo generator picks items.

    A demo view picks, within the session's category, an item of the session's kind of item
    45 % of the time, one of the user's home region 35 %, any of the category otherwise,
    each by popularity. The oracle takes the user's last training item as the session
    (category and kind), their most frequent region as home, the training events' counts
    as popularity, and ranks the category's active items they have not met by that mix.
    """
    from collections import Counter

    from app.evaluation.protocols import split_log
    from app.offline.demo import kind_of
    from app.offline.formats import read_catalog

    folder = DATASETS["demo"].folder
    catalog = {i.item_id: i for i in read_catalog(folder / "catalog.jsonl")}
    kinds = {i.item_id: kind_of(i.title or "", i.category or "") for i in catalog.values()}
    split = split_log(folder / DATASETS["demo"].interactions, "leave-last-out", history_kept=1)
    seen: dict[str, set[str]] = {}
    regions: dict[str, Counter[str | None]] = {}
    by_category: Counter[str] = Counter()
    for user, item, _event, _ts in split.train_rows:
        seen.setdefault(user, set()).add(item)
        regions.setdefault(user, Counter())[catalog[item].region] += 1
        by_category[item] += 1
    members: dict[str | None, list[str]] = {}
    for listed in catalog.values():
        if listed.active:
            members.setdefault(listed.category, []).append(listed.item_id)
    hits = 0
    for user, targets in split.targets.items():
        last = split.histories[user][0].item_id
        category, kind = catalog[last].category, kinds[last]
        home = regions[user].most_common(1)[0][0]
        pool = [i for i in members.get(category, []) if i not in seen[user]]
        of_kind = sum(by_category[i] for i in pool if kinds[i] == kind) or 1
        of_region = sum(by_category[i] for i in pool if catalog[i].region == home) or 1
        of_category = sum(by_category[i] for i in pool) or 1

        score = {
            item: 0.45 * (kinds[item] == kind) * by_category[item] / of_kind
            + 0.35 * (catalog[item].region == home) * by_category[item] / of_region
            + 0.20 * by_category[item] / of_category
            for item in pool
        }
        best = sorted(pool, key=lambda i: (-score[i], i))[:10]
        hits += any(item in targets for item in best)
    return hits / len(split.targets)


COLD_SEEDS = (3, 5)


def blend_grid(dataset: Dataset, weights: list[float]) -> None:
    """HR@10 of the default build's feed at each RECS_ANN_WEIGHT, over all users, the users
    with 1 to 3 training events, and the users with at most and more than N seeds; and the
    users it hits and misses that the neighbour lists alone (weight 0) do not.

    A user's feed depends only on the weight it is given, so these groups' figures give any
    rule "weight c up to N seeds, w above" exactly, without a run per rule.
    """
    from app.cli.evaluate import add_evaluate_command
    from app.cli.offline import factorization_config, neighbour_builder, weighting_of
    from app.config import Settings
    from app.embeddings import table_from_arrays
    from app.evaluation.protocols import split_log
    from app.evaluation.runner import SHORT_HISTORY, feed_page, in_process_recommender
    from app.offline.factorization import train_factors
    from app.offline.formats import read_catalog
    from app.offline.popular import item_popularity, popular_lists
    from app.ranking.scoring import seed_weights, strongest
    from app.ranking.types import ScoredList

    parser = argparse.ArgumentParser()
    add_evaluate_command(parser.add_subparsers())
    log = dataset.folder / dataset.interactions
    args = parser.parse_args(["evaluate", str(log), "--build", "--build-embeddings"])
    settings = Settings.from_env({})
    split = split_log(log, "leave-last-out", history_kept=settings.history_limit)
    catalog = {i.item_id: i for i in read_catalog(dataset.folder / "catalog.jsonl")}

    def scored(ranked: dict[str, list[tuple[str, float]]]) -> dict[str, ScoredList]:
        return {
            key: ScoredList(tuple(i for i, _ in items), tuple(s for _, s in items))
            for key, items in ranked.items()
        }

    neighbours = scored(neighbour_builder(args)(split.train_rows))
    popular = scored(popular_lists(item_popularity(split.train_rows, weighting_of(args)), catalog))
    learned = train_factors(split.train_rows, factorization_config(args, method="als"))
    embeddings = table_from_arrays(learned.item_ids, learned.items, "built embeddings")
    seeds = {
        user: len(
            strongest(
                seed_weights(
                    split.histories.get(user, [])[: settings.history_limit],
                    event_weights=settings.event_weights,
                    half_life_ms=settings.recency_half_life_ms,
                    position_decay=settings.recency_position_decay,
                ),
                settings.max_seeds,
            )
        )
        for user in split.targets
    }
    groups = {"all": set(split.targets)}
    groups[f"1-{SHORT_HISTORY} events"] = {
        user for user in split.targets if 0 < len(split.histories.get(user, ())) <= SHORT_HISTORY
    }
    for most in COLD_SEEDS:
        groups[f"<= {most} seeds"] = {user for user, n in seeds.items() if n <= most}
        groups[f"> {most} seeds"] = {user for user, n in seeds.items() if n > most}

    async def hits(weight: float) -> set[str]:
        recommender, models = in_process_recommender(
            settings.model_copy(update={"ann_weight": weight}),
            split,
            neighbours,
            popular,
            catalog,
            embeddings,
        )
        await models.refresh()
        found = set()
        for user, relevant in split.targets.items():
            page = await feed_page(recommender, user, 20)  # the page `recs evaluate` scores
            if any(item.item_id in relevant for item in page.items[:10]):
                found.add(user)
        return found

    alone = asyncio.run(hits(0.0))
    print(f"{dataset.name}: HR@10 by RECS_ANN_WEIGHT (users hit / missed against weight 0)")
    print(
        "| weight | "
        + " | ".join(f"{name} ({len(users)})" for name, users in groups.items())
        + " |"
    )
    print("| --- " * (len(groups) + 1) + "|")
    for weight in weights:
        found = alone if weight == 0.0 else asyncio.run(hits(weight))
        cells = [
            f"{len(found & users) / len(users):.4f} "
            f"(+{len((found - alone) & users)} -{len((alone - found) & users)})"
            if users
            else "-"
            for users in groups.values()
        ]
        print(f"| {weight:g} | " + " | ".join(cells) + " |", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default="demo,ml-100k")
    parser.add_argument("--out", type=Path, help="also write the Markdown here")
    parser.add_argument("--tune-mf", action="store_true", help="search the MF baseline's grid")
    parser.add_argument("--demo-ceiling", action="store_true", help="the demo oracle's HR@10")
    parser.add_argument(
        "--blend-grid", metavar="W,W", help="HR@10 at each embeddings weight, by history"
    )
    args = parser.parse_args(argv)
    if args.blend_grid:
        for name in args.datasets.split(","):
            blend_grid(DATASETS[name], [float(w) for w in args.blend_grid.split(",")])
        return 0
    if args.demo_ceiling:
        print(f"demo oracle: HR@10 {demo_ceiling():.4f}")
        return 0
    if args.tune_mf:
        for name in args.datasets.split(","):
            tune_mf(DATASETS[name])
        return 0
    results = []
    for name in args.datasets.split(","):
        dataset = DATASETS[name]
        if not (dataset.folder / dataset.interactions).is_file():
            raise SystemExit(f"{dataset.folder}: missing; see this script's docstring")
        for row in ROWS:
            report, seconds = evaluate(dataset, row)
            results.append((dataset, row, report, seconds))
            print(f"{dataset.name}: {row.label}: {seconds:.0f} s", file=sys.stderr)
    text = markdown(results)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

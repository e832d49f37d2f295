"""One or two bench-server configurations under the same fixed rate, alternated: the service's
CPU per request, the latency (vegeta), the DynamoDB Query inside the service, the loop lag,
catalog calls per request and GC collections of every measured run.

    python -m loadtests.recipes.fixed_rate --rate 170 --seconds 20 --rounds 5 \\
        [--endpoint feed] [--set RECS_X=V] [--a-set RECS_X=V] [--b-set RECS_X=V] \\
        [--pin-b] [--settle-s 60] [--window-s 10] [--gc-log [--gc-garbage]]

Needs the local stack up and loaded (as `make dev` leaves it) and vegeta (`make tools`).
Each configuration is a bench server (`python -m loadtests.bench.server`: the service plus
/bench/floor) with the `--set` settings and its own `--a-set` or `--b-set`; there is a B only
when `--b-set` or `--pin-b` is given. Both servers are started and warmed with every distinct
request of their targets file; then each round runs A and B in turn (the order alternating),
each `--settle-s` of load not measured, then `--seconds` measured, split into windows of
`--window-s` when given (the p99 of each window, then of the whole run).

`--pin-b` runs B's rounds with the server on core 0 and the stack's processes and vegeta on
core 1 (`taskset`), as a pod with its own core would run; A's rounds unpinned.

The figures of docs/performance.md it reproduces:

    --rate 170 --seconds 20 --rounds 5 --a-set RECS_CATALOG_CACHE_REFRESH_S=10  # refresh age
    --rate 180 --seconds 60 --settle-s 60 --rounds 2 --b-set RECS_CATALOG_CACHE_TTL_S=3600
    --rate 170 --seconds 20 --rounds 2 --set RECS_CATALOG_CACHE_TTL_S=3600 \\
        --b-set RECS_GC_THRESHOLDS=700,10,10 --gc-log                        # GC thresholds
    --rate 200 --seconds 60 --rounds 2 --pin-b                                # pinning
    --rate 181 --seconds 60 --window-s 10 --rounds 1                          # 10 s windows
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from loadtests.bench import plan, runner, vegeta
from loadtests.bench.processes import BenchServer
from loadtests.bench.variants import Pieces, Variant
from loadtests.recipes import _bench, gclog
from scripts import stack
from scripts.stats import percentile


@dataclass(frozen=True)
class _GcLogged(Pieces):
    """The product's pieces, with the bench server's GC log (`loadtests.recipes.gclog`)."""

    gc_log: str = ""
    gc_garbage: bool = False

    def argv(self) -> list[str]:
        extra = ["--gc-log", self.gc_log] + (["--gc-garbage"] if self.gc_garbage else [])
        return [*super().argv(), *extra]


def _settings(pairs: Sequence[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.startswith("RECS_"):
            raise SystemExit(f"expected RECS_NAME=VALUE, got {pair!r}")
        out[name] = value
    return out


def _taskset(cores: str, pid: int) -> None:
    subprocess.run(["taskset", "-a", "-p", "-c", cores, str(pid)], check=True, capture_output=True)


@contextlib.contextmanager
def _pinned(server: BenchServer) -> Iterator[None]:
    """The server on core 0; the stack and this process (so vegeta, its child) on core 1."""
    every = os.sched_getaffinity(0)
    if len(every) < 2:
        raise SystemExit("--pin-b needs two cores")
    all_cores = ",".join(str(core) for core in sorted(every))
    servers = [s.pid for s in stack.status() if s.pid is not None]
    _taskset("0", server.pid)
    for pid in servers:
        _taskset("1", pid)
    os.sched_setaffinity(0, {1})
    try:
        yield
    finally:
        os.sched_setaffinity(0, every)
        for pid in servers:
            _taskset(all_cores, pid)
        _taskset(all_cores, server.pid)


def _attack(targets: Path, rate: float, seconds: float) -> vegeta.Attack:
    return vegeta.Attack.constant(targets, rate, seconds, max_workers=plan.OPEN_LOOP_MAX_WORKERS)


def _p99(latencies: Sequence[float]) -> float:
    return percentile(latencies, 99) if latencies else 0.0


def _gc_report(path: Path, since: float, until: float, garbage: bool) -> None:
    for row in gclog.summarize(path, since=since, until=until):
        print(f"      GC {json.dumps(row)}")
    if garbage:
        kinds: collections.Counter[str] = collections.Counter()
        for text in path.read_text().splitlines():
            row = json.loads(text)
            if since <= row["t"] <= until:
                kinds.update(dict(row.get("garbage_types", [])))
        top = ", ".join(f"{name} {count}" for name, count in kinds.most_common(10))
        print(f"      garbage by type: {top or 'none'}")


def _report(label: str, runs: Sequence[runner.Measurement], window_s: float) -> None:
    if len(runs) == 1:
        print(f"{label}: {_bench.line(runs[0])}")
        return
    every = [ms for run in runs for ms in run.result.latencies_ms]
    cpu_s = sum(run.cpu.server_s for run in runs)
    requests = max(1, sum(run.result.requests for run in runs))
    windows = ", ".join(f"{_p99(run.result.latencies_ms):.1f}" for run in runs)
    print(
        f"{label}: p99 {_p99(every):.1f} ms, its {window_s:g} s windows {windows} ms; "
        f"CPU {cpu_s / requests * 1e6:,.0f} µs/req"
    )
    for run in runs:
        print(f"    {_bench.line(run)}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m loadtests.recipes.fixed_rate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _bench.add_arguments(parser)
    parser.add_argument("--endpoint", default="feed", choices=plan.PRODUCT_ENDPOINTS)
    parser.add_argument("--rate", type=float, required=True, help="requests per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured, per run")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--settle-s", type=float, default=0.0, help="load before each run")
    parser.add_argument("--window-s", type=float, help="also the p99 of windows this long")
    parser.add_argument("--set", action="append", default=[], metavar="RECS_X=V")
    parser.add_argument("--a-set", action="append", default=[], metavar="RECS_X=V")
    parser.add_argument("--b-set", action="append", default=[], metavar="RECS_X=V")
    parser.add_argument("--pin-b", action="store_true", help="B's runs pinned (see above)")
    parser.add_argument("--gc-log", action="store_true", help="each server's GC log, per run")
    parser.add_argument("--gc-garbage", action="store_true", help="with --gc-log: by type")
    args = parser.parse_args(argv)

    bench = _bench.open_bench(args, settings=_settings(args.set))
    sides = {"A": _settings(args.a_set)}
    if args.b_set or args.pin_b:
        sides["B"] = _settings(args.b_set)
    logs = {name: bench.run.work_dir / f"gc-{name}.jsonl" for name in sides}
    variants = {}
    for name, settings in sides.items():
        pieces = (
            _GcLogged(gc_log=str(logs[name]), gc_garbage=args.gc_garbage)
            if args.gc_log
            else Pieces()
        )
        variants[name] = Variant(name, pieces, settings)
        pinned = " (pinned)" if name == "B" and args.pin_b else ""
        print(f"{name}: {settings or 'as shipped'}{pinned}")

    window_s = args.window_s or args.seconds
    windows = max(1, round(args.seconds / window_s))
    with contextlib.ExitStack() as stack:
        servers: dict[str, tuple[BenchServer, Path]] = {}
        for name, variant in variants.items():
            server, files = stack.enter_context(bench.server(variant))
            bench.warm_up(server, variant, files[args.endpoint])
            servers[name] = (server, files[args.endpoint])
        for round_ in range(1, args.rounds + 1):
            for name in list(variants) if round_ % 2 else list(reversed(variants)):
                server, targets = servers[name]
                variant = variants[name]
                settle = _attack(targets, args.rate, args.settle_s)
                window = _attack(targets, args.rate, window_s)
                pin = _pinned(server) if name == "B" and args.pin_b else contextlib.nullcontext()
                with pin:
                    if args.settle_s:
                        bench.measure(server, variant, args.endpoint, settle, "settle", "-")
                    began = time.time()
                    runs = [
                        bench.measure(server, variant, args.endpoint, window, "fixed", f"{round_}")
                        for _ in range(windows)
                    ]
                    ended = time.time()
                _report(f"round {round_} {name}", runs, window_s)
                if args.gc_log:
                    _gc_report(logs[name], began, ended, args.gc_garbage)
    for problem in bench.run.problems:
        print(f"problem: {problem}")


if __name__ == "__main__":
    main()

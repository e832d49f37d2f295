"""An endpoint's target procedure, run on the product and on one other variant, alternated:
each round on fresh servers, every distinct request once, the knee of the open-loop ramp,
then 30 s at 50 % and at 70 % of each variant's own knee (`make bench`'s procedure). Prints
the knee and, at each load, the rate, p50 / p95 / p99, CPU per request and the loop's share.

    python -m loadtests.recipes.target_ab --dynamodb signed-json [--rounds 3] \\
        [--endpoint feed] [--b-set RECS_X=V]

Needs the local stack up and loaded (as `make dev` leaves it) and vegeta (`make tools`).
The other variant is the product with the bench server's pieces given here (`--dynamodb`,
`--scylla`, ...: `python -m loadtests.bench.server --help`) and `--b-set` settings.

docs/performance.md's signed-JSON DynamoDB client against the feed target:
`--dynamodb signed-json --rounds 3` (about 5 minutes a round).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from loadtests.bench import plan
from loadtests.bench.variants import PRODUCT, Pieces, Variant
from loadtests.recipes import _bench


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m loadtests.recipes.target_ab",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _bench.add_arguments(parser)
    Pieces.add_arguments(parser)
    parser.add_argument("--endpoint", default="feed", choices=plan.PRODUCT_ENDPOINTS)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--b-set", action="append", default=[], metavar="RECS_X=V")
    args = parser.parse_args(argv)
    pieces = Pieces.from_namespace(args)
    settings = dict(pair.split("=", 1) for pair in args.b_set)
    if pieces == Pieces() and not settings:
        parser.error("the other variant is the product: give a piece or --b-set")
    other = Variant("variant", pieces, settings)
    print(f"variant: {', '.join(pieces.differences() + args.b_set)}")

    bench = _bench.open_bench(args)
    for round_ in range(1, args.rounds + 1):
        order = [PRODUCT, other] if round_ % 2 else [other, PRODUCT]
        for variant in order:
            with bench.server(variant) as (server, targets):
                runs = bench.endpoint_runs(
                    server,
                    variant,
                    args.endpoint,
                    targets[args.endpoint],
                    plan.LOAD_FRACTIONS,
                    plan.FULL.fixed_s,
                )
            print(f"round {round_} {variant.name}: knee {runs.saturation.throughput:,.0f} req/s")
            for label, m in runs.fixed.items():
                r = m.result
                print(
                    f"    {label}: {r.attack.rate or 0:,.0f} req/s, p50 / p95 / p99 "
                    f"{r.percentile(50) or 0:.1f} / {r.percentile(95) or 0:.1f} / "
                    f"{r.percentile(99) or 0:.1f} ms, CPU {m.cpu_us_per_request or 0:,.0f} µs/req, "
                    f"loop {m.cpu.main_share:.0%} busy"
                )
    for problem in bench.run.problems:
        print(f"problem: {problem}")


if __name__ == "__main__":
    main()

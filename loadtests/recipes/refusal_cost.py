"""The service's CPU per refused request: closed loop (vegeta, 32 in flight) on the embedded
feed, with an admission target of 1 µs so that nearly every request is refused.

    python -m loadtests.recipes.refusal_cost [--data data/demo] [--seconds 10]

Prints the answers a second by status and the server's CPU seconds per answer. It runs the
app code of the current directory: to compare with another commit, check that commit out in
a worktree and run the recipe there too, alternating (docs/reliability.md).
"""

from __future__ import annotations

import argparse
import tempfile
from collections import Counter
from pathlib import Path

from loadtests import overload
from scripts import procs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m loadtests.recipes.refusal_cost", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--data", type=Path, default=Path("data/demo"))
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    with (
        overload.embedded_service(args.data, ["RECS_ADMISSION_TARGET_MS=0.001"]) as (url, pid),
        tempfile.TemporaryDirectory() as tmp,
    ):
        targets = Path(tmp) / "feed.txt"
        targets.write_text(
            "".join(f"GET {url}/v1/users/user-{n}/recommendations\n" for n in range(1, 501))
        )
        overload.attack(targets, 3, None, Path(tmp))  # warm-up: the overload sets in
        before = procs.cpu_seconds(pid)
        answers = overload.attack(targets, args.seconds, None, Path(tmp))
        cpu_s = procs.cpu_seconds(pid) - before
    statuses = Counter(answer.status for answer in answers)
    per_s = ", ".join(f"{n / args.seconds:,.0f} × {s}" for s, n in sorted(statuses.items()))
    print(f"{per_s} a second; server CPU {cpu_s * 1e6 / max(1, len(answers)):.0f} µs per answer")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Past saturation: what the service answers at 150 % and 200 % of its knee, and how fast it
recovers.

    python -m loadtests.overload --data data/demo [--seconds 15] [--set RECS_X=...]

Starts `python -m app` on the embedded data, then for the feed and for similar items:

1. the knee: closed-loop saturation (vegeta, 32 workers, `--seconds`), the rate of 200s;
2. open loop (vegeta, constant rate, new connections as needed) at 150 % and at 200 % of the
   knee for `--seconds` each, then at 50 % for 5 s to see the recovery.

For each overload it reports the goodput (200s a second, and as a share of the knee), the
share of 503s and their p99, the p99 of the 200s (goodput counts only the 200s answered
before the overload ended), and the requests that got no answer
(timeouts, resets: vegeta's status 0) or another status. Recovery is the time from the end of
the overload until the first 0.5 s window of the 50 % load whose p99 is within twice the p99
measured at 50 % before any overload. `--set RECS_ADMISSION_TARGET_MS=0` measures the
service without admission control.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from scripts import procs, tools
from scripts.stats import percentile


@dataclass(frozen=True)
class Answer:
    sent_s: float  # since the attack's start
    status: int  # 0: no answer (timeout, reset, refused)
    latency_s: float


@contextlib.contextmanager
def embedded_service(
    data: Path, settings: list[str], argv: Sequence[str] = (sys.executable, "-m", "app")
) -> Iterator[tuple[str, int]]:
    """The service (`argv`: `python -m app`) on embedded `data`, `settings` (RECS_X=value)
    applied; yields its URL and pid."""
    port = procs.free_port()
    env = procs.env_without_settings()
    env.update(
        RECS_BACKEND="embedded",
        RECS_EMBEDDED_DATA_DIR=str(data),
        RECS_API_KEYS="k",
        RECS_CURSOR_SECRET="overload-bench",
        RECS_PORT=str(port),
        RECS_LOG_LEVEL="error",
    )
    for setting in settings:
        name, _, value = setting.partition("=")
        env[name] = value
    url = f"http://127.0.0.1:{port}"
    try:
        process = procs.start(
            argv,
            ready=lambda: procs.answers(f"{url}/readyz"),
            timeout_s=120,
            name="the service",
            env=env,
        )
    except procs.StartError as exc:
        raise SystemExit(str(exc)) from None
    try:
        yield url, process.pid
    finally:
        procs.stop(process, grace_s=30)


def _attack(targets: Path, seconds: float, rate: float | None, folder: Path) -> list[Answer]:
    """rate None: closed loop with 32 workers; else open loop at `rate` a second."""
    pace = ["-rate=0", "-workers=32", "-max-workers=32"] if rate is None else [f"-rate={rate:.0f}"]
    raw = folder / "attack.bin"
    vegeta = str(tools.require("vegeta"))
    subprocess.run(
        [vegeta, "attack", f"-targets={targets}", f"-duration={seconds}s", "-timeout=30s",
         "-keepalive=true", *pace, f"-output={raw}"],
        check=True, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    encoded = subprocess.run(
        [vegeta, "encode", "-to=json", str(raw)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    rows = [json.loads(line) for line in encoded.splitlines() if line]
    if not rows:
        return []
    start = min(_epoch_s(row["timestamp"]) for row in rows)
    return [
        Answer(_epoch_s(row["timestamp"]) - start, int(row["code"]), row["latency"] / 1e9)
        for row in rows
    ]


def _epoch_s(stamp: str) -> float:
    # vegeta: RFC 3339 with nanoseconds, e.g. 2026-12-07T21:00:00.123456789Z
    whole, _, rest = stamp.rstrip("Z").partition(".")
    fraction = rest.split("+")[0].split("-")[0]
    base = datetime.fromisoformat(whole + "+00:00").timestamp()
    return base + (int(fraction) / 10 ** len(fraction) if fraction else 0.0)


def p99(values: list[float]) -> float:
    return percentile(values, 99) if values else math.nan


def _summary(answers: list[Answer], seconds: float, knee: float) -> dict[str, float]:
    ok = [a.latency_s for a in answers if a.status == 200]
    # Goodput: 200s answered while the overload lasted, not those that came in long after.
    served = sum(1 for a in answers if a.status == 200 and a.sent_s + a.latency_s <= seconds)
    shed = [a.latency_s for a in answers if a.status == 503]
    lost = sum(1 for a in answers if a.status == 0)
    other = len(answers) - len(ok) - len(shed) - lost
    return {
        "offered": len(answers) / seconds,
        "goodput": served / seconds,
        "goodput_of_knee": served / seconds / knee,
        "ok_p99_ms": p99(ok) * 1000,
        "shed_share": len(shed) / max(1, len(answers)),
        "shed_p99_ms": p99(shed) * 1000,
        "no_answer": lost,
        "other_status": other,
    }


def _recovery_s(answers: list[Answer], normal_p99: float) -> float:
    """Seconds until the first 0.5 s window whose p99 is within twice the normal one."""
    windows: dict[int, list[float]] = {}
    for a in answers:
        windows.setdefault(int(a.sent_s / 0.5), []).append(a.latency_s if a.status == 200 else 30.0)
    for index in sorted(windows):
        if p99(windows[index]) <= 2 * normal_p99:
            return index * 0.5
    return float("inf")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("data/demo"))
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--set", action="append", default=[], metavar="RECS_X=value")
    parser.add_argument("--endpoints", default="feed,similar")
    args = parser.parse_args(argv)
    with embedded_service(args.data, args.set) as (url, _), tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for endpoint in args.endpoints.split(","):
            targets = folder / f"{endpoint}.txt"
            paths = (
                [f"/v1/users/user-{n}/recommendations" for n in range(1, 501)]
                if endpoint == "feed"
                else [f"/v1/items/item-{n}/similar" for n in range(1, 501)]
            )
            targets.write_text("".join(f"GET {url}{p}\n" for p in paths))
            _attack(targets, 3, None, folder)  # warm every id
            closed = _attack(targets, args.seconds, None, folder)
            knee = sum(1 for a in closed if a.status == 200) / args.seconds
            normal = _attack(targets, 5, knee * 0.5, folder)
            normal_p99 = p99([a.latency_s for a in normal if a.status == 200])
            print(f"{endpoint}: knee {knee:.0f} req/s; at 50 %: p99 {normal_p99 * 1000:.1f} ms")
            print(
                f"  {'offered':>8} {'goodput':>8} {'of knee':>8} {'200 p99':>9} "
                f"{'503s':>6} {'503 p99':>9} {'no answer':>9} {'other':>6} {'recovery':>9}"
            )
            for factor in (1.5, 2.0):
                over = _attack(targets, args.seconds, knee * factor, folder)
                after = _attack(targets, 5, knee * 0.5, folder)
                s = _summary(over, args.seconds, knee)
                print(
                    f"  {s['offered']:8.0f} {s['goodput']:8.0f} {s['goodput_of_knee']:8.0%} "
                    f"{s['ok_p99_ms']:7.1f}ms {s['shed_share']:6.0%} {s['shed_p99_ms']:7.1f}ms "
                    f"{s['no_answer']:9.0f} {s['other_status']:6.0f} "
                    f"{_recovery_s(after, normal_p99):8.1f}s"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Past saturation: what the service answers at 150 % and 200 % of its knee, and how fast it
recovers. `make bench` runs it after the bench, in both modes.

    python -m loadtests.overload --data data/demo [--modes embedded,remote] [--seconds 15]
        [--set RECS_X=...] [--report reports/overload.md]

Starts `python -m app` on the embedded data (`embedded`), or against the local stack with the
demo loaded in it (`remote`; `make bench` starts and loads the stack first), then for the feed
and for similar items:

1. the knee: closed-loop saturation (vegeta, `--seconds`), the rate of whole 200s, with 32
   requests in flight in embedded mode; in remote mode, where requests wait on the stack,
   the best of 32, 64 and 128 in flight (too few leave the loop idle, too many overload it);
2. open loop (vegeta, constant rate, new connections as needed) at 150 % and at 200 % of the
   knee for `--seconds` each, then at 50 % for 5 s to see the recovery.

For each overload it reports the goodput (whole 200s a second, and as a share of the knee),
the share of 503s and their p99, the p99 of the 200s and the share of them that were
degraded (goodput and the knee count only the 200s that were not, and only those answered
before the overload ended), and the requests that got no answer
(timeouts, resets: vegeta's status 0) or another status. Recovery is the time from the end of
the overload until the first 0.5 s window of the 50 % load whose p99 is within twice the p99
measured at 50 % before any overload. `--set RECS_ADMISSION_TARGET_MS=0` measures the
service without admission control.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import math
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from scripts import procs, stack, tools
from scripts.stats import percentile


@dataclass(frozen=True)
class Answer:
    sent_s: float  # since the attack's start
    status: int  # 0: no answer (timeout, reset, refused)
    latency_s: float
    degraded: bool = False  # a 200 built without some dependency (remote mode)


@contextlib.contextmanager
def embedded_service(
    data: Path, settings: list[str], argv: Sequence[str] = (sys.executable, "-m", "app")
) -> Iterator[tuple[str, int]]:
    """The service (`argv`: `python -m app`) on embedded `data`, `settings` (RECS_X=value)
    applied; yields its URL and pid."""
    backend = {"RECS_BACKEND": "embedded", "RECS_EMBEDDED_DATA_DIR": str(data)}
    with _service(backend, settings, argv) as answer:
        yield answer


@contextlib.contextmanager
def remote_service(data: Path, settings: list[str]) -> Iterator[tuple[str, int]]:
    """`python -m app` against the local stack, which must be up with `data` loaded in it
    (`make bench` sees to both); yields its URL and pid."""
    if not all(server.ready for server in stack.status()):
        raise SystemExit(f"the local stack is not up: run `make stack-up` and load {data}")
    backend = {**stack.client_env(), "RECS_BACKEND": "remote"}
    with _service(backend, settings, (sys.executable, "-m", "app")) as answer:
        yield answer


@contextlib.contextmanager
def _service(
    backend: dict[str, str], settings: list[str], argv: Sequence[str]
) -> Iterator[tuple[str, int]]:
    port = procs.free_port()
    env = procs.env_without_settings()
    env.update(
        backend,
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


def attack(
    targets: Path, seconds: float, rate: float | None, folder: Path, in_flight: int = 32
) -> list[Answer]:
    """rate None: closed loop with `in_flight` workers; else open loop at `rate` a second."""
    pace = (
        ["-rate=0", f"-workers={in_flight}", f"-max-workers={in_flight}"]
        if rate is None
        else [f"-rate={rate:.0f}"]
    )
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
        Answer(
            _epoch_s(row["timestamp"]) - start,
            int(row["code"]),
            row["latency"] / 1e9,
            row["code"] == 200 and b'"degraded":[]' not in base64.b64decode(row["body"] or ""),
        )
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
    # Goodput: whole 200s answered while the overload lasted, not those that came long after.
    served = sum(1 for a in answers if _good(a) and a.sent_s + a.latency_s <= seconds)
    shed = [a.latency_s for a in answers if a.status == 503]
    lost = sum(1 for a in answers if a.status == 0)
    other = len(answers) - len(ok) - len(shed) - lost
    return {
        "offered": len(answers) / seconds,
        "goodput": served / seconds,
        "goodput_of_knee": served / seconds / knee,
        "ok_p99_ms": p99(ok) * 1000,
        "degraded_share": sum(a.degraded for a in answers) / max(1, len(ok)),
        "shed_share": len(shed) / max(1, len(answers)),
        "shed_p99_ms": p99(shed) * 1000,
        "no_answer": lost,
        "other_status": other,
    }


def _good(answer: Answer) -> bool:
    return answer.status == 200 and not answer.degraded


def _recovery_s(answers: list[Answer], normal_p99: float) -> float:
    """Seconds until the first 0.5 s window whose p99 is within twice the normal one."""
    windows: dict[int, list[float]] = {}
    for a in answers:
        windows.setdefault(int(a.sent_s / 0.5), []).append(a.latency_s if a.status == 200 else 30.0)
    for index in sorted(windows):
        if p99(windows[index]) <= 2 * normal_p99:
            return index * 0.5
    return float("inf")


COLUMNS = (
    "mode", "endpoint", "knee", "offered", "goodput", "of knee", "200 p99", "degraded",
    "503s", "503 p99", "no answer", "other", "recovery",
)  # fmt: skip


def _endpoint_rows(
    mode: str, url: str, endpoint: str, seconds: float, folder: Path
) -> list[list[str]]:
    """The knee of `endpoint`, then one row of `COLUMNS` per overload."""
    targets = folder / f"{endpoint}.txt"
    paths = (
        [f"/v1/users/user-{n}/recommendations" for n in range(1, 501)]
        if endpoint == "feed"
        else [f"/v1/items/item-{n}/similar" for n in range(1, 501)]
    )
    targets.write_text("".join(f"GET {url}{p}\n" for p in paths))
    attack(targets, 3, None, folder)  # warm every id
    knee, closed = 0.0, list[Answer]()
    for in_flight in (32,) if mode == "embedded" else (32, 64, 128):
        answers = attack(targets, seconds, None, folder, in_flight)
        rate = sum(1 for a in answers if _good(a)) / seconds
        if rate > knee or not closed:
            knee, closed = rate, answers
    if not knee:
        statuses = Counter("degraded" if a.degraded else a.status for a in closed)
        raise SystemExit(
            f"{mode} {endpoint}: no whole 200 in the closed loop ({dict(statuses)}); "
            "is the demo loaded in the stack (`recs demo load`)?"
        )
    normal = attack(targets, 5, knee * 0.5, folder)
    normal_p99 = p99([a.latency_s for a in normal if a.status == 200])
    print(f"{mode} {endpoint}: knee {knee:.0f} req/s; at 50 %: p99 {normal_p99 * 1000:.1f} ms")
    rows = []
    for factor in (1.5, 2.0):
        over = attack(targets, seconds, knee * factor, folder)
        after = attack(targets, 5, knee * 0.5, folder)
        s = _summary(over, seconds, knee)
        row = [
            mode, endpoint, f"{knee:.0f}", f"{s['offered']:.0f}", f"{s['goodput']:.0f}",
            f"{s['goodput_of_knee']:.0%}", f"{s['ok_p99_ms']:.1f} ms",
            f"{s['degraded_share']:.0%}", f"{s['shed_share']:.0%}",
            f"{s['shed_p99_ms']:.1f} ms", f"{s['no_answer']:.0f}", f"{s['other_status']:.0f}",
            f"{_recovery_s(after, normal_p99):.1f} s",
        ]  # fmt: skip
        print("  " + "  ".join(f"{c}={v}" for c, v in zip(COLUMNS[3:], row[3:], strict=True)))
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("data/demo"))
    parser.add_argument("--modes", default="embedded", help="embedded, remote or both")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--set", action="append", default=[], metavar="RECS_X=value")
    parser.add_argument("--endpoints", default="feed,similar")
    parser.add_argument("--report", type=Path, help="also write the table here (Markdown)")
    args = parser.parse_args(argv)
    modes = args.modes.split(",")
    if unknown := set(modes) - {"embedded", "remote"}:
        parser.error(f"--modes: unknown {', '.join(sorted(unknown))}")
    rows: list[list[str]] = []
    for mode in modes:
        service = embedded_service if mode == "embedded" else remote_service
        with service(args.data, args.set) as (url, _), tempfile.TemporaryDirectory() as tmp:
            for endpoint in args.endpoints.split(","):
                rows += _endpoint_rows(mode, url, endpoint, args.seconds, Path(tmp))
    if args.report:
        lines = [
            "| " + " | ".join(COLUMNS) + " |",
            "|" + " --- |" * len(COLUMNS),
            *("| " + " | ".join(row) + " |" for row in rows),
        ]
        args.report.parent.mkdir(parents=True, exist_ok=True)
        settings = f"settings: {' '.join(args.set)}\n\n" if args.set else ""
        args.report.write_text(
            f"# Past saturation ({datetime.now().astimezone():%Y-%m-%d %H:%M %Z})\n\n"
            f"`python -m loadtests.overload`, {args.seconds:g} s a stage.\n{settings}\n"
            + "\n".join(lines)
            + "\n"
        )
        print(f"report: {args.report}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

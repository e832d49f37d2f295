"""Memory and feed throughput of `python -m app` with 1, 2, ... workers, on embedded data.

    python -m loadtests.workers --data DIR [--workers 1 2] [--duration 10] [--connections 32]
        [--vegeta-cpus 1]

For each worker count: the service on a free port (`RECS_BACKEND=embedded`), ready once
every worker answers /metrics; its memory (RSS and PSS from /proc/<pid>/smaps_rollup,
parent and workers summed) after start-up; a closed-loop vegeta attack on the feed
(`-rate=0`, `--connections` requests in flight, ids with Zipf skew as in the bench) pinned
to `--vegeta-cpus` with taskset; then the memory again (serving writes reference counts
into shared pages, which copies them) and each process's share of the server's CPU time.
docs/deployment.md#workers has the figures. Linux only (/proc, taskset).
"""

from __future__ import annotations

import argparse
import re
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from loadtests.bench import vegeta, workload
from scripts import procs, tools

REPO = Path(__file__).resolve().parents[1]
VEGETA = tools.path("vegeta")
PROCESS_ID = re.compile(rb"^recs_process_id ([0-9.e+]+)$", re.MULTILINE)
API_KEY = "workers-bench-key"
WARM_UP_S = 3.0


@dataclass(frozen=True)
class Memory:
    rss_kb: int
    pss_kb: int
    private_kb: int

    @classmethod
    def of(cls, pid: int) -> Memory:
        fields = {}
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
            name, value = line.split(":", 1)
            fields[name] = int(value.split()[0])
        private = fields["Private_Clean"] + fields["Private_Dirty"]
        return cls(fields["Rss"], fields["Pss"], private)


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
                found.append(int(entry.name))
    return sorted(found)


def children_cpu_s() -> float:
    """CPU seconds of the children this process has waited for (the vegeta runs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _mb(kb: int) -> str:
    return f"{kb / 1024:.0f}"


def start(data: Path, workers: int, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = procs.free_port()
    env = {
        **procs.env_without_settings(),
        "RECS_BACKEND": "embedded",
        "RECS_EMBEDDED_DATA_DIR": str(data),
        "RECS_CURSOR_SECRET": "workers-bench",
        "RECS_API_KEYS": API_KEY,
        "RECS_LOG_LEVEL": "warning",
        "RECS_PORT": str(port),
        "RECS_WORKERS": str(workers),
    }
    url = f"http://127.0.0.1:{port}"
    seen: set[int] = set()

    def every_worker_answered() -> bool:
        try:
            match = PROCESS_ID.search(httpx.get(f"{url}/metrics", timeout=2).content)
        except httpx.TransportError:
            return False
        if match:
            seen.add(int(float(match.group(1))))
        return len(seen) == workers

    try:
        process = procs.start(
            [sys.executable, "-m", "app"],
            ready=every_worker_answered,
            timeout_s=180,
            name=f"the service with {workers} workers",
            log=log,
            env=env,
            cwd=REPO,
        )
    except procs.StartError as exc:
        raise SystemExit(str(exc)) from None
    return process, url


@dataclass(frozen=True)
class Usage:
    """CPU seconds spent so far: by each server process, by vegeta, by the whole box."""

    at_s: float
    server_s: tuple[float, ...]
    vegeta_s: float
    box_s: float

    @classmethod
    def read(cls, pids: list[int]) -> Usage:
        server = tuple(procs.cpu_seconds(pid) for pid in pids)
        busy, _ = procs.box_cpu_seconds()
        return cls(time.monotonic(), server, children_cpu_s(), busy)

    def cores_since(self, start: Usage) -> tuple[float, float, float]:
        """Cores used since `start`: the server, vegeta, and the rest of the box."""
        wall = self.at_s - start.at_s
        server = (sum(self.server_s) - sum(start.server_s)) / wall
        vegeta = (self.vegeta_s - start.vegeta_s) / wall
        return server, vegeta, (self.box_s - start.box_s) / wall - server - vegeta


def attack(
    targets: Path, duration_s: float, connections: int, cpus: str, out: Path, pids: list[int]
) -> tuple[vegeta.Result, Usage, Usage]:
    plan = vegeta.Attack.closed(targets, connections, duration_s)
    argv = ["taskset", "-c", cpus, *plan.argv(VEGETA, out)]
    before = Usage.read(pids)
    subprocess.run(argv, env=vegeta.attack_env(), check=True, capture_output=True)
    after = Usage.read(pids)
    encoded = subprocess.run(
        [str(VEGETA), "encode", "--to", "csv", str(out)], check=True, capture_output=True, text=True
    )
    return vegeta.parse_csv(encoded.stdout.splitlines(), plan), before, after


def measure(args: argparse.Namespace, count: int, work: Path) -> dict[str, str]:
    process, url = start(args.data, count, work / f"service-{count}.log")
    try:
        pids = [process.pid] if count == 1 else [process.pid, *children(process.pid)]
        idle = [Memory.of(pid) for pid in pids]
        dataset = workload.Dataset.from_dir(args.data)
        targets = workload.write_targets(
            dataset, url, work / f"targets-{count}", api_key=API_KEY, now_ms=int(time.time() * 1e3)
        )["feed"]
        attack(targets, WARM_UP_S, args.connections, args.vegeta_cpus, work / "warm.bin", pids)
        result, before, after = attack(
            targets,
            args.duration,
            args.connections,
            args.vegeta_cpus,
            work / f"feed-{count}.bin",
            pids,
        )
        loaded = [Memory.of(pid) for pid in pids]
    finally:
        procs.stop(process, grace_s=60)
    cpu = [b - a for a, b in zip(before.server_s, after.server_s, strict=True)]
    cores = after.cores_since(before)
    return {
        "workers": str(count),
        "PSS idle (MB)": _mb(sum(m.pss_kb for m in idle)),
        "PSS after load (MB)": _mb(sum(m.pss_kb for m in loaded)),
        "RSS after load (MB)": _mb(sum(m.rss_kb for m in loaded)),
        "per process PSS / private (MB)": ", ".join(
            f"{_mb(m.pss_kb)} / {_mb(m.private_kb)}" for m in loaded
        ),
        "feed (req/s)": f"{result.ok / result.wall_s:.0f}",
        "per server core (req/s)": f"{result.ok / result.wall_s / cores[0]:.0f}",
        "p50 / p99 (ms)": f"{result.percentile(50):.1f} / {result.percentile(99):.1f}",
        "errors": str(result.failed),
        "CPU share per process": ", ".join(f"{c / max(sum(cpu), 1e-9):.0%}" for c in cpu),
        "cores: server / vegeta / rest of the box": " / ".join(f"{c:.2f}" for c in cores),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="embedded data folder")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of attack")
    parser.add_argument("--connections", type=int, default=32, help="requests in flight")
    parser.add_argument("--vegeta-cpus", default="1", help="taskset CPU list for vegeta")
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="recs-workers-") as work:
        for count in args.workers:
            rows.append(measure(args, count, Path(work)))
            print(rows[-1], flush=True)
    print()
    print("| " + " | ".join(rows[0]) + " |")
    print("|" + " --- |" * len(rows[0]))
    for row in rows:
        print("| " + " | ".join(row.values()) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

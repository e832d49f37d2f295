"""What the benchmark sends: vegeta target files, Zipf-skewed ids like loadtests/locustfile.py.

One file per endpoint and the floor, drawn once from a fixed seed, so every run and variant
gets the same requests. Events go to users outside the demo (`bench-user-*`) with fixed ids
and timestamps: the feed's histories never change. `TargetStream` makes the attacks on one
file one stream (vegeta would start each at the file's head).
"""

from __future__ import annotations

import base64
import json
import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from loadtests.zipf import SEGMENT_ZIPF_S, ZIPF_S, Zipf

SEED: Final = 20_240_601
TARGETS_PER_FILE: Final = 20_000
ENDPOINTS: Final = ("feed", "similar", "popular", "events")
FLOOR: Final = "floor"
BENCH_USERS: Final = 1_000


@dataclass(frozen=True)
class Dataset:
    """What the ids are drawn from: the demo's sizes, categories and regions."""

    path: Path
    users: int
    items: int
    interactions: int
    categories: tuple[str, ...]
    regions: tuple[str, ...]

    @classmethod
    def from_dir(cls, path: Path) -> Dataset:
        manifest = json.loads((path / "manifest.json").read_text())
        counts = manifest["counts"]
        categories: Counter[str] = Counter()
        regions: Counter[str] = Counter()
        with (path / "catalog.jsonl").open("rb") as lines:
            for line in lines:
                if line.strip():
                    item = json.loads(line)
                    categories[item.get("category") or ""] += 1
                    regions[item.get("region") or ""] += 1
        for counter in (categories, regions):
            counter.pop("", None)
        return cls(
            path,
            int(counts["users"]),
            int(counts["items"]),
            int(counts.get("interactions", 0)),
            _by_count(categories),
            _by_count(regions),
        )

    def describe(self) -> str:
        return (
            f"{self.items:,} items, {self.users:,} users, {self.interactions:,} interactions "
            f"({len(self.categories)} categories, {len(self.regions)} regions; `{self.path}`)"
        )


def _by_count(counter: Counter[str]) -> tuple[str, ...]:
    return tuple(name for name, _ in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])))


def write_targets(
    dataset: Dataset,
    base_url: str,
    out_dir: Path,
    *,
    api_key: str,
    now_ms: int,
    count: int = TARGETS_PER_FILE,
) -> dict[str, Path]:
    """One targets file per endpoint (and the floor) for a server at `base_url`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    users = Zipf(dataset.users, ZIPF_S)
    items = Zipf(dataset.items, ZIPF_S)
    categories = Zipf(len(dataset.categories), SEGMENT_ZIPF_S) if dataset.categories else None
    regions = Zipf(len(dataset.regions), SEGMENT_ZIPF_S) if dataset.regions else None
    get = {"method": "GET"}
    auth = {
        "Authorization": [f"Bearer {api_key}"],
        "Content-Type": ["application/json"],
    }
    paths: dict[str, Path] = {}
    for endpoint in (*ENDPOINTS, FLOOR):
        rng = random.Random(f"{SEED}-{endpoint}")
        lines: list[str] = []
        for n in range(count if endpoint != FLOOR else 1):
            if endpoint == "feed":
                url = f"/v1/users/user-{users.rank(rng)}/recommendations?limit=20"
                target: dict[str, object] = {**get, "url": base_url + url}
            elif endpoint == "similar":
                url = f"/v1/items/item-{items.rank(rng)}/similar?limit=12"
                target = {**get, "url": base_url + url}
            elif endpoint == "popular":
                query = "limit=20"
                if categories is not None and rng.random() < 0.4:
                    query += f"&category={dataset.categories[categories.rank(rng) - 1]}"
                if regions is not None and rng.random() < 0.3:
                    query += f"&region={dataset.regions[regions.rank(rng) - 1]}"
                target = {**get, "url": f"{base_url}/v1/popular?{query}"}
            elif endpoint == "events":
                event = {
                    "event_id": f"bench-{n}",
                    "user_id": f"bench-user-{rng.randrange(BENCH_USERS)}",
                    "item_id": f"item-{items.rank(rng)}",
                    "event_type": "view",
                    "ts_ms": now_ms - (count - n),
                    "surface": "bench",
                }
                body = json.dumps({"events": [event]}).encode()
                target = {
                    "method": "POST",
                    "url": f"{base_url}/v1/events",
                    "header": auth,
                    "body": base64.b64encode(body).decode(),
                }
            else:
                target = {**get, "url": f"{base_url}/bench/floor"}
            lines.append(json.dumps(target, separators=(",", ":")))
        path = out_dir / f"{endpoint}.jsonl"
        path.write_text("\n".join(lines) + "\n")
        paths[endpoint] = path
    return paths


class TargetStream:
    """The attacks on one targets file as one stream of requests: `next_file` is the file
    rotated to where the stream stands (the file itself at the start), `advance` moves it on
    by the requests an attack sent. vegeta takes the targets of a file in order, one per
    request, so an attack of N requests used the next N lines."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rotated = path.with_name(f"{path.stem}-stream{path.suffix}")
        self._lines = [line for line in path.read_text().splitlines() if line.strip()]
        if not self._lines:
            raise ValueError(f"{path}: no targets")
        self.position = 0

    def next_file(self) -> Path:
        if self.position == 0:
            return self.path
        at = self.position
        rotated = self._lines[at:] + self._lines[:at]
        self.rotated.write_text("".join(f"{line}\n" for line in rotated))
        return self.rotated

    def advance(self, sent: int) -> None:
        self.position = (self.position + sent) % len(self._lines)


def distinct_requests(targets: Path) -> Path:
    """The requests of a targets file, each once, in order of first appearance: a warm-up that
    sends them all reaches every cache entry the measurements will use (the file is longer
    than a warm-up, and a timed one covers only its head)."""
    distinct = targets.with_name(f"{targets.stem}-distinct{targets.suffix}")
    # Written every time: a reused work dir holds an older file naming another server's port.
    lines = dict.fromkeys(line for line in targets.read_text().splitlines() if line.strip())
    distinct.write_text("".join(f"{line}\n" for line in lines))
    return distinct

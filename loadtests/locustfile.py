"""Locust load test of the recommendations service: a realistic mix, checked against targets.

Traffic (task weights; see docs/loadtest.md):

- 60 `feed`: `GET /v1/users/{user_id}/recommendations`, sometimes filtered by category or
  region, sometimes with an `exclude` list, and a quarter of the time followed by the second
  page through `next_cursor` (also named `feed`);
- 30 `similar`: `GET /v1/items/{item_id}/similar`, sometimes with `region` or `user_id`;
- 10 `popular`: `GET /v1/popular`, sometimes by category and/or region;
- 3 `events`: `POST /v1/events` with 1-5 events, only when an API key is given
  (`--api-key` or `RECS_LOADTEST_API_KEY`).

User and item ids are Zipf-distributed (s = 1.1, `user-1` and `item-1` the hottest) over
`user-1..user-N` and `item-1..item-M`: N and M come from `--dataset DIR` (the demo's
manifest.json; categories and regions from its catalog.jsonl) or `--user-ids` / `--item-ids`
(`--users` is Locust's own number of simulated users), else the demo's defaults.

A request fails when its status is not 200 or (GET) its body has no `items` list. When the run
ends, p99 per endpoint and the overall error rate are compared with `loadtests/targets.toml`
(or `--targets FILE`, `--p99 feed=40,similar=20`, `--max-error-rate 0.5`): the table is printed
last and the exit code is 1 when a target is missed or an endpoint with a target got no
requests. `--warmup 20s` leaves the run's first 20 s out of the statistics and the verdict
(a service that just started reads every neighbour list and catalog item once). Example (the
service on port 8000, e.g. `make dev`):

    locust -f loadtests/locustfile.py --headless -H http://127.0.0.1:8000 -u 50 -r 10 -t 80s \
        --warmup 20s --dataset data/demo --csv reports/locust --html reports/locust.html
"""

from __future__ import annotations

import json
import random
import sys
import time
import tomllib
import uuid
from argparse import Namespace
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Final
from urllib.parse import urlencode

import gevent
from locust import FastHttpUser, between, events, task
from locust import log as locust_log
from locust.argument_parser import LocustArgumentParser, timespan
from locust.env import Environment
from locust.runners import WorkerRunner
from locust.stats import CSV_STATS_INTERVAL_SEC, RequestStats, StatsEntry

from app.domain import EventType
from app.offline.demo import CATEGORY_NAMES, DEFAULT_ITEMS, DEFAULT_USERS, REGION_NAMES
from loadtests.zipf import SEGMENT_ZIPF_S, ZIPF_S, Zipf

# --- The mix -----------------------------------------------------------------------------

ENDPOINTS: Final = {"feed": "GET", "similar": "GET", "popular": "GET", "events": "POST"}
"""Request name (what the stats and the targets are keyed by) → HTTP method."""

FEED_WEIGHT: Final = 60
SIMILAR_WEIGHT: Final = 30
POPULAR_WEIGHT: Final = 10
EVENTS_WEIGHT: Final = 3
"""Task weights: events only run with an API key (3 per 100 reads)."""

FEED_LIMIT: Final = 20
FEED_CATEGORY_SHARE: Final = 0.15
FEED_REGION_SHARE: Final = 0.15
FEED_EXCLUDE_SHARE: Final = 0.20
FEED_NEXT_PAGE_SHARE: Final = 0.25
SIMILAR_LIMIT: Final = 12
SIMILAR_REGION_SHARE: Final = 0.25
SIMILAR_USER_SHARE: Final = 0.30
POPULAR_LIMIT: Final = 20
POPULAR_CATEGORY_SHARE: Final = 0.40
POPULAR_REGION_SHARE: Final = 0.30
EVENT_TYPES: Final = tuple(event.value for event in EventType)
EVENT_TYPE_WEIGHTS: Final = (80, 8, 5, 4, 3)
EVENT_BATCH_SIZES: Final = (1, 2, 3, 4, 5)
EVENT_BATCH_WEIGHTS: Final = (50, 20, 15, 10, 5)
SURFACES: Final = ("feed", "similar", "popular", "search")

# Without --dataset: the demo's defaults (app/offline/demo.py).
DEMO_USERS: Final = DEFAULT_USERS
DEMO_ITEMS: Final = DEFAULT_ITEMS
DEMO_CATEGORIES: Final = CATEGORY_NAMES
DEMO_REGIONS: Final = REGION_NAMES

DEFAULT_TARGETS_FILE: Final = Path(__file__).with_name("targets.toml")
API_KEY_ENV: Final = "RECS_LOADTEST_API_KEY"


class ConfigError(ValueError):
    """A bad option, targets file or dataset: the run does not start (exit code 2)."""


# --- Ids and segments --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Dataset:
    users: int
    items: int
    categories: tuple[str, ...]
    """Most items first."""
    regions: tuple[str, ...]

    @classmethod
    def from_dir(cls, path: Path) -> Dataset:
        """Sizes from the demo's manifest.json; categories and regions from the manifest when
        it lists them, else from catalog.jsonl (ordered by item count)."""
        try:
            manifest = json.loads((path / "manifest.json").read_text())
            counts = manifest["counts"]
            users, items = int(counts["users"]), int(counts["items"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"--dataset {path}: cannot read manifest.json: {exc}") from None
        if users < 1 or items < 1:
            raise ConfigError(f"--dataset {path}: no users or no items ({users}, {items})")
        categories, regions = manifest.get("categories"), manifest.get("regions")
        if not (isinstance(categories, list) and isinstance(regions, list)):
            categories, regions = _segments_from_catalog(path / "catalog.jsonl")
        return cls(users, items, tuple(categories), tuple(regions))


DEFAULT_DATASET: Final = Dataset(DEMO_USERS, DEMO_ITEMS, DEMO_CATEGORIES, DEMO_REGIONS)


def _segments_from_catalog(catalog: Path) -> tuple[list[str], list[str]]:
    categories: Counter[str] = Counter()
    regions: Counter[str] = Counter()
    try:
        with catalog.open("rb") as lines:
            for line in lines:
                if line.strip():
                    item = json.loads(line)
                    categories[item.get("category") or ""] += 1
                    regions[item.get("region") or ""] += 1
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {catalog}: {exc}") from None
    categories.pop("", None)
    regions.pop("", None)
    return _by_count(categories), _by_count(regions)


def _by_count(counter: Counter[str]) -> list[str]:
    return [name for name, _ in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))]


@dataclass(frozen=True, slots=True)
class Workload:
    """What the simulated users draw from; built from the options once per run."""

    dataset: Dataset
    api_key: str | None
    _users: Zipf = field(repr=False)
    _items: Zipf = field(repr=False)
    _categories: Zipf | None = field(repr=False)
    _regions: Zipf | None = field(repr=False)

    @classmethod
    def of(cls, dataset: Dataset, api_key: str | None) -> Workload:
        def segments(names: Sequence[str]) -> Zipf | None:
            return Zipf(len(names), SEGMENT_ZIPF_S) if names else None

        return cls(
            dataset,
            api_key,
            Zipf(dataset.users, ZIPF_S),
            Zipf(dataset.items, ZIPF_S),
            segments(dataset.categories),
            segments(dataset.regions),
        )

    def user_id(self, rng: random.Random) -> str:
        return f"user-{self._users.rank(rng)}"

    def item_id(self, rng: random.Random) -> str:
        return f"item-{self._items.rank(rng)}"

    def category(self, rng: random.Random) -> str | None:
        return self.dataset.categories[self._categories.rank(rng) - 1] if self._categories else None

    def region(self, rng: random.Random) -> str | None:
        return self.dataset.regions[self._regions.rank(rng) - 1] if self._regions else None


def workload_from_options(options: Namespace) -> Workload:
    dataset = Dataset.from_dir(Path(options.dataset)) if options.dataset else DEFAULT_DATASET
    users = options.user_ids or dataset.users
    items = options.item_ids or dataset.items
    if users < 1 or items < 1:
        raise ConfigError(f"need at least one user id and one item id, got {users} and {items}")
    dataset = Dataset(users, items, dataset.categories, dataset.regions)
    return Workload.of(dataset, options.api_key or None)


# --- Targets -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Targets:
    p99_ms: Mapping[str, float]
    """Request name → p99 target in ms; endpoints without a target are reported, not judged."""
    max_error_rate_percent: float
    source: str

    @classmethod
    def load(cls, path: Path) -> Targets:
        try:
            raw = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"targets file {path}: {exc}") from None
        unknown = set(raw) - {"max_error_rate_percent", "p99_ms"}
        if unknown:
            raise ConfigError(f"targets file {path}: unknown keys {sorted(unknown)}")
        p99 = raw.get("p99_ms", {})
        if not isinstance(p99, dict):
            raise ConfigError(f"targets file {path}: [p99_ms] must be a table")
        return cls(
            {name: _positive(f"p99_ms.{name}", value) for name, value in p99.items()},
            _non_negative("max_error_rate_percent", raw.get("max_error_rate_percent", 0.0)),
            str(path),
        ).checked()

    def overridden(self, p99: str | None, max_error_rate: float | None) -> Targets:
        """`--p99 feed=40,similar=20` (`name=off` drops a target), `--max-error-rate 0.5`."""
        p99_ms = dict(self.p99_ms)
        source = self.source
        for part in (p99 or "").split(","):
            if not part.strip():
                continue
            name, sep, value = (s.strip() for s in part.partition("="))
            if not sep:
                raise ConfigError(f"--p99: expected name=ms pairs, got {part!r}")
            if value.lower() == "off":
                p99_ms.pop(name, None)
            else:
                p99_ms[name] = _positive(f"--p99 {name}", value)
        if p99:
            source += f", --p99 {p99}"
        error_rate = self.max_error_rate_percent
        if max_error_rate is not None:
            error_rate = _non_negative("--max-error-rate", max_error_rate)
            source += f", --max-error-rate {max_error_rate}"
        return Targets(p99_ms, error_rate, source).checked()

    def checked(self) -> Targets:
        unknown = set(self.p99_ms) - set(ENDPOINTS)
        if unknown:
            known = ", ".join(ENDPOINTS)
            raise ConfigError(
                f"p99 targets for unknown endpoints {sorted(unknown)}; known: {known}"
            )
        return self


def _positive(what: str, value: Any) -> float:
    number = _number(what, value)
    if number <= 0:
        raise ConfigError(f"{what} must be positive, got {value!r}")
    return number


def _non_negative(what: str, value: Any) -> float:
    number = _number(what, value)
    if number < 0:
        raise ConfigError(f"{what} must not be negative, got {value!r}")
    return number


def _number(what: str, value: Any) -> float:
    if isinstance(value, bool):
        raise ConfigError(f"{what}: expected a number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{what}: expected a number, got {value!r}") from None


def targets_from_options(options: Namespace) -> Targets:
    path = Path(options.targets) if options.targets else DEFAULT_TARGETS_FILE
    return Targets.load(path).overridden(options.p99, options.max_error_rate)


def warmup_from_options(options: Namespace) -> int:
    """`--warmup` in seconds (0: none); it must leave some of `--run-time` to judge."""
    warmup_s = int(options.warmup or 0)
    if warmup_s and options.run_time and warmup_s >= options.run_time:
        run_s = options.run_time
        raise ConfigError(f"--warmup of {warmup_s} s leaves nothing of --run-time ({run_s} s)")
    return warmup_s


# --- Verdict -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Row:
    endpoint: str
    requests: int
    failures: int
    p50_ms: int | None
    p99_ms: int | None
    target_ms: float | None
    result: str
    """PASS, MISS, MISS (no requests), SKIP (...) or "" (no target)."""


@dataclass(frozen=True, slots=True)
class Verdict:
    rows: tuple[Row, ...]
    total: Row
    error_rate_percent: float
    error_rate_result: str
    problems: tuple[str, ...]
    targets: Targets
    warmup_s: int = 0
    """The run's first seconds, left out of `rows` and `total`."""

    @property
    def passed(self) -> bool:
        return not self.problems

    def table(self) -> str:
        header = (
            f"{'endpoint':<10} {'requests':>9} {'failures':>9} {'p50 ms':>7} {'p99 ms':>7} "
            f"{'target ms':>10}  result"
        )
        judged = f"; the first {self.warmup_s} s not judged" if self.warmup_s else ""
        lines = [f"Load-test targets ({self.targets.source}{judged})", header, "-" * len(header)]
        lines += [_format_row(row) for row in (*self.rows, self.total)]
        lines.append("-" * len(header))
        lines.append(
            f"error rate {self.error_rate_percent:.3f} % ({self.total.failures} of "
            f"{self.total.requests} requests failed), target <= "
            f"{self.targets.max_error_rate_percent:g} %: {self.error_rate_result}"
        )
        if self.passed:
            lines.append("RESULT: PASS, every target met")
        else:
            lines.append("RESULT: FAIL: " + "; ".join(self.problems))
        return "\n".join(lines)


def _format_row(row: Row) -> str:
    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:g}"

    return (
        f"{row.endpoint:<10} {row.requests:>9} {row.failures:>9} {ms(row.p50_ms):>7} "
        f"{ms(row.p99_ms):>7} {ms(row.target_ms):>10}  {row.result}"
    ).rstrip()


def judge(
    stats: RequestStats,
    targets: Targets,
    *,
    events_enabled: bool,
    exceptions: int,
    warmup: Warmup | None = None,
) -> Verdict:
    """Compares the run's stats with the targets. Locust keeps response times rounded (to
    the ms below 100 ms, to 10 ms below 1 s), so the p99 compared is the rounded one, the
    same number its CSV and HTML reports show."""
    rows: list[Row] = []
    problems: list[str] = []
    for name, method in ENDPOINTS.items():
        entry: StatsEntry | None = stats.entries.get((name, method))
        requests = entry.num_requests if entry else 0
        failures = entry.num_failures if entry else 0
        p50 = entry.get_response_time_percentile(0.5) if entry and requests else None
        p99 = entry.get_response_time_percentile(0.99) if entry and requests else None
        target = targets.p99_ms.get(name)
        if name == "events" and not events_enabled:
            result = "SKIP (no API key)" if requests == 0 else ""
        elif target is None:
            result = ""
        elif requests == 0 or p99 is None:
            result = "MISS (no requests)"
            problems.append(f"{name} got no requests")
        elif p99 > target:
            result = "MISS"
            problems.append(f"{name} p99 {p99} ms > {target:g} ms")
        else:
            result = "PASS"
        rows.append(Row(name, requests, failures, p50, p99, target, result))

    total = stats.total
    has_requests = total.num_requests > 0
    total_row = Row(
        "all",
        total.num_requests,
        total.num_failures,
        total.get_response_time_percentile(0.5) if has_requests else None,
        total.get_response_time_percentile(0.99) if has_requests else None,
        None,
        "",
    )
    error_rate = 100.0 * total.fail_ratio
    if not has_requests:
        error_rate_result = "MISS (no requests)"
        problems.append("no requests at all")
    elif error_rate > targets.max_error_rate_percent:
        error_rate_result = "MISS"
        problems.append(
            f"error rate {error_rate:.3f} % > {targets.max_error_rate_percent:g} %"
            " (see the failures report)"
        )
    else:
        error_rate_result = "PASS"
    if exceptions:
        problems.append(f"{exceptions} exceptions in tasks (a locustfile bug?)")
    if warmup is not None and not warmup.over:
        problems.append(f"the run ended within its {warmup.seconds} s warm-up")
    return Verdict(
        tuple(rows),
        total_row,
        error_rate,
        error_rate_result,
        tuple(problems),
        targets,
        warmup.seconds if warmup is not None else 0,
    )


# --- Locust wiring -----------------------------------------------------------------------


@events.init_command_line_parser.add_listener
def _add_options(parser: LocustArgumentParser) -> None:
    parser.add_argument(
        "--dataset",
        default="",
        help="Demo dataset folder (manifest.json, catalog.jsonl): id ranges, categories, regions.",
    )
    parser.add_argument(
        "--user-ids",
        type=int,
        default=0,
        help=f"Draw user ids from user-1..user-N (default: the dataset's, else {DEMO_USERS}).",
    )
    parser.add_argument(
        "--item-ids",
        type=int,
        default=0,
        help=f"Draw item ids from item-1..item-N (default: the dataset's, else {DEMO_ITEMS}).",
    )
    parser.add_argument(
        "--api-key",
        default="",
        env_var=API_KEY_ENV,
        is_secret=True,
        help=f"Bearer key for POST /v1/events (also ${API_KEY_ENV}); without one, no events.",
    )
    parser.add_argument(
        "--targets",
        default="",
        help=f"Targets file (default: {DEFAULT_TARGETS_FILE.name} next to this locustfile).",
    )
    parser.add_argument(
        "--p99",
        default="",
        help="Override p99 targets in ms, e.g. feed=40,similar=20 (name=off drops one).",
    )
    parser.add_argument(
        "--max-error-rate",
        type=float,
        default=None,
        help="Override the largest accepted error rate, in percent (e.g. 0.5).",
    )
    parser.add_argument(
        "--warmup",
        type=timespan,
        default=0,
        help="Leave the run's first part out of the statistics and the verdict, e.g. 20s.",
    )


@events.init.add_listener
def _on_init(environment: Environment, **_: Any) -> None:
    """Checks every option before the first request: a typo ends the run at once."""
    if environment.parsed_options is None:  # used as a library: the demo's defaults
        RecsUser.configure(Workload.of(DEFAULT_DATASET, None))
        return
    try:
        RecsUser.configure(workload_from_options(environment.parsed_options))
        if not isinstance(environment.runner, WorkerRunner):
            targets_from_options(environment.parsed_options)
            warmup_from_options(environment.parsed_options)
    except ConfigError as exc:
        print(f"locustfile: {exc}", file=sys.stderr, flush=True)
        sys.exit(2)
    # Locust arms --run-time with gevent.spawn_later, relative to the event loop's cached
    # clock, which has not moved since the imports (seconds on a busy box, by which a run would
    # end early): refresh it so a run lasts what -t says.
    gevent.get_hub().loop.update_now()


class Warmup:
    """The run's first `seconds`: when they are over, the statistics restart, so the verdict,
    the stats CSV and the HTML report hold only what came after (the stats history CSV keeps
    its earlier rows; its running totals restart). Requests in flight then count when they
    end."""

    def __init__(self, environment: Environment, seconds: int) -> None:
        self.seconds = seconds
        self.over = False
        self._stats = environment.stats
        self._timer = gevent.spawn_later(seconds, self._end)

    def cancel(self) -> None:
        self._timer.kill(block=False)

    def _end(self) -> None:
        self._stats.reset_all()
        self.over = True
        print(f"locustfile: warm-up of {self.seconds} s over, statistics restarted", flush=True)


_warmup: Warmup | None = None
"""The current run's warm-up, when it has one (set at each test start)."""


@events.test_start.add_listener
def _on_test_start(environment: Environment, **_: Any) -> None:
    """Again at each start: workers get the master's options, the web UI may have edited them.
    The warm-up is timed where the statistics are kept: here, or on the master (workers send
    theirs to it as they go)."""
    global _warmup
    options = environment.parsed_options
    if options is None:
        return
    RecsUser.configure(workload_from_options(options))
    if isinstance(environment.runner, WorkerRunner):
        return
    if _warmup is not None:
        _warmup.cancel()
    warmup_s = warmup_from_options(options)
    _warmup = Warmup(environment, warmup_s) if warmup_s else None


@events.quitting.add_listener
def _on_quitting(environment: Environment, **_: Any) -> None:
    """Judges the run and sets the exit code; the table is printed after Locust's own
    summary (on `quit`), so the verdict is the last thing on the screen."""
    runner = environment.runner
    if environment.parsed_options is None or runner is None or isinstance(runner, WorkerRunner):
        return
    verdict = judge(
        environment.stats,
        targets_from_options(environment.parsed_options),
        events_enabled=bool(environment.parsed_options.api_key),
        exceptions=sum(e["count"] for e in runner.exceptions.values()),
        warmup=_warmup,
    )
    if not verdict.passed:
        environment.process_exit_code = 1
    elif not locust_log.unhandled_greenlet_exception:
        # Failed requests within the error-rate target are not a failed run (Locust's own
        # rule would exit 1 on any failure).
        environment.process_exit_code = 0
    table = verdict.table()
    if environment.parsed_options.csv_prefix:
        # Locust rewrites the stats CSV once a second, not at exit, so it would miss the last
        # second of the run (locustio/locust#2299): give its writer one more turn.
        gevent.sleep(CSV_STATS_INTERVAL_SEC + 0.2)

    def print_table(**_: Any) -> None:
        print(f"\n{table}\n", flush=True)

    environment.events.quit.add_listener(print_table)


class RecsUser(FastHttpUser):
    """One client of the service: feed, similar and popular reads, and event posts."""

    wait_time = between(0.05, 0.25)
    connection_timeout = 5.0
    network_timeout = 10.0

    workload: ClassVar[Workload]
    """Set by `configure` before the first user starts."""

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        self.rng = random.Random()

    @classmethod
    def configure(cls, workload: Workload) -> None:
        cls.workload = workload
        reads = [task for task in cls.tasks if task is not RecsUser.post_events]
        cls.tasks = reads + [RecsUser.post_events] * (EVENTS_WEIGHT if workload.api_key else 0)

    @task(FEED_WEIGHT)
    def feed(self) -> None:
        w, rng = self.workload, self.rng
        params: dict[str, str | int] = {"limit": FEED_LIMIT}
        if rng.random() < FEED_CATEGORY_SHARE and (category := w.category(rng)):
            params["category"] = category
        if rng.random() < FEED_REGION_SHARE and (region := w.region(rng)):
            params["region"] = region
        if rng.random() < FEED_EXCLUDE_SHARE:
            params["exclude"] = ",".join({w.item_id(rng) for _ in range(rng.randint(1, 5))})
        path = f"/v1/users/{w.user_id(rng)}/recommendations"
        page = self._get_page("feed", path, params)
        cursor = page.get("next_cursor") if page else None
        if isinstance(cursor, str) and rng.random() < FEED_NEXT_PAGE_SHARE:
            self._get_page("feed", path, {**params, "cursor": cursor})

    @task(SIMILAR_WEIGHT)
    def similar(self) -> None:
        w, rng = self.workload, self.rng
        params: dict[str, str | int] = {"limit": SIMILAR_LIMIT}
        if rng.random() < SIMILAR_REGION_SHARE and (region := w.region(rng)):
            params["region"] = region
        if rng.random() < SIMILAR_USER_SHARE:
            params["user_id"] = w.user_id(rng)
        self._get_page("similar", f"/v1/items/{w.item_id(rng)}/similar", params)

    @task(POPULAR_WEIGHT)
    def popular(self) -> None:
        w, rng = self.workload, self.rng
        params: dict[str, str | int] = {"limit": POPULAR_LIMIT}
        if rng.random() < POPULAR_CATEGORY_SHARE and (category := w.category(rng)):
            params["category"] = category
        if rng.random() < POPULAR_REGION_SHARE and (region := w.region(rng)):
            params["region"] = region
        self._get_page("popular", "/v1/popular", params)

    def post_events(self) -> None:  # a task only with an API key: see configure
        w, rng = self.workload, self.rng
        user_id = w.user_id(rng)
        (size,) = rng.choices(EVENT_BATCH_SIZES, weights=EVENT_BATCH_WEIGHTS)
        now_ms = int(time.time() * 1000)
        batch: list[dict[str, str | int]] = []
        for event_type in rng.choices(EVENT_TYPES, weights=EVENT_TYPE_WEIGHTS, k=size):
            event: dict[str, str | int] = {
                "event_id": uuid.uuid4().hex,
                "user_id": user_id,
                "item_id": w.item_id(rng),
                "event_type": event_type,
                "ts_ms": now_ms - rng.randrange(5_000),
            }
            if rng.random() < 0.7:
                event["surface"] = rng.choice(SURFACES)
            batch.append(event)
        with self.client.post(
            "/v1/events",
            json={"events": batch},
            headers={"Authorization": f"Bearer {w.api_key}"},
            name="events",
            catch_response=True,
        ) as response:
            if response.status_code == 200:
                response.success()
            else:
                response.failure(_describe_error(response))

    def _get_page(
        self, name: str, path: str, params: dict[str, str | int]
    ) -> dict[str, Any] | None:
        """One GET; a failure unless 200 with an `items` list. Returns the body when it passed."""
        with self.client.get(
            f"{path}?{urlencode(params)}", name=name, catch_response=True
        ) as response:
            if response.status_code != 200:
                response.failure(_describe_error(response))
                return None
            try:
                body = response.json()
            except ValueError:
                response.failure("200 with a body that is not JSON")
                return None
            if not isinstance(body, dict) or not isinstance(body.get("items"), list):
                response.failure("200 without an items list")
                return None
            response.success()
            return body


def _describe_error(response: Any) -> str:
    """A short, low-cardinality failure message (Locust groups failures by it)."""
    status = response.status_code
    if not status:
        error = getattr(response, "error", None)
        return f"no response: {type(error).__name__ if error else 'connection error'}"
    code = ""
    try:
        body = response.json()
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            code = str(body["error"].get("code", ""))[:40]
    except Exception:  # any body: the status alone still names the failure
        code = ""
    return f"HTTP {status} {code}".rstrip()

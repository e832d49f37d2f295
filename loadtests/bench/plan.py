"""What a run measures and for how long: sections (`--only`), ablations, durations."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from loadtests.bench.variants import (
    DEFAULT_GC,
    NAIVE,
    NO_CATALOG_CACHE,
    NO_NEIGHBOUR_CACHE,
    PRODUCT,
    Pieces,
    Variant,
)

PRODUCT_ENDPOINTS: Final = ("floor", "feed", "similar", "popular", "events")
LOAD_FRACTIONS: Final = (0.5, 0.7)

# The knee of an open-loop ramp (`runner.Bench.saturate`).
PROBE_WORKERS: Final = 4  # the closed-loop probe that estimates where to start
BASELINE_SHARE: Final = 0.25  # the light step: unloaded median and p95 latencies
RAMP_START: Final = 0.6  # first ramp step, as a share of the probe's throughput
RAMP_FACTOR: Final = 1.3  # each step offers this much more
MIN_SERVED_SHARE: Final = 0.97  # of the offered rate, answered successfully within the step
MAX_HTTP_FAILURE_SHARE: Final = 0.001
MAX_DEGRADED_SHARE: Final = 0.01  # dependency failures per answer (each degrades one)
# A step is sustained while its median and p95 stay within this multiple of the light
# step's plus the slack (a 0.6 ms median may become 2 ms without a queue): the p95 catches a
# queue the median still hides.
KNEE_FACTOR: Final = 2.0
KNEE_SLACK_MS: Final = 2.0
KNEE_PRECISION: Final = 1.15  # narrow the last sustained and first failed rates to this ratio
# The product's own runs are measured again once when more than DISTURBED_SHARE of HTTP
# failures or degraded answers show another job disturbing the shared stack (or its ramp
# stopped on those under RETRY_KNEE_SHARE of the closed-loop probe).
DISTURBED_SHARE: Final = 0.05
RETRY_KNEE_SHARE: Final = 0.5
RETRY_PAUSE_S: Final = 5.0
# Open-loop attacks never hold more requests in flight (RECS_MAX_IN_FLIGHT is 256): a
# collapsing server must not drown the box in sockets.
OPEN_LOOP_MAX_WORKERS: Final = 512
# The warm-up sends each distinct request of the targets once: enough workers to fill the
# caches, few enough that a variant which blocks its loop does not open its breakers first.
WARMUP_WORKERS: Final = 2


@dataclass(frozen=True)
class Durations:
    warmup_s: float = 40.0  # at most; the one pass usually ends sooner
    probe_s: float = 3.0
    ramp_step_s: float = 2.5
    settle_s: float = 1.0  # pause after a failed step: queues drain, breakers close
    ramp_max_steps: int = 8
    ramp_refinements: int = 3
    # The fixed-rate runs decide the p99 targets: enough answers that one slow second of the
    # shared box does not set the p99 alone.
    fixed_s: float = 30.0
    ablation_fixed_s: float = 7.0
    profile_s: float = 12.0
    scylla_reps: int = 80
    catalog_calls: int = 600
    dynamodb_calls: int = 400
    serialization_loops: int = 2000


FULL: Final = Durations()
QUICK: Final = Durations(
    warmup_s=1.0,
    probe_s=1.5,
    ramp_step_s=1.5,
    settle_s=0.5,
    ramp_max_steps=2,
    ramp_refinements=1,
    fixed_s=1.5,
    ablation_fixed_s=2.0,
    profile_s=2.0,
    scylla_reps=5,
    catalog_calls=30,
    dynamodb_calls=20,
    serialization_loops=50,
)


@dataclass(frozen=True)
class Ablation:
    name: str
    title: str
    what: str
    variants: tuple[Variant, ...]  # the optimized one first
    endpoints: tuple[str, ...] = ("feed",)
    closed_loop_repeats: int = 0  # extra closed-loop probes, variants alternating
    # Fixed-rate runs of slow variants last longer, to collect about this many requests (so
    # that a p99 is not the slowest of a few dozen), but at most max_fixed_factor × the base.
    min_fixed_requests: int = 400
    max_fixed_factor: float = 3.0
    histograms: bool = False  # latency histograms and GC at the common load


NB_OFF = PRODUCT.with_env("batched, no neighbour cache", NO_NEIGHBOUR_CACHE)
# For ablations of a per-request cost of a few %: catalog entries that do not expire during
# the run, so that catalog misses (a catalog call costs more than the whole difference) do not
# differ between the variants and blur it.
STEADY_CATALOG: Final = {"RECS_CATALOG_CACHE_TTL_S": "3600"}

ABLATIONS: Final = (
    Ablation(
        "scylla",
        "Batched Scylla reads vs one blocking query per interaction",
        "The product reads all of a request's neighbour-list misses in one thread-pool hop "
        "(chunked IN queries). The naive service ran one blocking single-key query per "
        "interaction, on the event loop. The neighbour cache is off in both "
        "(RECS_NEIGHBOUR_CACHE_MB=0) so that every feed request reads Scylla.",
        (
            NB_OFF,
            Variant("fan-out on the loop, no cache", Pieces(scylla="fanout"), NB_OFF.env),
        ),
    ),
    Ablation(
        "dynamodb",
        "aioboto3 vs boto3 in a thread pool (and an experiment without botocore)",
        "The feed's one DynamoDB query per request (ConsistentRead) through aioboto3 on the "
        "event loop, vs boto3 sent to the loop's default executor with run_in_executor. The "
        "third variant is an experiment, not in the product: the same query as a plain HTTP "
        "request signed with botocore's SigV4Auth and parsed by orjson "
        "(`pieces.SignedJsonDynamoDB`).",
        (
            PRODUCT,
            Variant("boto3 in threads", Pieces(dynamodb="boto3")),
            Variant("signed JSON (experiment)", Pieces(dynamodb="signed-json")),
        ),
    ),
    Ablation(
        "responses",
        "Slotted dataclasses + orjson vs Pydantic response models",
        "The product builds the JSON itself (hand-built dicts, orjson) and returns bytes. The "
        "variant returns the page to FastAPI with Pydantic BaseModel response models "
        "(from_attributes), so FastAPI validates it and serializes it (this FastAPI version "
        "serializes a response_model with pydantic-core's dump_json).",
        (
            PRODUCT.with_env("product, catalog TTL 1 h", STEADY_CATALOG),
            Variant(
                "Pydantic response models, catalog TTL 1 h",
                Pieces(responses="pydantic"),
                STEADY_CATALOG,
            ),
        ),
        endpoints=("similar",),
    ),
    Ablation(
        "gc",
        "Tuned GC (7000,20,20 + freeze) vs CPython's defaults (700,10,10)",
        "Same server, RECS_GC_THRESHOLDS and RECS_GC_FREEZE changed. Latency histograms at "
        "the same offered load and the collections counted by recs_gc_pause_seconds.",
        (PRODUCT, PRODUCT.with_env("default GC", DEFAULT_GC)),
        histograms=True,
    ),
    Ablation(
        "transport",
        "httpx on the aiohttp transport vs httpx's default transport (catalog)",
        "The catalog cache is off (RECS_CATALOG_CACHE_TTL_S=0), so every request calls the "
        "catalog once. Measured on `popular`: one catalog call and nothing else per request, "
        "so the CPU difference per request is the transport's CPU per call.",
        (
            PRODUCT.with_env("aiohttp transport, no catalog cache", NO_CATALOG_CACHE),
            Variant(
                "httpx default transport, no catalog cache",
                Pieces(catalog_http="httpx"),
                dict(NO_CATALOG_CACHE),
            ),
        ),
        endpoints=("popular",),
    ),
    Ablation(
        "caches",
        "Caches on vs off",
        "The in-process neighbour-list cache (per model version) and the catalog metadata "
        "cache (TTL), each turned off alone and both together.",
        (
            PRODUCT,
            NB_OFF.with_env("no neighbour cache", {}),
            PRODUCT.with_env("no catalog cache", NO_CATALOG_CACHE),
            PRODUCT.with_env("no caches", {**NO_NEIGHBOUR_CACHE, **NO_CATALOG_CACHE}),
        ),
    ),
    Ablation(
        "naive",
        "The product vs the naive baseline",
        "The naive baseline has every optimization off at once: fan-out Scylla reads on the "
        "loop, boto3 in threads, Pydantic responses, CPython's GC defaults, httpx's default "
        "transport, FastAPI's telemetry hooks, no caches. Both run at the same offered load: "
        "70 % of the baseline's own saturation, long enough for about 600 requests each (the "
        "baseline is slow, and a p99 of a hundred requests is the second slowest).",
        (PRODUCT, NAIVE),
        min_fixed_requests=600,
        max_fixed_factor=20.0,
    ),
    Ablation(
        "telemetry",
        "FastAPI's native telemetry hooks off (the product) vs on (FastAPI's default)",
        "FastAPI 0.16x checks on every request whether OpenTelemetry is configured (the "
        "global tracer, meter and logger providers). The service does not use it (its metrics "
        "are Prometheus), so the product passes `FastAPI(telemetry={...: False})` "
        "(`app.main.FASTAPI_TELEMETRY`); the variant keeps FastAPI's defaults. Measured on "
        "the framework floor, where the framework is all there is.",
        (PRODUCT, Variant("FastAPI telemetry on", Pieces(fastapi_telemetry="on"))),
        endpoints=("floor",),
    ),
    Ablation(
        "instrumentation",
        "Instrumentation cost",
        "The product with its request middleware (request id, in-flight bound, latency "
        "histogram), dependency timers, loop-lag sampler and GC callbacks, vs the same server "
        "without them (breakers kept). The feed: its knee, the closed-loop throughput with "
        "4 workers measured three times (the variants alternating; the median counts), and the "
        "CPU per request at the same offered load. Both with a catalog cache TTL of 1 h (see "
        "`responses`).",
        (
            PRODUCT.with_env("product, catalog TTL 1 h", STEADY_CATALOG),
            Variant(
                "no instrumentation, catalog TTL 1 h",
                Pieces(instrumentation="off"),
                STEADY_CATALOG,
            ),
        ),
        closed_loop_repeats=2,
    ),
)

SECTIONS: Final = (*PRODUCT_ENDPOINTS, "profile", "micro", *(a.name for a in ABLATIONS))
# `--quick` without `--only`: the floor and the two endpoints with latency targets.
QUICK_SECTIONS: Final = ("floor", "feed", "similar")

"""The one typed settings object, read from `RECS_*` environment variables once at startup.

Every field documents itself (its description); docs/configuration.md lists them all and a
test keeps that page in step with this file. Secrets are masked when settings are logged.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal, TypeVar, get_args

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    ValidationError,
    ValidationInfo,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.domain import DEFAULT_EVENT_WEIGHTS, EventType

ENV_PREFIX = "RECS_"

Backend = Literal["auto", "embedded", "remote"]
LogLevel = Literal["debug", "info", "warning", "error"]


class SettingsError(ValueError):
    """A setting is missing, malformed or inconsistent: the service refuses to start."""


def env_name(field_name: str) -> str:
    return ENV_PREFIX + field_name.upper()


# --- A variable's text to a value ---------------------------------------------------------
def _text(parse: Callable[[str], Any]) -> BeforeValidator:
    """Parse a variable's (stripped) text; defaults, already values, pass as they are."""
    return BeforeValidator(lambda value: parse(value.strip()) if isinstance(value, str) else value)


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _flag(raw: str) -> bool:
    if raw.lower() not in _TRUE + _FALSE:
        raise ValueError(f"expected a boolean, got {raw!r}")
    return raw.lower() in _TRUE


def _one_of(literal: Any) -> BeforeValidator:
    choices: tuple[str, ...] = get_args(literal)

    def parse(raw: str) -> str:
        if raw not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {raw!r}")
        return raw

    return _text(parse)


def _pairs(raw: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in filter(str.strip, raw.split(",")):
        key, sep, value = part.partition("=")
        if not sep:
            raise ValueError(f"expected key=value pairs, got {part!r}")
        out[key] = value
    return out


# --- What a value must be -------------------------------------------------------------------
def _must(ok: Callable[[Any], bool], message: str) -> AfterValidator:
    """A rule whose error names the variable, as `from_env()` raises it."""

    def check(value: Any, info: ValidationInfo) -> Any:
        if not ok(value):
            raise SettingsError(f"{env_name(str(info.field_name))} {message}")
        return value

    return AfterValidator(check)


_positive = _must(lambda x: x > 0, "must be positive")
_not_negative = _must(lambda x: x >= 0, "must not be negative")
_zero_to_one = _must(lambda x: 0.0 <= x <= 1.0, "must be within 0..1")
_above_zero_to_one = _must(lambda x: 0.0 < x <= 1.0, "must be within (0, 1]")
_one_to_hundred = _must(lambda n: 1 <= n <= 100, "must be within 1..100")

# Python's int() and float() read numbers: pydantic's own parsing would also take "5.0" as 5.
Int = Annotated[int, _text(int)]
Float = Annotated[float, _text(float)]
Flag = Annotated[bool, _text(_flag)]
PositiveInt = Annotated[Int, _positive]
PositiveFloat = Annotated[Float, _positive]
_T = TypeVar("_T")
Items = Annotated[list[_T], _text(lambda raw: [part for part in raw.split(",") if part.strip()])]
EventWeights = Annotated[
    dict[str, Float],
    _text(_pairs),
    _must(
        lambda weights: set(weights) == {event.value for event in EventType},
        "must give a weight to each of " + ", ".join(event.value for event in EventType),
    ),
]
GcThresholds = Annotated[
    Items[Int],
    _must(lambda ts: len(ts) == 3 and min(ts) >= 0, "needs three non-negative integers"),
]


def _setting(default: Any, help: str, *, secret: bool = False) -> Any:
    if secret:
        return Field(default, description=help, repr=False, json_schema_extra={"secret": True})
    return Field(default, description=help)


class Settings(BaseSettings):
    """Read from the process environment by `from_env()`; immutable once read."""

    model_config = SettingsConfigDict(
        alias_generator=env_name,  # each field is read from exactly RECS_<FIELD_NAME>
        case_sensitive=True,
        enable_decoding=False,  # lists and maps are comma-separated, not JSON
        frozen=True,
        str_strip_whitespace=True,
    )

    # --- Serving -----------------------------------------------------------------------
    host: str = _setting("127.0.0.1", "Interface uvicorn binds (0.0.0.0 in containers).")
    port: PositiveInt = _setting(8000, "HTTP port.")
    workers: PositiveInt = _setting(
        1,
        "Processes serving the port. 1 in Kubernetes (scale with replicas); on one machine, "
        "its cores: the embedded data is loaded once and shared (docs/deployment.md).",
    )
    backend: Annotated[Backend, _one_of(Backend)] = _setting(
        "auto",
        "Where data comes from: `remote` (ScyllaDB, DynamoDB, catalog service), `embedded` "
        "(in-process, from data files) or `auto` (remote when RECS_SCYLLA_HOSTS is set).",
    )
    embedded_data_dir: str = _setting(
        "data/demo",
        "Embedded backend: folder with neighbours.csv[.gz], popular.csv[.gz], catalog.jsonl "
        "and interactions.csv[.gz].",
    )
    request_deadline_ms: PositiveInt = _setting(
        250, "Overall budget of one request; every dependency call gets what remains of it."
    )
    max_in_flight: PositiveInt = _setting(
        256, "Reads served at once; beyond it a fast 503 instead of an unbounded queue."
    )
    admission_target_ms: Annotated[Float, _not_negative] = _setting(
        10.0,
        "Queueing delay a request may have while the service is overloaded (from when most "
        "requests of an interval waited longer until a tenth do); beyond it, or predicted "
        "beyond it at arrival, a fast 503, writes first. At any time a request that queued "
        "past RECS_REQUEST_DEADLINE_MS gets one. 0 turns it off.",
    )
    admission_interval_ms: PositiveFloat = _setting(
        100.0, "The window over which overload is judged, and the least time it lasts."
    )
    max_in_flight_writes: PositiveInt = _setting(
        64,
        "Writes (POST /v1/events) served at once, apart from reads: neither starves the other.",
    )
    max_body_bytes: PositiveInt = _setting(
        262_144, "Largest accepted request body (413 beyond it)."
    )
    header_timeout_s: PositiveFloat = _setting(
        10.0,
        "A connection's request line and headers must arrive within this (from the "
        "connection's start, or the request's first byte); else the connection is closed.",
    )
    body_timeout_s: PositiveFloat = _setting(
        10.0, "A request's body must arrive within this after its headers; else a 408."
    )
    keep_alive_timeout_s: PositiveFloat = _setting(
        5.0, "An idle keep-alive connection is closed after this long without a request."
    )
    max_header_bytes: PositiveInt = _setting(
        32_768, "Largest request line and headers; beyond it a 431 and the connection closes."
    )
    max_headers: PositiveInt = _setting(100, "Most header lines a request may have (431 beyond).")
    shutdown_grace_s: Float = _setting(
        20.0, "On SIGTERM: how long in-flight requests may take before the process exits."
    )
    event_write_deadline_ms: PositiveInt = _setting(
        1500, "Budget of POST /v1/events for storing its batch, retries included."
    )
    breaker_failures: PositiveInt = _setting(
        5, "Consecutive failures of a dependency that open its circuit breaker."
    )
    breaker_reset_s: Float = _setting(
        1.0, "How long an open breaker refuses calls before letting one probe through."
    )
    # --- ScyllaDB / Cassandra (CQL) ----------------------------------------------------
    scylla_hosts: Items[str] = _setting([], "CQL contact points, comma-separated.")
    scylla_port: Int = _setting(9042, "CQL native transport port.")
    scylla_keyspace: str = _setting("recs", "Keyspace holding the model tables.")
    scylla_local_dc: str = _setting("datacenter1", "Local datacenter for token-aware routing.")
    scylla_protocol_version: Int = _setting(
        4, "CQL protocol version (ScyllaDB speaks 4; the local Cassandra 5 stack uses 5)."
    )
    scylla_username: str = _setting("", "CQL username (empty: no authentication).")
    scylla_password: str = _setting("", "CQL password.", secret=True)
    scylla_replication: str = _setting(
        "NetworkTopologyStrategy:datacenter1=1",
        "Keyspace replication for `recs schema apply`: `SimpleStrategy:<rf>` or "
        "`NetworkTopologyStrategy:<dc>=<rf>[,<dc>=<rf>...]`.",
    )
    scylla_timeout_ms: PositiveInt = _setting(100, "Per-query timeout of a CQL read.")
    scylla_connect_timeout_ms: Int = _setting(5000, "CQL connection timeout at startup.")
    scylla_executor_threads: PositiveInt = _setting(
        8, "Threads in the pool that runs blocking CQL reads (one hop per request)."
    )
    scylla_in_chunk: Annotated[Int, _one_to_hundred] = _setting(
        100,
        "Partition keys per IN query (ScyllaDB's max_partition_key_restrictions_per_query "
        "defaults to 100).",
    )
    # --- DynamoDB ----------------------------------------------------------------------
    dynamodb_endpoint_url: str = _setting(
        "", "DynamoDB endpoint (empty: the AWS regional endpoint; DynamoDB Local in the stack)."
    )
    dynamodb_region: str = _setting("us-east-1", "AWS region of the DynamoDB table.")
    dynamodb_table: str = _setting("recs_user_events", "Table of user interactions.")
    dynamodb_timeout_ms: PositiveInt = _setting(100, "Per-call DynamoDB timeout.")
    dynamodb_max_connections: Int = _setting(64, "Connection pool size of the DynamoDB client.")
    history_limit: PositiveInt = _setting(
        100, "Recent interactions read per user (newest first): the feed's seeds and seen items."
    )
    event_retention_days: Int = _setting(90, "TTL of stored interactions, in days.")
    # --- Catalog service ---------------------------------------------------------------
    catalog_url: str = _setting("", "Base URL of the item catalog service.")
    catalog_timeout_ms: PositiveInt = _setting(80, "Per-call catalog timeout.")
    catalog_max_connections: Int = _setting(64, "Connection pool size of the catalog client.")
    catalog_cache_ttl_s: Annotated[Float, _not_negative] = _setting(
        60.0,
        "The oldest catalog metadata ever served (0: no cache): an entry this old is reloaded "
        "before it is served again.",
    )
    # Below the TTL so that items shown often never expire on a request's path; not much lower,
    # since every reload costs the service CPU (docs/performance.md).
    catalog_cache_refresh_s: PositiveFloat = _setting(
        30.0,
        "A cached catalog entry asked for once it is this old is answered from the cache and "
        "reloaded in the background: items shown often stay this fresh (at or above the TTL: "
        "no background reloads).",
    )
    catalog_cache_mb: Int = _setting(64, "Memory bound of the catalog metadata cache.")
    # --- Caches and model versions -----------------------------------------------------
    neighbour_cache_mb: Int = _setting(
        256, "Memory bound of the in-process neighbour-list cache (0: off)."
    )
    model_refresh_s: Float = _setting(
        5.0, "How often the active model versions are re-read from ScyllaDB."
    )
    model_versions_kept: Int = _setting(
        3, "Published versions kept loadable per model (older ones are cleaned up)."
    )
    # --- Ranking -----------------------------------------------------------------------
    event_weights: EventWeights = _setting(
        {str(event): weight for event, weight in DEFAULT_EVENT_WEIGHTS.items()},
        "Weight of each event type, as `view=1,favorite=3,...`; every type must be listed.",
    )
    recency_half_life_ms: PositiveInt = _setting(
        3600 * 1000,
        "Feed: half-life of an interaction's weight, in ms of age before the user's newest "
        "interaction.",
    )
    recency_position_decay: Annotated[Float, _above_zero_to_one] = _setting(
        0.7,
        "Feed: weight factor per step back in the user's history (0.8: the 2nd newest "
        "interaction weighs 0.8, the 3rd 0.64 ...; 1: order alone does not matter).",
    )
    max_seeds: PositiveInt = _setting(
        10,
        "Feed: how many of the user's heaviest interacted items are expanded through their "
        "neighbour lists (all of them still drop as seen).",
    )
    ann_weight: Annotated[Float, _zero_to_one] = _setting(
        0.05,
        "Feed: share of a candidate's score from embedding similarity to the user's vector "
        "(0: neighbour lists only; 1: embeddings only). Used when an embeddings version is "
        "active.",
    )
    ann_candidates: PositiveInt = _setting(
        30, "Feed: candidates taken from the embeddings index per request."
    )
    embeddings_max_mb: PositiveInt = _setting(
        1024,
        "Largest embeddings version the service indexes (vectors and index); a larger one is "
        "refused and the previous keeps serving.",
    )
    ann_ivf_min_vectors: Annotated[Int, _must(lambda n: n >= 1000, "must be at least 1000")] = (
        _setting(
            50_000,
            "Embeddings index: versions with at least this many vectors get an IVF index "
            "(built in seconds), smaller ones an HNSW graph (docs/embeddings.md).",
        )
    )
    ann_m: PositiveInt = _setting(32, "Embeddings index: links per node of the HNSW graph.")
    ann_ef_construction: PositiveInt = _setting(
        200, "Embeddings index: search breadth while the graph is built."
    )
    ann_recall_target: Annotated[Float, _above_zero_to_one] = _setting(
        0.95,
        "Embeddings index: recall@50 the search breadth is calibrated to, per version.",
    )
    max_per_category: Int = _setting(10, "Diversity cap: most items of one category per page.")
    max_per_seller: Int = _setting(3, "Diversity cap: most items of one seller per page.")
    similar_region_weight: Annotated[Float, _zero_to_one] = _setting(
        0.3,
        "Similar items with `region`: weight of the region match in the blend "
        "(1 - w goes to similarity).",
    )
    default_limit: PositiveInt = _setting(20, "Items per page when `limit` is not given.")
    max_limit: PositiveInt = _setting(200, "Largest accepted `limit`.")
    max_exclude: Int = _setting(500, "Most ids accepted in `exclude`.")
    cursor_max_items: Int = _setting(
        1000, "Most items one cursor chain serves; the feed ends there (next_cursor null)."
    )
    cursor_secret: str = _setting(
        "",
        "Key that signs feed cursors (HMAC-SHA256); required to serve. `make run` and `make "
        "dev` set a development value.",
        secret=True,
    )
    cursor_previous_secrets: Items[str] = _setting(
        [],
        "Former cursor secrets, comma-separated: cursors they signed are still accepted "
        "while a rotation rolls out.",
        secret=True,
    )
    # --- Runtime -----------------------------------------------------------------------
    gc_thresholds: GcThresholds = _setting(
        [7000, 20, 20], "gc.set_threshold at startup (CPython's defaults are 700,10,10)."
    )
    gc_freeze: Flag = _setting(
        True, "gc.freeze() after startup so long-lived objects leave the collector's scans."
    )
    api_keys: Items[str] = _setting(
        [], "Accepted API keys (Bearer), comma-separated; required by write endpoints.", secret=True
    )
    require_key_for_reads: Flag = _setting(False, "Also require an API key on read endpoints.")
    log_level: Annotated[LogLevel, _one_of(LogLevel)] = _setting("info", "Log level.")
    access_log: Flag = _setting(False, "One log line per request (costs throughput).")

    # ------------------------------------------------------------------------------------
    @property
    def use_remote(self) -> bool:
        if self.backend == "auto":
            return bool(self.scylla_hosts)
        return self.backend == "remote"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from the process environment, or from `environ` alone when given."""
        try:
            if environ is None:
                return cls()
            # Every field is given a value, so none comes from the process environment.
            return cls(
                **{
                    env_name(name): environ.get(env_name(name), field.default)
                    for name, field in cls.model_fields.items()
                }
            )
        except ValidationError as exc:
            raise _settings_error(exc) from None

    @model_validator(mode="after")
    def _limits_agree(self) -> Settings:
        if self.default_limit > self.max_limit:
            raise SettingsError(f"{ENV_PREFIX}DEFAULT_LIMIT exceeds {ENV_PREFIX}MAX_LIMIT")
        return self

    def check_serving(self) -> None:
        """What serving needs beyond valid values (the CLI needs less: it checks its own)."""
        if not self.cursor_secret:
            raise SettingsError(
                f"{ENV_PREFIX}CURSOR_SECRET is required to serve: feed cursors are signed with "
                "it (any long random string; keep it in a secret store)"
            )
        if self.backend == "remote" and not self.scylla_hosts:
            raise SettingsError(f"{ENV_PREFIX}SCYLLA_HOSTS is required with the remote backend")
        if self.use_remote and not self.catalog_url:
            raise SettingsError(f"{ENV_PREFIX}CATALOG_URL is required with the remote backend")

    def public_dict(self) -> dict[str, Any]:
        """Effective settings for the startup log, with secrets masked."""
        return {name: "***" if value and is_secret(name) else value for name, value in self}


def _settings_error(exc: ValidationError) -> SettingsError:
    """The first error, naming its variable (pydantic reports them in field order)."""
    error = exc.errors()[0]
    cause = error.get("ctx", {}).get("error")
    if isinstance(cause, SettingsError):
        return cause
    return SettingsError(f"{error['loc'][0]}: {cause or error['msg']}")


def is_secret(field_name: str) -> bool:
    extra = Settings.model_fields[field_name].json_schema_extra
    return isinstance(extra, dict) and extra.get("secret") is True


def markdown_reference() -> str:
    """docs/configuration.md, generated from the fields above (`python -m app.config`)."""
    lines = [
        "# Configuration",
        "",
        "Every setting is an environment variable, read once at startup by one typed object",
        "(`app/config.py`); a bad value stops the service with a message naming the variable.",
        "This page is generated from that object: `python -m app.config > docs/configuration.md`",
        "(a test keeps the two in step). Secrets (marked) are masked in the startup log.",
        "",
        "| Variable | Default | Meaning |",
        "| --- | --- | --- |",
    ]
    for name, field in Settings.model_fields.items():
        value = field.default
        if isinstance(value, list):
            shown = ",".join(str(v) for v in value)
        elif isinstance(value, dict):
            shown = ",".join(f"{k}={v:g}" for k, v in value.items())
        elif isinstance(value, bool):
            shown = str(value).lower()
        else:
            shown = str(value)
        secret = " (secret)" if is_secret(name) else ""
        lines.append(
            f"| `{env_name(name)}` | `{shown}` | {field.description}{secret} |"
            if shown
            else f"| `{env_name(name)}` | (empty) | {field.description}{secret} |"
        )
    lines += [
        "",
        "Lists are comma-separated; booleans accept true/false, 1/0, yes/no, on/off.",
        "DynamoDB credentials come from the standard AWS chain (`AWS_ACCESS_KEY_ID` ...,",
        "or the pod's IAM role): they are not settings of this service.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    print(markdown_reference(), end="")

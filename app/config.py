"""The one typed settings object, read from `RECS_*` environment variables once at startup.

Every field documents itself (`help` metadata); docs/configuration.md lists them all and a
test keeps that page in step with this file. Secrets are masked when settings are logged.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args, get_origin

from app.domain import DEFAULT_EVENT_WEIGHTS, EventType

ENV_PREFIX = "RECS_"

Backend = Literal["auto", "embedded", "remote"]
LogLevel = Literal["debug", "info", "warning", "error"]


class SettingsError(ValueError):
    """A setting is missing, malformed or inconsistent: the service refuses to start."""


def _setting(default: Any, help: str, *, secret: bool = False) -> Any:
    if isinstance(default, list | dict):
        return field(
            default_factory=lambda: type(default)(default),
            metadata={"help": help, "secret": secret},
        )
    return field(default=default, metadata={"help": help, "secret": secret})


@dataclass(frozen=True, slots=True)
class Settings:
    # --- Serving -----------------------------------------------------------------------
    host: str = _setting("127.0.0.1", "Interface uvicorn binds (0.0.0.0 in containers).")
    port: int = _setting(8000, "HTTP port.")
    workers: int = _setting(
        1,
        "Processes serving the port. 1 in Kubernetes (scale with replicas); on one machine, "
        "its cores: the embedded data is loaded once and shared (docs/deployment.md).",
    )
    backend: Backend = _setting(
        "auto",
        "Where data comes from: `remote` (ScyllaDB, DynamoDB, catalog service), `embedded` "
        "(in-process, from data files) or `auto` (remote when RECS_SCYLLA_HOSTS is set).",
    )
    embedded_data_dir: str = _setting(
        "data/demo",
        "Embedded backend: folder with neighbours.csv[.gz], popular.csv[.gz], catalog.jsonl "
        "and interactions.csv[.gz].",
    )
    request_deadline_ms: int = _setting(
        250, "Overall budget of one request; every dependency call gets what remains of it."
    )
    max_in_flight: int = _setting(
        256, "Reads served at once; beyond it a fast 503 instead of an unbounded queue."
    )
    max_in_flight_writes: int = _setting(
        64,
        "Writes (POST /v1/events) served at once, apart from reads: neither starves the other.",
    )
    max_body_bytes: int = _setting(262_144, "Largest accepted request body (413 beyond it).")
    header_timeout_s: float = _setting(
        10.0,
        "A connection's request line and headers must arrive within this (from the "
        "connection's start, or the request's first byte); else the connection is closed.",
    )
    body_timeout_s: float = _setting(
        10.0, "A request's body must arrive within this after its headers; else a 408."
    )
    keep_alive_timeout_s: float = _setting(
        5.0, "An idle keep-alive connection is closed after this long without a request."
    )
    max_header_bytes: int = _setting(
        32_768, "Largest request line and headers; beyond it a 431 and the connection closes."
    )
    max_headers: int = _setting(100, "Most header lines a request may have (431 beyond).")
    shutdown_grace_s: float = _setting(
        20.0, "On SIGTERM: how long in-flight requests may take before the process exits."
    )
    event_write_deadline_ms: int = _setting(
        1500, "Budget of POST /v1/events for storing its batch, retries included."
    )
    breaker_failures: int = _setting(
        5, "Consecutive failures of a dependency that open its circuit breaker."
    )
    breaker_reset_s: float = _setting(
        1.0, "How long an open breaker refuses calls before letting one probe through."
    )
    # --- ScyllaDB / Cassandra (CQL) ----------------------------------------------------
    scylla_hosts: list[str] = _setting([], "CQL contact points, comma-separated.")
    scylla_port: int = _setting(9042, "CQL native transport port.")
    scylla_keyspace: str = _setting("recs", "Keyspace holding the model tables.")
    scylla_local_dc: str = _setting("datacenter1", "Local datacenter for token-aware routing.")
    scylla_protocol_version: int = _setting(
        4, "CQL protocol version (ScyllaDB speaks 4; the local Cassandra 5 stack uses 5)."
    )
    scylla_username: str = _setting("", "CQL username (empty: no authentication).")
    scylla_password: str = _setting("", "CQL password.", secret=True)
    scylla_replication: str = _setting(
        "NetworkTopologyStrategy:datacenter1=1",
        "Keyspace replication for `recs schema apply`: `SimpleStrategy:<rf>` or "
        "`NetworkTopologyStrategy:<dc>=<rf>[,<dc>=<rf>...]`.",
    )
    scylla_timeout_ms: int = _setting(100, "Per-query timeout of a CQL read.")
    scylla_connect_timeout_ms: int = _setting(5000, "CQL connection timeout at startup.")
    scylla_executor_threads: int = _setting(
        8, "Threads in the pool that runs blocking CQL reads (one hop per request)."
    )
    scylla_in_chunk: int = _setting(
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
    dynamodb_timeout_ms: int = _setting(100, "Per-call DynamoDB timeout.")
    dynamodb_max_connections: int = _setting(64, "Connection pool size of the DynamoDB client.")
    history_limit: int = _setting(
        100, "Recent interactions read per user (newest first): the feed's seeds and seen items."
    )
    event_retention_days: int = _setting(90, "TTL of stored interactions, in days.")
    # --- Catalog service ---------------------------------------------------------------
    catalog_url: str = _setting("", "Base URL of the item catalog service.")
    catalog_timeout_ms: int = _setting(80, "Per-call catalog timeout.")
    catalog_max_connections: int = _setting(64, "Connection pool size of the catalog client.")
    catalog_cache_ttl_s: float = _setting(
        60.0,
        "The oldest catalog metadata ever served (0: no cache): an entry this old is reloaded "
        "before it is served again.",
    )
    # 30 s, not 10: every item asked for past this age is reloaded; at 10 s the feed cost 3 to
    # 7 % more CPU in the bench, and on a busy box its p99 nearly doubled (docs/performance.md).
    catalog_cache_refresh_s: float = _setting(
        30.0,
        "A cached catalog entry asked for once it is this old is answered from the cache and "
        "reloaded in the background: items shown often stay this fresh (at or above the TTL: "
        "no background reloads).",
    )
    catalog_cache_mb: int = _setting(64, "Memory bound of the catalog metadata cache.")
    # --- Caches and model versions -----------------------------------------------------
    neighbour_cache_mb: int = _setting(
        256, "Memory bound of the in-process neighbour-list cache (0: off)."
    )
    model_refresh_s: float = _setting(
        5.0, "How often the active model versions are re-read from ScyllaDB."
    )
    model_versions_kept: int = _setting(
        3, "Published versions kept loadable per model (older ones are cleaned up)."
    )
    # --- Ranking -----------------------------------------------------------------------
    event_weights: dict[str, float] = _setting(
        {str(event): weight for event, weight in DEFAULT_EVENT_WEIGHTS.items()},
        "Weight of each event type, as `view=1,favorite=3,...`; every type must be listed.",
    )
    recency_half_life_ms: int = _setting(
        3600 * 1000,
        "Feed: half-life of an interaction's weight, in ms of age before the user's newest "
        "interaction.",
    )
    recency_position_decay: float = _setting(
        0.7,
        "Feed: weight factor per step back in the user's history (0.8: the 2nd newest "
        "interaction weighs 0.8, the 3rd 0.64 ...; 1: order alone does not matter).",
    )
    max_seeds: int = _setting(
        10,
        "Feed: how many of the user's heaviest interacted items are expanded through their "
        "neighbour lists (all of them still drop as seen).",
    )
    ann_weight: float = _setting(
        0.1,
        "Feed: share of a candidate's score from embedding similarity to the user's vector "
        "(0: neighbour lists only; 1: embeddings only). Used when an embeddings version is "
        "active.",
    )
    ann_candidates: int = _setting(
        30, "Feed: candidates taken from the embeddings index per request."
    )
    embeddings_max_mb: int = _setting(
        1024,
        "Largest embeddings version the service indexes (vectors and graph); a larger one is "
        "refused and the previous keeps serving.",
    )
    ann_m: int = _setting(32, "Embeddings index: links per node of the HNSW graph.")
    ann_ef_construction: int = _setting(
        200, "Embeddings index: search breadth while the graph is built."
    )
    ann_recall_target: float = _setting(
        0.95,
        "Embeddings index: recall@50 the search breadth is calibrated to, per version.",
    )
    max_per_category: int = _setting(10, "Diversity cap: most items of one category per page.")
    max_per_seller: int = _setting(3, "Diversity cap: most items of one seller per page.")
    similar_region_weight: float = _setting(
        0.3,
        "Similar items with `region`: weight of the region match in the blend "
        "(1 - w goes to similarity).",
    )
    default_limit: int = _setting(20, "Items per page when `limit` is not given.")
    max_limit: int = _setting(200, "Largest accepted `limit`.")
    max_exclude: int = _setting(500, "Most ids accepted in `exclude`.")
    cursor_max_items: int = _setting(
        1000, "Most items one cursor chain serves; the feed ends there (next_cursor null)."
    )
    cursor_secret: str = _setting(
        "",
        "Key that signs feed cursors (HMAC-SHA256); required to serve. `make run` and `make "
        "dev` set a development value.",
        secret=True,
    )
    cursor_previous_secrets: list[str] = _setting(
        [],
        "Former cursor secrets, comma-separated: cursors they signed are still accepted "
        "while a rotation rolls out.",
        secret=True,
    )
    # --- Runtime -----------------------------------------------------------------------
    gc_thresholds: list[int] = _setting(
        [7000, 20, 20], "gc.set_threshold at startup (CPython's defaults are 700,10,10)."
    )
    gc_freeze: bool = _setting(
        True, "gc.freeze() after startup so long-lived objects leave the collector's scans."
    )
    api_keys: list[str] = _setting(
        [], "Accepted API keys (Bearer), comma-separated; required by write endpoints.", secret=True
    )
    require_key_for_reads: bool = _setting(False, "Also require an API key on read endpoints.")
    log_level: LogLevel = _setting("info", "Log level.")
    access_log: bool = _setting(False, "One log line per request (costs throughput).")

    # ------------------------------------------------------------------------------------
    @property
    def use_remote(self) -> bool:
        if self.backend == "auto":
            return bool(self.scylla_hosts)
        return self.backend == "remote"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        hints = typing.get_type_hints(cls)
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            name = ENV_PREFIX + f.name.upper()
            if name in env:
                try:
                    values[f.name] = _parse(hints[f.name], env[name])
                except ValueError as exc:
                    raise SettingsError(f"{name}: {exc}") from None
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        positive = (
            "port",
            "workers",
            "request_deadline_ms",
            "max_in_flight",
            "max_in_flight_writes",
            "max_body_bytes",
            "header_timeout_s",
            "body_timeout_s",
            "keep_alive_timeout_s",
            "max_header_bytes",
            "max_headers",
            "scylla_timeout_ms",
            "scylla_executor_threads",
            "dynamodb_timeout_ms",
            "catalog_timeout_ms",
            "history_limit",
            "max_seeds",
            "ann_candidates",
            "embeddings_max_mb",
            "ann_m",
            "ann_ef_construction",
            "breaker_failures",
            "event_write_deadline_ms",
            "default_limit",
            "max_limit",
            "recency_half_life_ms",
        )
        for name in positive:
            if getattr(self, name) <= 0:
                raise SettingsError(f"{ENV_PREFIX}{name.upper()} must be positive")
        if not 1 <= self.scylla_in_chunk <= 100:
            raise SettingsError(f"{ENV_PREFIX}SCYLLA_IN_CHUNK must be within 1..100")
        if self.default_limit > self.max_limit:
            raise SettingsError(f"{ENV_PREFIX}DEFAULT_LIMIT exceeds {ENV_PREFIX}MAX_LIMIT")
        if set(self.event_weights) != {e.value for e in EventType}:
            raise SettingsError(
                f"{ENV_PREFIX}EVENT_WEIGHTS must give a weight to each of "
                + ", ".join(e.value for e in EventType)
            )
        if len(self.gc_thresholds) != 3 or min(self.gc_thresholds) < 0:
            raise SettingsError(f"{ENV_PREFIX}GC_THRESHOLDS needs three non-negative integers")
        if self.catalog_cache_ttl_s < 0 or self.catalog_cache_refresh_s <= 0:
            raise SettingsError(
                f"{ENV_PREFIX}CATALOG_CACHE_TTL_S must not be negative and "
                f"{ENV_PREFIX}CATALOG_CACHE_REFRESH_S must be positive"
            )
        if not 0.0 <= self.ann_weight <= 1.0:
            raise SettingsError(f"{ENV_PREFIX}ANN_WEIGHT must be within 0..1")
        if not 0.0 < self.ann_recall_target <= 1.0:
            raise SettingsError(f"{ENV_PREFIX}ANN_RECALL_TARGET must be within (0, 1]")
        if not 0.0 < self.recency_position_decay <= 1.0:
            raise SettingsError(f"{ENV_PREFIX}RECENCY_POSITION_DECAY must be within (0, 1]")
        if not 0.0 <= self.similar_region_weight <= 1.0:
            raise SettingsError(f"{ENV_PREFIX}SIMILAR_REGION_WEIGHT must be within 0..1")

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
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.metadata.get("secret") and value:
                value = "***"
            out[f.name] = value
        return out


def _parse(hint: Any, raw: str) -> Any:
    raw = raw.strip()
    origin = get_origin(hint)
    if hint is bool:
        lowered = raw.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"expected a boolean, got {raw!r}")
    if hint is int:
        return int(raw)
    if hint is float:
        return float(raw)
    if hint is str:
        return raw
    if origin is Literal:
        choices = get_args(hint)
        if raw not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {raw!r}")
        return raw
    if origin is list:
        (item,) = get_args(hint)
        return [_parse(item, part) for part in raw.split(",") if part.strip()]
    if origin is dict:
        _, value_type = get_args(hint)
        out: dict[str, Any] = {}
        for part in raw.split(","):
            if not part.strip():
                continue
            key, sep, value = part.partition("=")
            if not sep:
                raise ValueError(f"expected key=value pairs, got {part!r}")
            out[key.strip()] = _parse(value_type, value)
        return out
    if isinstance(hint, types.UnionType):  # pragma: no cover - no such fields today
        raise ValueError("union settings are not supported")
    raise ValueError(f"unsupported setting type {hint!r}")


def env_name(field_name: str) -> str:
    return ENV_PREFIX + field_name.upper()


def setting_fields() -> tuple[dataclasses.Field[Any], ...]:
    return dataclasses.fields(Settings)


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
    defaults = Settings()
    for f in setting_fields():
        value = getattr(defaults, f.name)
        if isinstance(value, list):
            shown = ",".join(str(v) for v in value)
        elif isinstance(value, dict):
            shown = ",".join(f"{k}={v:g}" for k, v in value.items())
        elif isinstance(value, bool):
            shown = str(value).lower()
        else:
            shown = str(value)
        secret = " (secret)" if f.metadata.get("secret") else ""
        lines.append(
            f"| `{env_name(f.name)}` | `{shown}` | {f.metadata['help']}{secret} |"
            if shown
            else f"| `{env_name(f.name)}` | (empty) | {f.metadata['help']}{secret} |"
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

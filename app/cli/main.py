"""`recs`: the command line for getting data in and managing model versions.

    recs schema apply
    recs load neighbours|popular|embeddings|catalog|interactions FILE
    recs versions list|activate|rollback
    recs build neighbours|popular|embeddings
    recs evaluate INTERACTIONS ...
    recs demo generate|ensure|load

Connection settings are the service's own (`RECS_*` variables; `python scripts/stack.py env`
prints those of the local stack). Every subcommand has `--help`.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import functools
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from app.cli.common import report_skipped
from app.config import Settings, SettingsError
from app.embeddings import EmbeddingsError
from app.offline.formats import FormatError, ReadStats
from app.sources.base import MODELS

Handler = Callable[[argparse.Namespace, Settings], int]

# Offline work waits longer than a request may: writes of big partitions, schema changes.
_CLI_CQL_TIMEOUT_MS = 30_000


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        settings = Settings.from_env()
        return handler(args, settings)
    except FormatError as exc:
        print(f"error: {exc}", file=sys.stderr)
        hint = "fix the row or pass --skip-invalid" if exc.row else "fix the file"
        print(f"nothing was loaded; {hint}", file=sys.stderr)
        return 2
    except EmbeddingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        print("nothing was loaded; fix the file", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: nothing half-loaded was activated", file=sys.stderr)
        return 130
    except Exception as exc:  # a store unreachable, a version refused ...: one line, no trace
        print(f"error: {exc}", file=sys.stderr)
        return 1


# --- connections ---------------------------------------------------------------------------
def _cql(settings: Settings) -> tuple[Any, Any]:
    """A cluster and session for one command; `cluster.shutdown()` when done."""
    from app.sources.scylla import connect, skip_reactor_exit_join

    if not settings.scylla_hosts:
        raise SettingsError(
            "RECS_SCYLLA_HOSTS is not set (for the local stack: "
            'eval "$(python scripts/stack.py env)")'
        )
    skip_reactor_exit_join()
    return connect(
        settings.model_copy(
            update={"scylla_timeout_ms": max(settings.scylla_timeout_ms, _CLI_CQL_TIMEOUT_MS)}
        )
    )


def _boto3_dynamodb(settings: Settings) -> Any:
    import boto3

    return boto3.client(
        "dynamodb",
        region_name=settings.dynamodb_region,
        endpoint_url=settings.dynamodb_endpoint_url or None,
    )


# --- schema --------------------------------------------------------------------------------
def _schema_apply(args: argparse.Namespace, settings: Settings) -> int:
    from app.schema import cql, dynamodb

    cluster, session = _cql(settings)
    try:
        applied = cql.apply(
            session, keyspace=settings.scylla_keyspace, replication=settings.scylla_replication
        )
    finally:
        cluster.shutdown()
    print(f"cql keyspace {settings.scylla_keyspace}: applied {applied or 'nothing (up to date)'}")
    created = dynamodb.ensure_table(_boto3_dynamodb(settings), settings.dynamodb_table)
    print(f"dynamodb table {settings.dynamodb_table}: {'created' if created else 'exists'}")
    return 0


# --- loads ---------------------------------------------------------------------------------
def _load_neighbours(args: argparse.Namespace, settings: Settings) -> int:
    from app.offline.formats import read_neighbours
    from app.offline.topk import top_k_neighbours
    from app.publishing.scylla import publish_neighbours

    publish = functools.partial(publish_neighbours, progress=not args.quiet)
    return _load_model(args, settings, "nb", read_neighbours, top_k_neighbours, args.top_k, publish)


def _load_popular(args: argparse.Namespace, settings: Settings) -> int:
    from app.offline.formats import read_popular
    from app.offline.topk import top_k_popular
    from app.publishing.scylla import publish_popular

    return _load_model(
        args, settings, "pop", read_popular, top_k_popular, args.top_n, publish_popular
    )


def _load_model(
    args: argparse.Namespace,
    settings: Settings,
    prefix: str,
    read: Callable[..., Iterator[tuple[str, str, float]]],
    top: Callable[[Iterator[tuple[str, str, float]], int], dict[str, list[tuple[str, float]]]],
    k: int,
    publish: Callable[..., Any],
) -> int:
    """Read and rank a model file whole (a bad row stops it before any write), then publish
    it as a version whose id comes from the content and the load's parameters."""
    from app.publishing import versions

    path: Path = args.file
    stats = ReadStats()
    started = time.perf_counter()
    lists = top(read(path, skip_invalid=args.skip_invalid, stats=stats), k)
    parsed_s = time.perf_counter() - started
    report_skipped(path, stats)
    version = args.version or versions.content_version(prefix, path, k, args.skip_invalid)
    gated = args.gate is not None and not args.no_activate
    cluster, session = _cql(settings)
    try:
        result = publish(
            session,
            settings.scylla_keyspace,
            lists,
            version=version,
            source=str(path),
            activate=not args.no_activate and not gated,
            keep=settings.model_versions_kept,
            clean_up=not gated,
        )
        _print_publish(result, stats.rows_ok, parsed_s)
        if gated:
            return _gated_activation(session, settings, args, result.model, version)
    finally:
        cluster.shutdown()
    return 0


def _gated_activation(
    session: Any, settings: Settings, args: argparse.Namespace, model: str, version: str
) -> int:
    """Activate `version` only if it scores no worse on the holdout log (see app.evaluation.gate):
    refused, it stays ready and inactive and nothing else changes (exit 1)."""
    from app.evaluation.gate import score_versions
    from app.evaluation.protocols import split_log
    from app.offline.formats import read_catalog
    from app.publishing import versions

    keyspace = settings.scylla_keyspace
    active = {
        name: current
        for name in MODELS
        if (current := versions.active_version(session, keyspace, name)) is not None
    }
    split = split_log(args.gate, "leave-last-out", history_kept=settings.history_limit)
    catalog = None if args.catalog is None else {i.item_id: i for i in read_catalog(args.catalog)}
    result = asyncio.run(
        score_versions(
            session,
            settings,
            split,
            model=model,
            candidate=version,
            active=active,
            catalog=catalog,
            tolerance=args.tolerance,
        )
    )
    print(f"{model} {version}: scored on {args.gate} (leave-last-out)")
    for line in result.lines():
        print(line)
    if not result.passed:
        print(
            f"{model} {version}: activation refused; it stays ready and inactive, "
            f"{active[model]} keeps serving",
            file=sys.stderr,
        )
        return 1
    versions.activate(session, keyspace, model, version)
    deleted = versions.cleanup(session, keyspace, model, keep=settings.model_versions_kept)
    print(f"{model} {version}: activated")
    if deleted:
        print(f"{model}: cleaned up old versions {', '.join(deleted)}")
    return 0


def _load_embeddings(args: argparse.Namespace, settings: Settings) -> int:
    """Validate the file whole, check that the service can index it within its memory bound,
    then publish it as a version (activated unless --no-activate, or refused over the bound)."""
    from app.embeddings import estimate_index_bytes, read_embeddings
    from app.model_versions import EmbeddingLimits
    from app.publishing import versions
    from app.publishing.scylla import publish_embeddings

    path: Path = args.file
    started = time.perf_counter()
    table = read_embeddings(path)
    parsed_s = time.perf_counter() - started
    limits = EmbeddingLimits.from_settings(settings)
    needed = estimate_index_bytes(len(table), table.dim, limits.index)
    bound = limits.max_bytes
    over = needed > bound
    version = args.version or versions.content_version("emb", path)
    cluster, session = _cql(settings)
    try:
        result = publish_embeddings(
            session,
            settings.scylla_keyspace,
            table,
            version=version,
            source=str(path),
            activate=not args.no_activate and not over,
            keep=settings.model_versions_kept,
        )
    finally:
        cluster.shutdown()
    print(
        f"embeddings {version}: {'published' if not result.reused else 'already published'}"
        f"{' and activated' if result.activated else ' (not active)'}: {len(table)} vectors "
        f"of {table.dim} dimensions read in {parsed_s:.1f} s, {result.items} chunks written "
        f"and verified in {result.seconds:.1f} s"
    )
    if over and not args.no_activate:
        print(
            f"embeddings {version}: activation refused: indexed it needs {needed / 2**20:.0f} MB,"
            f" over RECS_EMBEDDINGS_MAX_MB ({settings.embeddings_max_mb}); it stays ready and "
            "inactive, the active version keeps serving",
            file=sys.stderr,
        )
        return 1
    return 0


def _print_publish(result: Any, rows_read: int, parsed_s: float) -> None:
    if result.reused:
        state = "already published; activated" if result.activated else "already published"
        print(f"{result.model} {result.version}: {state} ({result.items} keys)")
    else:
        state = "published and activated" if result.activated else "published (not active)"
        print(
            f"{result.model} {result.version}: {state}: {rows_read} rows read in {parsed_s:.1f} s, "
            f"{result.rows} rows in {result.items} partitions written and verified in "
            f"{result.seconds:.1f} s ({result.rows_per_s:,.0f} rows/s)"
        )
    if result.deleted:
        print(f"{result.model}: cleaned up old versions {', '.join(result.deleted)}")


def _load_catalog(args: argparse.Namespace, settings: Settings) -> int:
    import httpx

    from app.offline.formats import read_catalog

    if not settings.catalog_url:
        raise SettingsError("RECS_CATALOG_URL is not set")
    path: Path = args.file
    stats = ReadStats()
    items = list(read_catalog(path, skip_invalid=args.skip_invalid, stats=stats))
    report_skipped(path, stats)
    with httpx.Client(base_url=settings.catalog_url, timeout=60) as client:
        for start in range(0, len(items), 20_000):
            body = "\n".join(_catalog_json(item) for item in items[start : start + 20_000])
            response = client.put("/items", content=body.encode())
            if response.status_code != 200:
                raise RuntimeError(f"catalog refused the load: {response.text[:500]}")
    print(f"catalog: {len(items)} items loaded into {settings.catalog_url}")
    return 0


def _catalog_json(item: Any) -> str:
    import orjson

    return orjson.dumps(dataclasses.asdict(item)).decode()


# Loads of interaction files are recorded in the events table itself, under a user id outside
# the id charset (no real user can have it): a store that lost its data (DynamoDB Local is in
# memory) has lost the record too, so the file is loaded again.
_LOADS_USER = "#loads"


def _load_interactions(args: argparse.Namespace, settings: Settings) -> int:
    from app.publishing.versions import content_version

    path: Path = args.file
    marker = {"user_id": {"S": _LOADS_USER}, "sk": {"S": content_version("interactions", path)}}
    dynamodb = _boto3_dynamodb(settings)
    if not args.force:
        done = dynamodb.get_item(TableName=settings.dynamodb_table, Key=marker, ConsistentRead=True)
        if "Item" in done:
            print(f"interactions: {path} was loaded already (--force loads it again)")
            return 0
    # The whole file is checked before the first write: a bad row on line 1,000,002 must not
    # leave the first million stored (checking runs at about a million rows per second).
    from app.offline.formats import read_interactions

    for _ in read_interactions(path, skip_invalid=args.skip_invalid):
        pass
    stats = ReadStats()
    written, seconds = asyncio.run(_write_interactions(path, settings, args.skip_invalid, stats))
    dynamodb.put_item(TableName=settings.dynamodb_table, Item=marker)
    report_skipped(path, stats)
    print(
        f"interactions: {written} events stored in {settings.dynamodb_table} in {seconds:.1f} s "
        f"({written / max(seconds, 1e-9):,.0f} events/s)"
    )
    return 0


async def _write_interactions(
    path: Path, settings: Settings, skip_invalid: bool, stats: ReadStats
) -> tuple[int, float]:
    from tqdm import tqdm

    from app.domain import Event
    from app.offline.formats import read_interactions
    from app.sources.dynamo import DynamoInteractions, connect, derived_event_id

    def events() -> Iterator[Event]:
        for user_id, item_id, event_type, ts_ms in read_interactions(
            path, skip_invalid=skip_invalid, stats=stats
        ):
            yield Event(
                derived_event_id(user_id, item_id, event_type, ts_ms),
                user_id,
                item_id,
                str(event_type),
                ts_ms,
            )

    started = time.perf_counter()
    written = 0
    async with connect(settings, max_connections=32) as client:
        store = DynamoInteractions(
            client, table=settings.dynamodb_table, retention_days=settings.event_retention_days
        )
        group: list[Event] = []
        with tqdm(unit=" events", unit_scale=True, delay=2.0, mininterval=0.5) as bar:
            for event in events():
                group.append(event)
                if len(group) == 800:  # 32 BatchWriteItem calls in flight
                    written += await _write_group(store, group)
                    bar.update(len(group))
                    group = []
            if group:
                written += await _write_group(store, group)
                bar.update(len(group))
    return written, time.perf_counter() - started


async def _write_group(store: Any, group: list[Any]) -> int:
    outcome = await store.write(group, deadline_s=60.0)
    if outcome.failed:
        raise RuntimeError(f"DynamoDB did not store {len(outcome.failed)} events; re-run the load")
    return len(outcome.stored)


# --- versions ------------------------------------------------------------------------------
def _versions_list(args: argparse.Namespace, settings: Settings) -> int:
    from app.publishing import versions

    cluster, session = _cql(settings)
    try:
        models = [args.model] if args.model else list(MODELS)
        for model in models:
            print(f"{model}:")
            for v in versions.list_versions(session, settings.scylla_keyspace, model):
                mark = "*" if v.active else " "
                created = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(v.created_ms / 1000))
                print(
                    f" {mark} {v.version:<20} {v.status:<8} created {created}Z "
                    f"keys={v.item_count} rows={v.row_count} source={v.source}"
                )
    finally:
        cluster.shutdown()
    return 0


def _versions_activate(args: argparse.Namespace, settings: Settings) -> int:
    from app.publishing import versions

    cluster, session = _cql(settings)
    try:
        if args.gate is not None:
            status = versions.status_of(session, settings.scylla_keyspace, args.model, args.version)
            if status != versions.STATUS_READY:
                # The same refusal as activate's, before any scoring.
                versions.activate(session, settings.scylla_keyspace, args.model, args.version)
            return _gated_activation(session, settings, args, args.model, args.version)
        versions.activate(session, settings.scylla_keyspace, args.model, args.version)
    finally:
        cluster.shutdown()
    print(f"{args.model}: {args.version} is active")
    return 0


def _versions_rollback(args: argparse.Namespace, settings: Settings) -> int:
    from app.publishing import versions

    cluster, session = _cql(settings)
    try:
        version = versions.rollback(session, settings.scylla_keyspace, args.model)
    finally:
        cluster.shutdown()
    print(f"{args.model}: rolled back to {version}")
    return 0


# --- parser --------------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="recs",
        description="Load offline model outputs and interactions; manage model versions.",
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    schema = commands.add_parser("schema", help="database schema").add_subparsers(metavar="ACTION")
    apply = schema.add_parser(
        "apply",
        help="create the keyspace and tables (CQL migrations) and the DynamoDB table; idempotent",
    )
    apply.set_defaults(handler=_schema_apply)

    load = commands.add_parser("load", help="load a data file").add_subparsers(metavar="KIND")
    neighbours = load.add_parser(
        "neighbours",
        help="publish neighbour lists (CSV item_id,similar_item_id,score) as a new version",
    )
    neighbours.add_argument("file", type=Path)
    neighbours.add_argument("--top-k", type=int, default=50, help="neighbours kept per item")
    _publish_options(neighbours)
    neighbours.set_defaults(handler=_load_neighbours)

    popular = load.add_parser(
        "popular", help="publish popular lists (CSV segment,item_id,score) as a new version"
    )
    popular.add_argument("file", type=Path)
    popular.add_argument("--top-n", type=int, default=500, help="items kept per segment")
    _publish_options(popular)
    popular.set_defaults(handler=_load_popular)

    embeddings = load.add_parser(
        "embeddings",
        help="publish item vectors (.npz: item_ids, vectors) as a new embeddings version",
    )
    embeddings.add_argument("file", type=Path)
    embeddings.add_argument(
        "--no-activate", action="store_true", help="publish without activating the version"
    )
    embeddings.add_argument("--version", help="version id (default: derived from the content)")
    embeddings.set_defaults(handler=_load_embeddings)

    catalog = load.add_parser(
        "catalog", help="load item metadata (JSONL) into the catalog service (RECS_CATALOG_URL)"
    )
    catalog.add_argument("file", type=Path)
    catalog.add_argument("--skip-invalid", action="store_true", help="skip and count bad rows")
    catalog.set_defaults(handler=_load_catalog)

    interactions = load.add_parser(
        "interactions",
        help="store interactions (CSV user_id,item_id,event_type,ts_ms) in DynamoDB",
    )
    interactions.add_argument("file", type=Path)
    interactions.add_argument("--skip-invalid", action="store_true", help="skip and count bad rows")
    interactions.add_argument(
        "--force", action="store_true", help="load even if this file was loaded before"
    )
    interactions.set_defaults(handler=_load_interactions)

    versions_parser = commands.add_parser("versions", help="model versions").add_subparsers(
        metavar="ACTION"
    )
    listing = versions_parser.add_parser("list", help="versions of each model, newest first")
    listing.add_argument("model", nargs="?", choices=MODELS)
    listing.set_defaults(handler=_versions_list)
    activate = versions_parser.add_parser("activate", help="make a ready version active")
    activate.add_argument("model", choices=MODELS)
    activate.add_argument("version")
    _gate_options(activate)
    activate.set_defaults(handler=_versions_activate)
    rollback = versions_parser.add_parser(
        "rollback", help="activate the newest ready version older than the active one"
    )
    rollback.add_argument("model", choices=MODELS)
    rollback.set_defaults(handler=_versions_rollback)

    from app.cli.evaluate import add_evaluate_command
    from app.cli.offline import add_offline_commands

    add_offline_commands(commands)
    add_evaluate_command(commands)
    return parser


def _publish_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--skip-invalid", action="store_true", help="skip and count bad rows")
    parser.add_argument(
        "--no-activate", action="store_true", help="publish without activating the version"
    )
    parser.add_argument("--version", help="version id (default: derived from the content)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    _gate_options(parser)


def _gate_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--gate",
        type=Path,
        metavar="HOLDOUT",
        help="activate only if the version's feed scores no worse than the active one's on "
        "this interactions log (leave-last-out HR@10)",
    )
    parser.add_argument(
        "--tolerance",
        type=float,
        default=0.02,
        help="with --gate: how much lower (relative) the HR@10 may be (default 0.02)",
    )
    parser.add_argument(
        "--catalog",
        type=Path,
        help="with --gate: catalog JSONL for the scoring (default: every item active)",
    )


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())

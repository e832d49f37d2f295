"""Versioned, idempotent CQL migrations.

Migrations are the files `cql/NNNN_name.cql`, applied in order. Each statement is itself
idempotent (IF NOT EXISTS), and applied versions are recorded in `schema_migrations`, so
running `recs schema apply` again, or from two machines at once, is harmless.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from importlib import resources
from typing import Any

_FILE_RE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.cql$")
# How long a schema change may take to reach every node before `apply` gives up. The driver
# waits 10 s by itself; nodes that have just started (or a busy cluster) can take longer.
SCHEMA_AGREEMENT_WAIT_S = 60.0


class SchemaAgreementError(RuntimeError):
    """The nodes did not agree on the schema after a change."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


def migrations(keyspace: str) -> list[Migration]:
    found = []
    for entry in resources.files("app.schema").joinpath("cql").iterdir():
        match = _FILE_RE.match(entry.name)
        if match is None:
            continue
        text = entry.read_text(encoding="utf-8").replace("{keyspace}", keyspace)
        found.append(Migration(int(match[1]), match[2], tuple(split_statements(text))))
    return sorted(found, key=lambda m: m.version)


def split_statements(text: str) -> list[str]:
    """Statements of a migration file: `--` comments dropped, split on `;`."""
    lines = [line.split("--", 1)[0] for line in text.splitlines()]
    return [part.strip() for part in "\n".join(lines).split(";") if part.strip()]


def replication_clause(spec: str) -> str:
    """`SimpleStrategy:1` or `NetworkTopologyStrategy:dc1=3,dc2=3` as a CQL map literal."""
    strategy, sep, params = spec.partition(":")
    if not sep or not params:
        raise ValueError(f"replication {spec!r}: expected <strategy>:<params>")
    if strategy == "SimpleStrategy":
        if not params.isdigit():
            raise ValueError(f"replication {spec!r}: SimpleStrategy takes a factor")
        return f"{{'class': 'SimpleStrategy', 'replication_factor': {int(params)}}}"
    if strategy == "NetworkTopologyStrategy":
        pairs = []
        for part in params.split(","):
            dc, eq, factor = part.partition("=")
            if not eq or not factor.isdigit() or not re.fullmatch(r"[A-Za-z0-9_\-]+", dc):
                raise ValueError(f"replication {spec!r}: expected dc=factor pairs")
            pairs.append(f"'{dc}': {int(factor)}")
        return "{'class': 'NetworkTopologyStrategy', " + ", ".join(pairs) + "}"
    raise ValueError(f"replication {spec!r}: unknown strategy {strategy!r}")


def apply(session: Any, *, keyspace: str, replication: str) -> list[str]:
    """Create the keyspace and apply pending migrations; returns the names applied now."""
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,47}", keyspace):
        raise ValueError(f"keyspace {keyspace!r}: lowercase letters, digits and _ only")
    # The node that created the keyspace coordinates every statement after it: it has
    # applied each change before answering. Agreement is still awaited, so that the other
    # nodes serve the loads that follow.
    host = _change(
        session,
        None,
        f"CREATE KEYSPACE IF NOT EXISTS {keyspace} "
        f"WITH replication = {replication_clause(replication)}",
    )
    _change(
        session,
        host,
        f"CREATE TABLE IF NOT EXISTS {keyspace}.schema_migrations "
        "(version int PRIMARY KEY, name text, applied_ms bigint)",
    )
    applied = {
        row[0]
        for row in session.execute(f"SELECT version FROM {keyspace}.schema_migrations", host=host)
    }
    done = []
    for migration in migrations(keyspace):
        if migration.version in applied:
            continue
        for statement in migration.statements:
            _change(session, host, statement)
        session.execute(
            f"INSERT INTO {keyspace}.schema_migrations (version, name, applied_ms) "
            "VALUES (%s, %s, %s)",
            (migration.version, migration.name, time.time_ns() // 1_000_000),
            host=host,
        )
        done.append(f"{migration.version:04d}_{migration.name}")
    return done


def _change(session: Any, host: Any, statement: str) -> Any:
    """Run a schema change on `host` (None: any) and wait until every node has it, so that
    statements and loads that follow find the keyspace and tables on whichever node serves
    them. Returns the node that ran it."""
    result = session.execute(statement, host=host)
    coordinator = result.response_future.coordinator_host
    if result.response_future.is_schema_agreed:
        return coordinator
    if not session.wait_for_schema_agreement(wait_time=SCHEMA_AGREEMENT_WAIT_S):
        raise SchemaAgreementError(
            f"the nodes did not agree on the schema {SCHEMA_AGREEMENT_WAIT_S:.0f} s after: "
            f"{statement.splitlines()[0]}"
        )
    return coordinator

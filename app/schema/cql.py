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
    session.execute(
        f"CREATE KEYSPACE IF NOT EXISTS {keyspace} "
        f"WITH replication = {replication_clause(replication)}"
    )
    session.execute(
        f"CREATE TABLE IF NOT EXISTS {keyspace}.schema_migrations "
        "(version int PRIMARY KEY, name text, applied_ms bigint)"
    )
    applied = {
        row[0] for row in session.execute(f"SELECT version FROM {keyspace}.schema_migrations")
    }
    done = []
    for migration in migrations(keyspace):
        if migration.version in applied:
            continue
        for statement in migration.statements:
            session.execute(statement)
        session.execute(
            f"INSERT INTO {keyspace}.schema_migrations (version, name, applied_ms) "
            "VALUES (%s, %s, %s)",
            (migration.version, migration.name, time.time_ns() // 1_000_000),
        )
        done.append(f"{migration.version:04d}_{migration.name}")
    return done

"""Schema changes go to one coordinator and wait for every node to agree.

On a cluster a statement that reaches another coordinator than the change before it fails
on a keyspace that node has not yet received.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

from app.schema import cql


@dataclass
class FakeSession:
    """A session whose changes reach every node only after `late` of them."""

    late: int = 0
    agrees_when_waited: bool = True
    statements: list[str] = field(default_factory=list)
    hosts: list[Any] = field(default_factory=list)
    waits: list[float] = field(default_factory=list)

    def execute(self, statement: str, *_: Any, host: Any = None) -> Any:
        self.statements.append(statement)
        self.hosts.append(host)
        if not statement.startswith(("CREATE", "ALTER")):
            return []  # SELECT: no migration applied yet; INSERT: nothing to read
        agreed = len(self.statements) > self.late
        answered_by = host or f"node{len(self.statements) % 3}"  # the driver's choice varies
        return SimpleNamespace(
            response_future=SimpleNamespace(is_schema_agreed=agreed, coordinator_host=answered_by)
        )

    def wait_for_schema_agreement(self, wait_time: float) -> bool:
        self.waits.append(wait_time)
        return self.agrees_when_waited


def test_a_change_already_agreed_is_not_waited_for() -> None:
    session = FakeSession(late=0)
    cql.apply(session, keyspace="ks", replication="SimpleStrategy:1")
    assert session.waits == []
    assert any(s.startswith("CREATE KEYSPACE") for s in session.statements)


def test_a_change_not_yet_agreed_is_waited_for_before_the_next_statement() -> None:
    session = FakeSession(late=1)  # the keyspace reaches the other nodes late
    cql.apply(session, keyspace="ks", replication="SimpleStrategy:1")
    assert session.waits == [cql.SCHEMA_AGREEMENT_WAIT_S]


def test_no_agreement_stops_the_migration_with_a_clear_error() -> None:
    session = FakeSession(late=1, agrees_when_waited=False)
    with pytest.raises(cql.SchemaAgreementError, match="CREATE KEYSPACE"):
        cql.apply(session, keyspace="ks", replication="SimpleStrategy:1")
    assert len(session.statements) == 1  # nothing ran after the change that did not spread


def test_statements_after_the_keyspace_go_to_the_node_that_created_it() -> None:
    session = FakeSession()
    cql.apply(session, keyspace="ks", replication="SimpleStrategy:1")
    assert len(session.statements) > 3
    assert session.hosts[0] is None
    assert set(session.hosts[1:]) == {"node1"}

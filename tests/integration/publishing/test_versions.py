"""Versioned publishing into a real Cassandra: activate, roll back, clean up, survive crashes."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pytest

from app.config import Settings
from app.publishing import versions
from app.publishing.scylla import Ranked, count_neighbour_partitions, publish_neighbours
from tests.conftest import own_keyspace

pytestmark = pytest.mark.integration

Lists = dict[str, list[tuple[str, float]]]


def data(tag: str, count: int = 30) -> Lists:
    return {f"{tag}-{i}": [(f"{tag}-{(i + 1) % count}", 0.5)] for i in range(count)}


@pytest.fixture(scope="module")
def module_keyspace(cql_session: Any, settings: Settings) -> Iterator[str]:
    with own_keyspace(cql_session, settings, "versions") as name:
        yield name


@pytest.fixture
def keyspace(cql_session: Any, module_keyspace: str) -> str:
    """A clean neighbours model partition for each test."""
    cql_session.execute(f"DELETE FROM {module_keyspace}.model_versions WHERE model = 'neighbours'")
    return module_keyspace


def publish(session: Any, ks: str, lists: Ranked, version: str, **kw: Any) -> Any:
    return publish_neighbours(session, ks, lists, version=version, source="t", progress=False, **kw)


def test_publish_activates_in_one_write_and_lists_versions(cql_session: Any, keyspace: str) -> None:
    publish(cql_session, keyspace, data("a"), "v1")
    result = publish(cql_session, keyspace, data("b"), "v2")
    assert result.activated and result.items == 30 and result.rows == 30
    listed = versions.list_versions(cql_session, keyspace, "neighbours")
    assert [(v.version, v.status, v.active) for v in listed] == [
        ("v2", "ready", True),
        ("v1", "ready", False),
    ]
    assert versions.active_version(cql_session, keyspace, "neighbours") == "v2"


def test_rollback_walks_back_and_activate_goes_forward(cql_session: Any, keyspace: str) -> None:
    for n in (1, 2, 3):
        publish(cql_session, keyspace, data(f"r{n}"), f"v{n}", keep=5)
    assert versions.rollback(cql_session, keyspace, "neighbours") == "v2"
    assert versions.rollback(cql_session, keyspace, "neighbours") == "v1"
    with pytest.raises(versions.VersionError, match="no ready version older"):
        versions.rollback(cql_session, keyspace, "neighbours")
    versions.activate(cql_session, keyspace, "neighbours", "v3")
    assert versions.active_version(cql_session, keyspace, "neighbours") == "v3"


def test_activate_refuses_unknown_and_unfinished_versions(cql_session: Any, keyspace: str) -> None:
    with pytest.raises(versions.VersionError, match="does not exist"):
        versions.activate(cql_session, keyspace, "neighbours", "nope")
    versions.begin(cql_session, keyspace, "neighbours", "half", "t")
    with pytest.raises(versions.VersionError, match="loading, not ready"):
        versions.activate(cql_session, keyspace, "neighbours", "half")


def test_versions_beyond_the_last_n_are_deleted_with_their_data(
    cql_session: Any, keyspace: str
) -> None:
    for n in (1, 2, 3, 4):
        result = publish(cql_session, keyspace, data(f"c{n}"), f"v{n}", keep=2)
    assert result.deleted == ["v2"]  # v1 went when v3 was published
    assert [v.version for v in versions.list_versions(cql_session, keyspace, "neighbours")] == [
        "v4",
        "v3",
    ]
    assert count_neighbour_partitions(cql_session, keyspace, "v1", list(data("c1"))) == 0
    assert count_neighbour_partitions(cql_session, keyspace, "v4", list(data("c4"))) == 30


def test_cleanup_never_deletes_the_active_version(cql_session: Any, keyspace: str) -> None:
    for n in (1, 2, 3):
        publish(cql_session, keyspace, data(f"k{n}"), f"v{n}", keep=3)
    versions.activate(cql_session, keyspace, "neighbours", "v1")
    deleted = versions.cleanup(cql_session, keyspace, "neighbours", keep=1)
    assert sorted(deleted) == ["v2"]  # v3 newest, v1 active: both kept
    assert versions.active_version(cql_session, keyspace, "neighbours") == "v1"


class _CrashAfter(Mapping[str, Sequence[tuple[str, float]]]):
    """Neighbour lists whose reading dies part-way through the write pass, like a killed load.

    The publisher reads every list twice (counting rows, then writing): the crash comes
    `after` lists into the second pass.
    """

    def __init__(self, lists: Lists, after: int) -> None:
        self._lists, self._crash_at, self._reads = lists, len(lists) + after, 0

    def __getitem__(self, key: str) -> Sequence[tuple[str, float]]:
        self._reads += 1
        if self._reads == self._crash_at:
            raise ConnectionError("load interrupted")
        return self._lists[key]

    def __len__(self) -> int:
        return len(self._lists)

    def __iter__(self) -> Iterator[str]:
        return iter(self._lists)


def test_interrupted_load_leaves_the_active_version_serving(
    cql_session: Any, keyspace: str
) -> None:
    publish(cql_session, keyspace, data("ok"), "good")
    with pytest.raises(ConnectionError):
        publish(cql_session, keyspace, _CrashAfter(data("bad", 100), after=40), "broken")
    assert versions.active_version(cql_session, keyspace, "neighbours") == "good"
    assert versions.status_of(cql_session, keyspace, "neighbours", "broken") == "loading"
    # Re-running the same load completes it: writes are idempotent.
    result = publish(cql_session, keyspace, data("bad", 100), "broken")
    assert result.activated and not result.reused
    assert versions.active_version(cql_session, keyspace, "neighbours") == "broken"


def test_rerunning_a_published_load_only_reactivates_it(cql_session: Any, keyspace: str) -> None:
    publish(cql_session, keyspace, data("x"), "vx")
    publish(cql_session, keyspace, data("y"), "vy")
    again = publish(cql_session, keyspace, data("x"), "vx")
    assert again.reused and again.activated
    assert versions.active_version(cql_session, keyspace, "neighbours") == "vx"


def test_unknown_model_is_refused(cql_session: Any, keyspace: str) -> None:
    with pytest.raises(versions.VersionError, match="unknown model"):
        versions.list_versions(cql_session, keyspace, "bananas")


def test_content_version_is_stable_and_parameter_sensitive(tmp_path: Any) -> None:
    path = tmp_path / "n.csv"
    path.write_text("item_id,similar_item_id,score\na,b,1\n")
    first = versions.content_version("nb", path, 50)
    assert first == versions.content_version("nb", path, 50) and first.startswith("nb-")
    assert first != versions.content_version("nb", path, 20)

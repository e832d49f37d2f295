"""A real three-node cluster: one node killed and restarted under load, a version published
while it is down.

Three Cassandra nodes on 127.0.0.1-3 (scripts/stack.py CLUSTER), a keyspace replicated to
all three, the service reading at LOCAL_QUORUM with its neighbour cache off so that every
feed and similar-items answer reads the cluster. Two of three replicas make a quorum, so
with one node down nothing may fail and nothing may be degraded; a new neighbours version
published meanwhile must complete and be served. Measurements go to reports/faults.json
(docs/reliability.md quotes them).
"""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cassandra import Unavailable
from cassandra.cluster import NoHostAvailable

from app.config import Settings
from app.schema import cql
from app.sources.scylla import connect
from scripts import stack
from tests.conftest import RUN_ID, Dataset, recs_cli
from tests.fault.test_faults import summary
from tests.support import Probe, ServiceProcess, record, wait_for

pytestmark = pytest.mark.cluster

REPLICATION = "NetworkTopologyStrategy:datacenter1=3"
# Steady load before the kill: the "before" figures, and a warm JIT on every node. A read that
# a coordinator sent to the dead replica is sent to the third after 50 ms (the tables'
# speculative_retry), so none waits for the replica to be marked down.
WARM_UP_S = 8.0


def hosts_up(settings: Settings) -> int:
    """How many nodes the driver, connecting through node 1, sees up."""
    cluster, session = connect(settings.model_copy(update={"scylla_timeout_ms": 10_000}))
    try:
        session.execute("SELECT release_version FROM system.local")
        return sum(1 for host in cluster.metadata.all_hosts() if host.is_up)
    finally:
        cluster.shutdown()


def schema_applied(session: Any, settings: Settings) -> bool:
    """The schema applied, and a quorum read answered with each node coordinating."""
    keyspace = settings.scylla_keyspace
    try:
        cql.apply(session, keyspace=keyspace, replication=REPLICATION)
        for host in session.cluster.metadata.all_hosts():
            session.execute(f"SELECT version FROM {keyspace}.schema_migrations", host=host)
    except (NoHostAvailable, Unavailable):
        return False
    return True


def load(env: dict[str, str], *args: str) -> None:
    """`recs load ...`, again until it succeeds: freshly started nodes on a busy box may time
    out a quorum write, and a load of the same file rewrites the same version."""
    failures: list[str] = []

    def loaded() -> bool:
        result = recs_cli(env, "load", *args, "--quiet", check=False)
        if result.returncode:
            failures.append(result.stderr[-500:])
        return result.returncode == 0

    try:
        wait_for(loaded, timeout_s=300, step_s=5)
    except AssertionError:
        raise AssertionError(f"recs load {args[0]} kept failing: {failures[-3:]}") from None


@pytest.fixture(scope="module")
def cluster_env(loaded_env: dict[str, str], dataset: Dataset) -> Iterator[dict[str, str]]:
    """The session's DynamoDB table and catalog, and the dataset's models in a keyspace of
    the three-node cluster. Nodes that are not running start empty (a cluster that has been
    through earlier runs' kills carries their hints and dropped keyspaces) and are stopped
    after the module; a running cluster is reused as it is."""
    cfg = stack.load_config()
    started = [node for node in stack.CLUSTER if stack.pid_of(node, cfg) is None]
    if started:
        for node in stack.CLUSTER:
            stack.stop(node, cfg)
            stack.wipe(node, cfg)
    for node in stack.CLUSTER:  # node 1 first: it seeds the others
        stack.start(node, cfg)
    env = {
        **loaded_env,
        "RECS_SCYLLA_HOSTS": ",".join(node.address for node in stack.CLUSTER),
        "RECS_SCYLLA_PORT": str(cfg.cluster_cql_port),
        "RECS_SCYLLA_KEYSPACE": f"recs_cluster_{RUN_ID}",
        "RECS_SCYLLA_REPLICATION": REPLICATION,
    }
    settings = Settings.from_env(env)
    try:
        wait_for(lambda: hosts_up(settings) == 3, timeout_s=120, step_s=1)
        admin, session = connect(settings.model_copy(update={"scylla_timeout_ms": 30_000}))
        try:
            # The driver may see three nodes up before each node's gossip does: a node that
            # still counts itself alone refuses quorum. Schema changes are idempotent.
            wait_for(lambda: schema_applied(session, settings), timeout_s=120, step_s=2)
            neighbours = str(dataset.path / "neighbours.csv.gz")
            load(env, "neighbours", neighbours, "--version", "cluster-one")
            load(env, "popular", str(dataset.path / "popular.csv"))
            yield env
            session.execute(f"DROP KEYSPACE IF EXISTS {settings.scylla_keyspace}", timeout=60)
        finally:
            admin.shutdown()
    finally:
        for node in started:
            stack.stop(node, cfg)


@pytest.fixture
def service(cluster_env: dict[str, str], tmp_path: Path) -> Iterator[ServiceProcess]:
    process = ServiceProcess(
        env={
            **cluster_env,
            "RECS_NEIGHBOUR_CACHE_MB": "0",  # every answer reads the cluster
            # Three freshly started JVMs, DynamoDB Local, the service and the probe share this
            # box's two cores: what fails a read here must be the fault, not the box.
            "RECS_REQUEST_DEADLINE_MS": "4500",
            "RECS_SCYLLA_TIMEOUT_MS": "4000",
            "RECS_DYNAMODB_TIMEOUT_MS": "4000",
            "RECS_CATALOG_TIMEOUT_MS": "4000",
        },
        log=tmp_path / "service.log",
    )
    process.start()
    yield process
    process.stop()


def neighbours_version(model_version: str) -> str:
    found = re.search(r"neighbours=([^,;]+)", model_version)
    assert found, model_version
    return found.group(1)


def traffic(dataset: Dataset) -> Any:
    users = sorted(u for u, h in dataset.histories.items() if len(h) >= 10)[:50]
    items = sorted(dataset.neighbours)

    def request(client: httpx.Client, n: int) -> tuple[str, httpx.Response]:
        if n % 2 == 0:
            return "feed", client.get(f"/v1/users/{users[n % len(users)]}/recommendations")
        return "similar", client.get(f"/v1/items/{items[(n * 7919) % len(items)]}/similar")

    return request


def test_one_node_killed_and_restarted_with_a_publish_while_it_is_down(
    service: ServiceProcess, cluster_env: dict[str, str], dataset: Dataset
) -> None:
    node = stack.CLUSTER[2]
    with Probe(service.url, traffic(dataset)) as probe:
        wait_for(lambda: len(probe.samples) >= 40, timeout_s=60)
        time.sleep(WARM_UP_S)
        pid = stack.pid_of(node)
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        killed = time.monotonic()
        time.sleep(2.0)
        publishing = time.monotonic()
        publish = recs_cli(
            cluster_env, "load", "neighbours", str(dataset.path / "neighbours.csv.gz"),
            "--version", "cluster-two", "--quiet",
        )  # fmt: skip
        published = time.monotonic()

        def serving_new_version() -> bool:
            body = httpx.get(f"{service.url}/readyz").json()
            return neighbours_version(body["model_version"]) == "cluster-two"

        switched_after = wait_for(serving_new_version, timeout_s=30)
        time.sleep(2.0)
        restarting = time.monotonic()
        stack.start(node)
        back = time.monotonic()
        # The driver learns the node is up again and routes to it; reads that land on it
        # find the version published while it was down (hints, or the quorum's repair).
        time.sleep(5.0)
        ended = time.monotonic()

    before = probe.between(0, killed)
    down = probe.between(killed, restarting)
    during_restart = probe.between(restarting, back)
    after = probe.between(back, ended)
    record(
        "cluster_node_killed",
        before=summary(before),
        node_down=summary(down),
        during_restart=summary(during_restart),
        after_restart=summary(after),
        publish_s=round(published - publishing, 1),
        served_new_version_s_after_publish=round(switched_after, 1),
        restart_s=round(back - restarting, 1),
        scylla_degraded=sum("scylla" in s.body.get("degraded", ()) for s in probe.samples),
    )
    assert publish.returncode == 0
    assert down and during_restart and after
    failed = [(s.kind, s.status, s.body) for s in probe.samples if s.status != 200]
    assert failed == []
    # Two of three replicas always answered: no answer may lack what Scylla holds.
    scylla_degraded = [s.kind for s in probe.samples if "scylla" in s.body.get("degraded", ())]
    assert scylla_degraded == []
    new_version = [s for s in after if neighbours_version(s.body["model_version"]) == "cluster-two"]
    assert new_version and all(s.body["items"] for s in new_version)

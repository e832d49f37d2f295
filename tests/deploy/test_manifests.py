"""The rendered overlays are valid Kubernetes objects, wired to each other, and production-shaped.

What ties them to the app itself (port, routes, settings) is in test_app_contract.py.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest

from tests.deploy._manifests import (
    KUBERNETES_VERSION,
    Manifests,
    cpu_cores,
    labels_match,
    mebibytes,
)

EXPECTED_KINDS = {
    "ServiceAccount",
    "ConfigMap",
    "Deployment",
    "Service",
    "HorizontalPodAutoscaler",
    "PodDisruptionBudget",
    "NetworkPolicy",
    "ServiceMonitor",
}
# Kinds without a bundled schema, checked structurally by test_servicemonitor_is_well_formed.
CUSTOM_API_GROUPS = ("monitoring.coreos.com/",)

# monitoring.coreos.com/v1 ServiceMonitor fields (prometheus-operator API reference).
SERVICEMONITOR_SPEC_FIELDS = {
    "attachMetadata", "bodySizeLimit", "convertClassicHistogramsToNHCB", "endpoints",
    "fallbackScrapeProtocol", "jobLabel", "keepDroppedTargets", "labelLimit",
    "labelNameLengthLimit", "labelValueLengthLimit", "namespaceSelector",
    "nativeHistogramBucketLimit", "nativeHistogramMinBucketFactor", "podTargetLabels",
    "sampleLimit", "scrapeClass", "scrapeClassicHistograms", "scrapeProtocols", "selector",
    "selectorMechanism", "serviceDiscoveryRole", "targetLabels", "targetLimit",
}  # fmt: skip
SERVICEMONITOR_ENDPOINT_FIELDS = {
    "authorization", "basicAuth", "bearerTokenFile", "bearerTokenSecret", "enableHttp2",
    "filterRunning", "followRedirects", "honorLabels", "honorTimestamps", "interval",
    "metricRelabelings", "oauth2", "params", "path", "port", "proxyUrl", "relabelings",
    "scheme", "scrapeTimeout", "targetPort", "tlsConfig", "trackTimestampsStaleness",
}  # fmt: skip
# The CRD's pattern for durations.
PROM_DURATION = re.compile(r"(\d+y)?(\d+w)?(\d+d)?(\d+h)?(\d+m)?(\d+s)?(\d+ms)?")
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


def _seconds(duration: str) -> float:
    units = {"y": 31_536_000, "w": 604_800, "d": 86_400, "h": 3600, "m": 60, "s": 1, "ms": 0.001}
    return sum(int(n) * units[u] for n, u in re.findall(r"(\d+)(ms|[ywdhms])", duration))


# --- Schema ---------------------------------------------------------------------------------


def test_every_object_validates_strictly_against_the_pinned_kubernetes(
    manifests: Manifests,
) -> None:
    errors: list[str] = []
    for obj in manifests.objects:
        what = f"{obj['kind']}/{obj['metadata']['name']}"
        if obj["apiVersion"].startswith(CUSTOM_API_GROUPS):
            continue
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = ".".join(str(part) for part in exc.path)
            errors.append(f"{what}: {where}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            errors.append(f"{what}: {exc.message}")
    assert not errors, f"{manifests.overlay} vs Kubernetes {KUBERNETES_VERSION}:\n" + "\n".join(
        errors
    )


def test_strict_validation_rejects_unknown_fields(prod: Manifests) -> None:
    """The control for the test above: a misspelt field must not pass."""
    deployment = copy.deepcopy(prod.one("Deployment"))
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_each_overlay_renders_the_expected_objects(manifests: Manifests) -> None:
    kinds = [obj["kind"] for obj in manifests.objects]
    for kind in EXPECTED_KINDS:
        assert kinds.count(kind) == 1, f"{manifests.overlay}: {kinds.count(kind)} × {kind}"
    extra = set(kinds) - EXPECTED_KINDS - {"Secret"}
    assert not extra, f"{manifests.overlay}: unexpected kinds {extra}"
    namespaces = {obj["metadata"].get("namespace") for obj in manifests.objects}
    assert len(namespaces) == 1 and None not in namespaces, namespaces
    for obj in manifests.objects:
        assert DNS_LABEL.fullmatch(obj["metadata"]["name"]), obj["metadata"]["name"]


def test_servicemonitor_is_well_formed(manifests: Manifests) -> None:
    """No schema is bundled for this CRD: check its shape and what it points at by hand."""
    monitor = manifests.one("ServiceMonitor")
    service = manifests.one("Service")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert set(monitor) <= {"apiVersion", "kind", "metadata", "spec"}
    spec = monitor["spec"]
    assert set(spec) <= SERVICEMONITOR_SPEC_FIELDS, set(spec) - SERVICEMONITOR_SPEC_FIELDS
    assert set(spec["selector"]) <= {"matchLabels", "matchExpressions"}
    assert labels_match(spec["selector"]["matchLabels"], service["metadata"]["labels"]), (
        "the ServiceMonitor does not select the Service"
    )
    if "namespaceSelector" in spec:  # default: its own namespace, where the Service is
        assert spec["namespaceSelector"].get("matchNames") == [service["metadata"]["namespace"]]
    port_names = {port["name"] for port in service["spec"]["ports"]}
    assert spec["endpoints"], "no endpoints to scrape"
    for endpoint in spec["endpoints"]:
        unknown = set(endpoint) - SERVICEMONITOR_ENDPOINT_FIELDS
        assert not unknown, f"unknown endpoint fields {unknown}"
        assert endpoint.get("port") in port_names, f"{endpoint.get('port')!r} not in {port_names}"
        assert isinstance(endpoint.get("path"), str) and endpoint["path"].startswith("/")
        for key in ("interval", "scrapeTimeout"):
            assert PROM_DURATION.fullmatch(str(endpoint[key])), f"{key}: {endpoint[key]!r}"
        assert _seconds(endpoint["scrapeTimeout"]) <= _seconds(endpoint["interval"])


# --- Wiring ---------------------------------------------------------------------------------


def test_selectors_select_the_pods(manifests: Manifests) -> None:
    deployment = manifests.one("Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    selectors: dict[str, dict[str, str]] = {
        "Deployment": deployment["spec"]["selector"]["matchLabels"],
        "Service": manifests.one("Service")["spec"]["selector"],
        "PodDisruptionBudget": manifests.one("PodDisruptionBudget")["spec"]["selector"][
            "matchLabels"
        ],
        "NetworkPolicy": manifests.one("NetworkPolicy")["spec"]["podSelector"]["matchLabels"],
    }
    for i, spread in enumerate(manifests.pod["topologySpreadConstraints"]):
        selectors[f"topologySpreadConstraints[{i}]"] = spread["labelSelector"]["matchLabels"]
    for owner, selector in selectors.items():
        assert selector, f"{owner}: empty selector"
        assert labels_match(selector, pod_labels), f"{owner} selector {selector} misses the pods"

    target = manifests.one("HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    account = manifests.one("ServiceAccount")["metadata"]["name"]
    assert manifests.pod["serviceAccountName"] == account


def test_service_is_clusterip_with_a_port_named_http(manifests: Manifests) -> None:
    service = manifests.one("Service")["spec"]
    assert service.get("type", "ClusterIP") == "ClusterIP"
    ports = {port["name"]: port for port in service["ports"]}
    assert "http" in ports, "the ServiceMonitor and the docs rely on a port named http"
    container_ports = {port["name"] for port in manifests.container["ports"]}
    assert ports["http"]["targetPort"] in container_ports


def test_config_and_secret_references_resolve(manifests: Manifests) -> None:
    for source in manifests.container["envFrom"]:
        if "configMapRef" in source:
            name = source["configMapRef"]["name"]
            assert manifests.named("ConfigMap", name), f"no ConfigMap {name}"
        assert not source.get("configMapRef", source.get("secretRef", {})).get("optional"), (
            "a missing ConfigMap or Secret must stop the pod, not start it half-configured"
        )
    for config_map in manifests.all("ConfigMap"):
        assert all(isinstance(v, str) for v in config_map.get("data", {}).values())


# --- Pod shape --------------------------------------------------------------------------------


def test_pod_and_container_are_locked_down(manifests: Manifests) -> None:
    pod, container = manifests.pod, manifests.container
    pod_security = pod["securityContext"]
    assert pod_security["runAsNonRoot"] is True
    assert pod_security["runAsUser"] > 0 and pod_security["runAsGroup"] > 0
    assert pod_security["seccompProfile"]["type"] == "RuntimeDefault"
    security = container["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security.get("runAsUser", pod_security["runAsUser"]) == pod_security["runAsUser"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security.get("privileged", False) is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert not security["capabilities"].get("add")
    assert security.get("seccompProfile", pod_security["seccompProfile"])["type"] == (
        "RuntimeDefault"
    )
    # The only writable place: an emptyDir at /tmp.
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]
    assert pod["automountServiceAccountToken"] is False
    assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC")


def test_service_links_are_off(manifests: Manifests) -> None:
    """Service links would inject RECS_PORT=tcp://<ip>:80 (the Service is named `recs`), which
    the app reads as its port and refuses to start."""
    assert manifests.pod.get("enableServiceLinks") is False


def test_resources_are_requested_and_limited(manifests: Manifests) -> None:
    resources = manifests.container["resources"]
    for kind in ("cpu", "memory"):
        assert kind in resources["requests"] and kind in resources["limits"], kind
    assert cpu_cores(resources["limits"]["cpu"]) >= cpu_cores(resources["requests"]["cpu"])
    memory_request = mebibytes(resources["requests"]["memory"])
    assert memory_request == mebibytes(resources["limits"]["memory"]), (
        "memory request == limit: the pod is never OOM-killed for using what it asked for"
    )
    if manifests.overlay == "prod":
        # One uvicorn process per container: about one core.
        assert 0.5 <= cpu_cores(resources["requests"]["cpu"]) <= 1.0


def test_probes_are_http_on_the_named_port(manifests: Manifests) -> None:
    container = manifests.container
    for probe_name in ("startupProbe", "readinessProbe", "livenessProbe"):
        probe = container[probe_name]
        assert probe["httpGet"]["port"] == "http", probe_name
        assert probe["timeoutSeconds"] <= probe["periodSeconds"], probe_name
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 30, (
        "startup must allow the CQL connect (5 s timeout) and the first model-version read"
    )
    liveness = container["livenessProbe"]
    assert liveness["periodSeconds"] * liveness["failureThreshold"] >= 20, (
        "a GC pause or a CPU burst must not restart the pod"
    )


def test_prestop_sleeps_before_sigterm(manifests: Manifests) -> None:
    pre_stop = manifests.container["lifecycle"]["preStop"]
    assert 3 <= pre_stop["sleep"]["seconds"] <= 10


def test_pods_spread_over_zones_and_nodes(manifests: Manifests) -> None:
    spread = {c["topologyKey"]: c for c in manifests.pod["topologySpreadConstraints"]}
    assert {"topology.kubernetes.io/zone", "kubernetes.io/hostname"} <= set(spread)
    assert manifests.pod["nodeSelector"].get("kubernetes.io/os") == "linux"


def test_rolling_update_keeps_capacity(manifests: Manifests) -> None:
    strategy = manifests.one("Deployment")["spec"]["strategy"]
    assert strategy["type"] == "RollingUpdate"
    assert strategy["rollingUpdate"]["maxUnavailable"] in (0, "0%")


# --- Per environment ----------------------------------------------------------------------


def test_the_autoscaler_alone_owns_the_replica_count(dev: Manifests, prod: Manifests) -> None:
    for manifests in (dev, prod):
        assert "replicas" not in manifests.one("Deployment")["spec"]


def test_dev_runs_one_small_pod(dev: Manifests) -> None:
    assert dev.one("HorizontalPodAutoscaler")["spec"]["minReplicas"] == 1
    pdb = dev.one("PodDisruptionBudget")["spec"]
    assert "minAvailable" not in pdb, "with one replica, minAvailable would block node drains"
    assert cpu_cores(dev.container["resources"]["requests"]["cpu"]) < 1


def test_prod_is_highly_available_and_autoscaled(prod: Manifests) -> None:
    hpa = prod.one("HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    spec = hpa["spec"]
    assert spec["minReplicas"] >= 3
    assert spec["maxReplicas"] > spec["minReplicas"]
    metrics: list[dict[str, Any]] = spec["metrics"]
    assert [m["resource"]["name"] for m in metrics if m["type"] == "Resource"] == ["cpu"]
    pdb = prod.one("PodDisruptionBudget")["spec"]
    assert "maxUnavailable" not in pdb
    assert 2 <= pdb["minAvailable"] < spec["minReplicas"], (
        "minAvailable must keep two pods serving and still let a drain evict one"
    )


@pytest.mark.parametrize(
    ("overlay", "tag_pattern"),
    [("prod", r"\d+\.\d+\.\d+([-+][\w.]+)?"), ("dev", r"[\w.-]+")],
    ids=["prod", "dev"],
)
def test_images_come_from_the_registry_with_a_tag(
    rendered: dict[str, Manifests], overlay: str, tag_pattern: str
) -> None:
    image = rendered[overlay].container["image"]
    match = re.fullmatch(
        r"registry\.example\.com/recs:(?P<tag>[^@]+)(@sha256:[0-9a-f]{64})?", image
    )
    assert match, f"{overlay}: {image!r} is not registry.example.com/recs:<tag>"
    assert match["tag"] != "latest" and re.fullmatch(tag_pattern, match["tag"]), image

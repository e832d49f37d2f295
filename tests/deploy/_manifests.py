"""Render the kustomize overlays and read what a pod of the service would get from them."""

from __future__ import annotations

import base64
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from scripts import tools

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "k8s"
OVERLAYS = ("dev", "prod")

# The Kubernetes version the manifests are validated against (bundled schemas of
# kubernetes-validate, offline). The manifests need >= 1.30 (preStop `sleep`); bump this with
# the clusters.
KUBERNETES_VERSION = "1.33.0"

# The container that runs the service, and the Secret prod expects to exist already.
CONTAINER = "recs"
SECRET_NAME = "recs-secrets"

Obj = dict[str, Any]


def kustomize_binary() -> Path:
    """The kustomize that scripts/tools.sh installs, at the version it pins."""
    binary = tools.require("kustomize")
    pinned = tools.pinned_version("kustomize")
    out = subprocess.run(
        [str(binary), "version"], capture_output=True, text=True, timeout=30, check=False
    )
    found = out.stdout.strip().splitlines()[0] if out.stdout.strip() else out.stderr.strip()
    if out.returncode != 0 or found != pinned:
        raise LookupError(
            f"{binary} reports {found!r}, scripts/tools.sh pins {pinned}: "
            "run `bash scripts/tools.sh`"
        )
    return binary


def render(kustomize: Path, overlay: str) -> list[Obj]:
    out = subprocess.run(
        [str(kustomize), "build", str(K8S / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"kustomize build k8s/overlays/{overlay} failed:\n{out.stderr}")
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


@dataclass(frozen=True)
class Manifests:
    """The objects of one rendered overlay."""

    overlay: str
    objects: list[Obj]

    def all(self, kind: str) -> list[Obj]:
        return [obj for obj in self.objects if obj["kind"] == kind]

    def one(self, kind: str) -> Obj:
        found = self.all(kind)
        assert len(found) == 1, f"{self.overlay}: expected one {kind}, found {len(found)}"
        return found[0]

    def named(self, kind: str, name: str) -> Obj | None:
        return next((o for o in self.all(kind) if o["metadata"]["name"] == name), None)

    @property
    def pod(self) -> Obj:
        spec: Obj = self.one("Deployment")["spec"]["template"]["spec"]
        return spec

    @property
    def container(self) -> Obj:
        containers: dict[str, Obj] = {c["name"]: c for c in self.pod["containers"]}
        assert CONTAINER in containers, f"{self.overlay}: no container named {CONTAINER!r}"
        return containers[CONTAINER]

    def env_sources(self) -> list[EnvSource]:
        """Every variable the container gets, where it comes from, and its value if known."""
        out: list[EnvSource] = []
        for source in self.container.get("envFrom", []):
            if "configMapRef" in source:
                name = source["configMapRef"]["name"]
                config_map = self.named("ConfigMap", name)
                assert config_map is not None, f"{self.overlay}: no ConfigMap {name}"
                out += [
                    EnvSource(key, "ConfigMap", name, value)
                    for key, value in config_map.get("data", {}).items()
                ]
            elif "secretRef" in source:
                name = source["secretRef"]["name"]
                secret = self.named("Secret", name)
                if secret is None:  # created outside the repo (prod): keys not known here
                    out.append(EnvSource(None, "Secret", name, None))
                    continue
                out += [
                    EnvSource(key, "Secret", name, base64.b64decode(value).decode())
                    for key, value in secret.get("data", {}).items()
                ]
                out += [
                    EnvSource(key, "Secret", name, value)
                    for key, value in secret.get("stringData", {}).items()
                ]
        for var in self.container.get("env", []):
            ref = var.get("valueFrom", {})
            if "secretKeyRef" in ref:
                out.append(EnvSource(var["name"], "Secret", ref["secretKeyRef"]["name"], None))
            elif "configMapKeyRef" in ref:
                out.append(
                    EnvSource(var["name"], "ConfigMap", ref["configMapKeyRef"]["name"], None)
                )
            else:
                out.append(EnvSource(var["name"], "env", None, var.get("value")))
        return out


@dataclass(frozen=True)
class EnvSource:
    """One environment variable of the container; `name` None: every key of an external Secret."""

    name: str | None
    origin: str  # "ConfigMap", "Secret" or "env" (a literal in the Deployment)
    object_name: str | None
    value: str | None


def labels_match(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def cpu_cores(quantity: str | int | float) -> float:
    text = str(quantity)
    return int(text[:-1]) / 1000 if text.endswith("m") else float(text)


def mebibytes(quantity: str) -> float:
    for suffix, factor in (("Ki", 1 / 1024), ("Mi", 1), ("Gi", 1024)):
        if quantity.endswith(suffix):
            return float(quantity[: -len(suffix)]) * factor
    raise AssertionError(f"use binary units (Mi, Gi) for memory, not {quantity!r}")

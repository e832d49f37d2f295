"""The machine a run happened on, and the code it measured: for the report's header."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
import sys
from pathlib import Path

from scripts import tools

REPO = Path(__file__).resolve().parents[2]
PACKAGES = (
    "fastapi",
    "starlette",
    "uvicorn",
    "uvloop",
    "httptools",
    "pydantic",
    "orjson",
    "scylla-driver",
    "aioboto3",
    "boto3",
    "httpx",
    "httpx-aiohttp",
    "aiohttp",
    "prometheus-client",
)


def describe() -> dict[str, object]:
    return {
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "kernel": f"{platform.system()} {platform.release()}",
        "python": sys.version.split()[0] + f" ({sys.implementation.name})",
        "packages": {name: _version(name) for name in PACKAGES},
        "vegeta": tools.pinned_version("vegeta"),
        "git": _git("describe", "--always", "--dirty", "--abbrev=12").strip(),
        "app_changes": _git("status", "--porcelain", "--", "app").splitlines(),
    }


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "-"


def _git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10
        ).stdout.rstrip()
    except (OSError, subprocess.SubprocessError):
        return ""

"""The machine a run happened on, and the code it measured: for the report's header."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import re
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


def load_average() -> tuple[float, float, float]:
    one, five, fifteen = os.getloadavg()
    return one, five, fifteen


def describe() -> dict[str, object]:
    cpu_model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gib = 0.0
    try:
        match = re.search(r"MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text())
        if match:
            memory_gib = int(match.group(1)) / 1024 / 1024
    except OSError:
        pass
    return {
        "cpu_model": cpu_model or platform.processor() or "unknown",
        "cores": os.cpu_count(),
        "memory_gib": round(memory_gib, 1),
        "kernel": f"{platform.system()} {platform.release()}",
        "python": sys.version.split()[0] + f" ({sys.implementation.name})",
        "packages": {name: _version(name) for name in PACKAGES},
        "vegeta": _pinned("vegeta"),
        "git": _git("describe", "--always", "--dirty", "--abbrev=12").strip(),
        "app_changes": [line for line in _git("status", "--porcelain", "--", "app").splitlines()],
    }


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "-"


def _pinned(tool: str) -> str:
    try:
        return tools.pinned_version(tool)
    except (OSError, LookupError):
        return "?"


def _git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10
        ).stdout.rstrip()
    except (OSError, subprocess.SubprocessError):
        return ""

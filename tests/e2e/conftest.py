"""End-to-end fixtures: the service started as a subprocess (`python -m app`), serving over
HTTP from the small demo that tests/conftest.py loads into the real stack."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import ServiceProcess

API_KEYS = ("e2e-key-one", "e2e-key-two")


@pytest.fixture(scope="session")
def service(loaded_env: dict[str, str], data_root: Path) -> Iterator[ServiceProcess]:
    process = ServiceProcess(
        env={
            **loaded_env,
            "RECS_MODEL_REFRESH_S": "0.3",
            "RECS_LOG_LEVEL": "warning",
            "RECS_API_KEYS": ",".join(API_KEYS),
        },
        log=data_root / "service.log",
    )
    process.start()
    yield process
    process.stop()


@pytest.fixture
def http(service: ServiceProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=service.url, timeout=5) as client:
        yield client

"""Logs never hold a secret, and each request gets exactly one access line."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from app.offline.demo import generate_demo
from tests.support import ServiceProcess, wait_for

pytestmark = pytest.mark.e2e

SECRETS = ("key-in-a-query-string", "key-in-a-header", "the-cursor-secret", "an-api-key")


def test_an_access_line_per_request_without_query_strings_or_keys(tmp_path: Path) -> None:
    generate_demo(tmp_path / "demo", items=300, users=50, seed=2)
    log = tmp_path / "service.log"
    service = ServiceProcess(
        env={
            "RECS_BACKEND": "embedded",
            "RECS_EMBEDDED_DATA_DIR": str(tmp_path / "demo"),
            "RECS_ACCESS_LOG": "true",
            "RECS_API_KEYS": "an-api-key",
            "RECS_CURSOR_SECRET": "the-cursor-secret",
        },
        log=log,
    )
    service.start()
    try:
        with httpx.Client(base_url=service.url, timeout=10) as http:
            response = http.get(
                "/v1/popular",
                params={"limit": 3, "api_key": "key-in-a-query-string"},
                headers={"Authorization": "Bearer key-in-a-header", "X-Request-ID": "rid-1"},
            )
            assert response.status_code == 200
            refused = http.post("/v1/events", headers={"X-Request-ID": "rid-2"}, content=b"{}")
            assert refused.status_code == 401
    finally:
        service.stop()
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]

    def access_lines(rid: str) -> list[dict[str, object]]:
        return [line for line in lines if line.get("request_id") == rid and "status" in line]

    wait_for(lambda: bool(access_lines("rid-1")), timeout_s=10)
    (line,) = access_lines("rid-1")
    assert line["path"] == "/v1/popular" and line["status"] == 200
    assert len(access_lines("rid-2")) == 1
    text = log.read_text()
    for secret in SECRETS:
        assert secret not in text, secret

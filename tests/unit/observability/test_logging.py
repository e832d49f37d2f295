import logging
from collections.abc import Iterator

import orjson
import pytest

from app.observability.logging import configure


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    levels = {name: logging.getLogger(name).level for name in ("cassandra", "httpx", "httpcore")}
    yield
    root.handlers[:], root.level = handlers, level
    for name, saved in levels.items():
        logging.getLogger(name).setLevel(saved)


def _lines(out: str) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in out.splitlines() if line.strip()]


@pytest.mark.usefixtures("restore_logging")
def test_one_json_line_per_record_and_no_line_per_http_call(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure("info")
    logging.getLogger("app.test").info("ready", extra={"port": 8000})
    logging.getLogger("httpx").info('HTTP Request: POST http://catalog/items/lookup "200 OK"')
    logging.getLogger("httpx").warning("connection pool full")

    lines = _lines(capsys.readouterr().out)

    assert [(line["logger"], line["message"]) for line in lines] == [
        ("app.test", "ready"),
        ("httpx", "connection pool full"),
    ]
    assert lines[0]["port"] == 8000 and isinstance(lines[0]["ts_ms"], int)


@pytest.mark.usefixtures("restore_logging")
def test_debug_level_still_shows_the_http_calls(capsys: pytest.CaptureFixture[str]) -> None:
    configure("debug")
    logging.getLogger("httpx").info("HTTP Request: POST http://catalog/items/lookup")
    assert [line["logger"] for line in _lines(capsys.readouterr().out)] == ["httpx"]

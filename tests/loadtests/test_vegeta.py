"""vegeta as the bench drives it, against a recording server: the warm-up sends every distinct
request of a targets file once, and the attacks on one file go on where the last one stopped."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from loadtests.bench import vegeta, workload
from scripts import tools


class Recorder(BaseHTTPRequestHandler):
    paths: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        Recorder.paths.append(self.path)
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def binary() -> Path:
    try:
        return tools.require("vegeta")
    except tools.ToolMissing as exc:
        pytest.fail(str(exc))


@pytest.fixture
def server() -> Iterator[str]:
    Recorder.paths = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def write_targets(path: Path, base: str, names: list[str]) -> Path:
    path.write_text(
        "".join(json.dumps({"method": "GET", "url": f"{base}/{n}"}) + "\n" for n in names)
    )
    return path


def test_distinct_requests_keeps_each_once_in_first_order(tmp_path: Path) -> None:
    targets = write_targets(tmp_path / "similar.jsonl", "http://x", ["a", "b", "a", "c", "b"])
    distinct = workload.distinct_requests(targets)
    assert [json.loads(line)["url"] for line in distinct.read_text().splitlines()] == [
        "http://x/a",
        "http://x/b",
        "http://x/c",
    ]
    assert targets.read_text().count("\n") == 5  # the measured file is untouched
    write_targets(targets, "http://y", ["d", "d"])  # the same file, for another server
    distinct = workload.distinct_requests(targets)
    assert [json.loads(line)["url"] for line in distinct.read_text().splitlines()] == ["http://y/d"]


def test_each_once_sends_every_request_once_and_stops_at_the_end(
    tmp_path: Path, server: str, binary: Path
) -> None:
    names = [f"item-{n}" for n in range(25)]
    targets = write_targets(tmp_path / "t.jsonl", server, names)
    attack = vegeta.Attack.each_once(targets, workers=2, max_duration_s=20)
    result = vegeta.run(binary, attack, tmp_path / "raw", "warmup")
    # Without -lazy vegeta would cycle through the file until the cap: duplicates here.
    assert sorted(Recorder.paths) == sorted(f"/{n}" for n in names)
    assert result.ok == 25 and vegeta.NO_MORE_TARGETS in result.errors


def test_a_stream_of_attacks_goes_on_where_the_last_one_stopped(
    tmp_path: Path, server: str, binary: Path
) -> None:
    names = [f"item-{n}" for n in range(10)]
    stream = workload.TargetStream(write_targets(tmp_path / "t.jsonl", server, names))
    sent: list[list[str]] = []
    for n in range(3):
        Recorder.paths = []
        attack = vegeta.Attack.constant(stream.next_file(), rate=40, duration_s=0.2)
        result = vegeta.run(binary, attack, tmp_path / "raw", f"step-{n}")
        stream.advance(result.requests)
        assert result.requests == len(Recorder.paths) == 8
        sent.append(sorted(Recorder.paths))
    # 24 requests through 10 targets: 0-7, then 8, 9, 0-5, then 6-9, 0-3. From the file's
    # head each time (vegeta alone), all three would have been 0-7.
    assert sent == [
        sorted(f"/item-{n}" for n in [0, 1, 2, 3, 4, 5, 6, 7]),
        sorted(f"/item-{n}" for n in [8, 9, 0, 1, 2, 3, 4, 5]),
        sorted(f"/item-{n}" for n in [6, 7, 8, 9, 0, 1, 2, 3]),
    ]

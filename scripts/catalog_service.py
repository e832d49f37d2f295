"""The reference catalog service: a stand-in for the marketplace's internal listing service.

    python scripts/catalog_service.py --host 127.0.0.1 --port 8700 --data FILE [--delay-ms N]

Items live in memory and are persisted to FILE, a JSONL file with one item per line:
``{"item_id": str, "title": str, "category": str, "price": number, "region": str,
"seller_id": str, "active": bool}``. Only ``item_id`` is required; ``active`` defaults to true,
the other missing fields are answered as null, and unknown fields are dropped.

Routes:
- ``GET /items?ids=a,b,c``: ``{"items": [...]}`` in request order (duplicates answered once),
  unknown ids omitted; 400 when ids is missing or empty, or names more than 500 ids.
- ``POST /items/lookup`` with ``{"ids": ["a", "b", "c"]}``: the same answer and limits. The
  service's client uses it: a long id list costs an HTTP client less in a body than in a URL
  (httpx parses and checks a URL character by character in Python).
- ``PUT /items`` with a JSONL body: upserts (whole items) and persists every item atomically;
  ``{"upserted": n, "total": m}``; a malformed line is a 400 naming it, and nothing changes.
- ``DELETE /items``: removes every item (for tests) and persists; ``{"deleted": n, "total": 0}``.
- ``GET /healthz``: ``{"status": "ok", "items": count}``.

``--delay-ms N`` sleeps N ms before answering an item read (``GET /items`` or the lookup):
fault tests use it to play a catalog slower than the client's timeout.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

MAX_IDS = 500
_OPTIONAL_STR_FIELDS = ("title", "category", "region", "seller_id")

Item = dict[str, Any]


class InvalidItems(ValueError):
    """A JSONL payload that cannot be read as items; ``line`` is 1-based."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line = line


def _parse_item(value: object) -> Item:
    """Validate one decoded JSON value and return it in the service's fixed shape."""
    if not isinstance(value, dict):
        raise ValueError("expected a JSON object")
    item_id = value.get("item_id")
    if not isinstance(item_id, str) or not item_id:
        raise ValueError("item_id must be a non-empty string")
    item: Item = {"item_id": item_id}
    for name in ("title", "category"):
        item[name] = _optional_str(value, name)
    price = value.get("price")
    if price is not None and (isinstance(price, bool) or not isinstance(price, int | float)):
        raise ValueError("price must be a number")
    item["price"] = price
    for name in ("region", "seller_id"):
        item[name] = _optional_str(value, name)
    active = value.get("active", True)
    if not isinstance(active, bool):
        raise ValueError("active must be a boolean")
    item["active"] = active
    return item


def _optional_str(value: dict[str, object], name: str) -> str | None:
    field_value = value.get(name)
    if field_value is not None and not isinstance(field_value, str):
        raise ValueError(f"{name} must be a string")
    return field_value


def parse_jsonl(data: bytes) -> list[Item]:
    """Parse a JSONL payload (blank lines skipped); raise InvalidItems at the first bad line."""
    items: list[Item] = []
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError as error:
            raise InvalidItems(number, f"invalid JSON ({error.msg})") from None
        try:
            items.append(_parse_item(value))
        except ValueError as error:
            raise InvalidItems(number, str(error)) from None
    return items


def dump_jsonl(items: list[Item]) -> bytes:
    return b"".join(orjson.dumps(item) + b"\n" for item in items)


def write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``: readers see the old file or the new one, never a mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


@dataclass
class Catalog:
    """The items in memory, keyed by item_id, and the file that persists them."""

    path: Path
    items: dict[str, Item] = field(default_factory=dict)
    # Serializes writers so that the file always holds the result of the last complete write.
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @classmethod
    def load(cls, path: Path) -> Catalog:
        items = parse_jsonl(path.read_bytes()) if path.exists() else []
        return cls(path=path, items={item["item_id"]: item for item in items})

    async def upsert(self, new_items: list[Item]) -> None:
        async with self.lock:
            merged = self.items | {item["item_id"]: item for item in new_items}
            await asyncio.to_thread(write_atomically, self.path, dump_jsonl(list(merged.values())))
            self.items = merged

    async def clear(self) -> None:
        async with self.lock:
            await asyncio.to_thread(write_atomically, self.path, b"")
            self.items = {}


def _json(body: object, status_code: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status_code, media_type="application/json")


def _error(code: str, message: str, status_code: int = 400, **extra: object) -> Response:
    return _json({"error": {"code": code, "message": message, **extra}}, status_code)


def create_app(catalog: Catalog, delay_ms: int = 0) -> Starlette:
    delay_s = delay_ms / 1000

    async def answer(ids: list[str]) -> Response:
        if not ids:
            return _error("missing_ids", "the request must list at least one item id")
        if len(ids) > MAX_IDS:
            return _error("too_many_ids", f"at most {MAX_IDS} ids per request, got {len(ids)}")
        if delay_s:
            await asyncio.sleep(delay_s)
        items = catalog.items
        found = [items[item_id] for item_id in dict.fromkeys(ids) if item_id in items]
        return _json({"items": found})

    async def get_items(request: Request) -> Response:
        return await answer(
            [item_id for item_id in request.query_params.get("ids", "").split(",") if item_id]
        )

    async def lookup_items(request: Request) -> Response:
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError as error:
            return _error("invalid_json", f"the body is not JSON: {error}")
        ids = body.get("ids") if isinstance(body, dict) else None
        if not isinstance(ids, list) or not all(isinstance(i, str) and i for i in ids):
            return _error("invalid_ids", 'the body must be {"ids": [non-empty strings]}')
        return await answer(ids)

    async def put_items(request: Request) -> Response:
        try:
            new_items = parse_jsonl(await request.body())
        except InvalidItems as error:
            return _error("invalid_jsonl", str(error), line=error.line)
        await catalog.upsert(new_items)
        return _json({"upserted": len(new_items), "total": len(catalog.items)})

    async def delete_items(request: Request) -> Response:
        deleted = len(catalog.items)
        await catalog.clear()
        return _json({"deleted": deleted, "total": 0})

    async def healthz(request: Request) -> Response:
        return _json({"status": "ok", "items": len(catalog.items)})

    return Starlette(
        routes=[
            Route("/items", get_items, methods=["GET"]),
            Route("/items", put_items, methods=["PUT"]),
            Route("/items", delete_items, methods=["DELETE"]),
            Route("/items/lookup", lookup_items, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8700)
    parser.add_argument("--data", type=Path, required=True, help="JSONL file of items")
    parser.add_argument("--delay-ms", type=int, default=0, help="delay before GET /items answers")
    args = parser.parse_args(argv)

    try:
        catalog = Catalog.load(args.data)
    except InvalidItems as error:
        parser.exit(2, f"catalog_service: {args.data}: {error}\n")
    uvicorn.run(
        create_app(catalog, delay_ms=args.delay_ms),
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        lifespan="off",
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()

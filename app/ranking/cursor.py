"""Opaque feed cursors: the items already served on earlier pages of one cursor chain.

A page is recomputed from fresh data on every request (new events change the feed), so an
offset would repeat or skip items. Instead the cursor carries a 32-bit hash of every item
served so far, bound to the request's user and filters, with a checksum:

    base64url( version:1 | fingerprint:4 | hash:4 * n | crc32:4 )

At 4 bytes per item, a chain of 500 items is a 2.7 kB token. A hash collision can only hide
an item, never repeat one; with 500 served items the chance that a given unserved item is
hidden is about 1e-7.
"""

from __future__ import annotations

import base64
import binascii
import struct
import zlib
from collections.abc import Container, Iterable
from dataclasses import dataclass, field

_VERSION = 1
_HEADER = struct.Struct(">BI")
_CRC = struct.Struct(">I")


class CursorError(ValueError):
    """The cursor is not one this service issued for this request."""


def item_hash(item_id: str) -> int:
    return zlib.crc32(item_id.encode())


def fingerprint(*parts: str | None) -> int:
    """Binds a cursor to the request it continues (user, filters)."""
    return zlib.crc32("\x1f".join(part or "" for part in parts).encode())


@dataclass(frozen=True, slots=True)
class Served(Container[str]):
    """Items served on earlier pages, as hashes, in the order they were served."""

    hashes: tuple[int, ...] = ()
    _lookup: frozenset[int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_lookup", frozenset(self.hashes))

    def __contains__(self, item_id: object) -> bool:
        return isinstance(item_id, str) and item_hash(item_id) in self._lookup

    def __len__(self) -> int:
        return len(self.hashes)

    def plus(self, item_ids: Iterable[str]) -> Served:
        return Served(self.hashes + tuple(item_hash(i) for i in item_ids))


def encode(served: Served, request_fingerprint: int) -> str:
    body = _HEADER.pack(_VERSION, request_fingerprint) + struct.pack(
        f">{len(served.hashes)}I", *served.hashes
    )
    raw = body + _CRC.pack(zlib.crc32(body))
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode(token: str, request_fingerprint: int, *, max_items: int) -> Served:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise CursorError("cursor is not valid base64url") from None
    if len(raw) < _HEADER.size + _CRC.size or (len(raw) - _HEADER.size - _CRC.size) % 4:
        raise CursorError("cursor has the wrong length")
    body, (crc,) = raw[: -_CRC.size], _CRC.unpack(raw[-_CRC.size :])
    if zlib.crc32(body) != crc:
        raise CursorError("cursor checksum does not match")
    version, bound_to = _HEADER.unpack(body[: _HEADER.size])
    if version != _VERSION:
        raise CursorError("cursor version is not supported")
    if bound_to != request_fingerprint:
        raise CursorError("cursor belongs to another user or other filters")
    count = (len(body) - _HEADER.size) // 4
    if count > max_items:
        raise CursorError("cursor is longer than any this service issues")
    hashes = struct.unpack(f">{count}I", body[_HEADER.size :])
    return Served(tuple(hashes))

"""Opaque feed cursors: the items already served on earlier pages of one cursor chain.

A page is recomputed from fresh data on every request (new events change the feed), so an
offset would repeat or skip items. Instead the cursor carries a 32-bit hash of every item
served so far, bound to the request's user and filters, signed:

    base64url( version:1 | fingerprint:4 | hash:4 * n | hmac:16 )

The MAC is HMAC-SHA256 under the server's secret (`RECS_CURSOR_SECRET`), truncated to 16
bytes: nobody without the secret can mint a cursor, for any user or filters. Rotation: a
cursor signed under one of `RECS_CURSOR_PREVIOUS_SECRETS` is still accepted; new ones are
signed under the current secret. At 4 bytes per item, a chain of 500 items is a 2.7 kB
token. A hash collision can only hide an item, never repeat one; with 500 served items the
chance that a given unserved item is hidden is about 1e-7.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct
import zlib
from collections.abc import Container, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

_VERSION = 2
_HEADER = struct.Struct(">BI")
MAC_BYTES: Final = 16
# The shortest cursor: a header and a MAC, no item (base64url, unpadded).
MIN_LENGTH: Final = -(-(_HEADER.size + MAC_BYTES) * 4 // 3)


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


class Signer:
    """Signs cursors under the current secret; verifies under it or a previous one."""

    def __init__(self, secret: str, previous: Sequence[str] = ()) -> None:
        # No secret (offline use: evaluation, tests; serving refuses to start without one):
        # a random key, so cursors are good within this process only.
        self._current = secret.encode() if secret else os.urandom(32)
        self._accepted = [self._current, *(key.encode() for key in previous if key)]

    def sign(self, body: bytes) -> bytes:
        return hmac.digest(self._current, body, hashlib.sha256)[:MAC_BYTES]

    def verifies(self, body: bytes, mac: bytes) -> bool:
        valid = False
        for key in self._accepted:  # every key tried: timing tells nothing about which
            valid |= hmac.compare_digest(hmac.digest(key, body, hashlib.sha256)[:MAC_BYTES], mac)
        return valid


def encode(served: Served, request_fingerprint: int, signer: Signer) -> str:
    body = _HEADER.pack(_VERSION, request_fingerprint) + struct.pack(
        f">{len(served.hashes)}I", *served.hashes
    )
    raw = body + signer.sign(body)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode(token: str, request_fingerprint: int, signer: Signer, *, max_items: int) -> Served:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise CursorError("cursor is not valid base64url") from None
    if len(raw) < _HEADER.size + MAC_BYTES or (len(raw) - _HEADER.size - MAC_BYTES) % 4:
        raise CursorError("cursor has the wrong length")
    body, mac = raw[:-MAC_BYTES], raw[-MAC_BYTES:]
    if not signer.verifies(body, mac):
        raise CursorError("cursor was not issued by this service")
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

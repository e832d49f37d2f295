import base64
import struct
import zlib

import pytest

from app.ranking import cursor

SIGNER = cursor.Signer("the-server-secret")


def test_round_trip_remembers_served_items() -> None:
    fp = cursor.fingerprint("user-1", "bikes", None)
    token = cursor.encode(cursor.Served().plus(["a", "b"]), fp, SIGNER)
    served = cursor.decode(token, fp, SIGNER, max_items=10)
    assert "a" in served and "b" in served and "c" not in served
    assert len(served) == 2
    assert token.isascii() and "=" not in token
    assert len(cursor.encode(cursor.Served(), fp, SIGNER)) == cursor.MIN_LENGTH


def test_cursor_is_bound_to_user_and_filters() -> None:
    token = cursor.encode(
        cursor.Served().plus(["a"]), cursor.fingerprint("user-1", None, None), SIGNER
    )
    with pytest.raises(cursor.CursorError, match="another user"):
        cursor.decode(token, cursor.fingerprint("user-2", None, None), SIGNER, max_items=10)
    with pytest.raises(cursor.CursorError):
        cursor.decode(token, cursor.fingerprint("user-1", "bikes", None), SIGNER, max_items=10)


@pytest.mark.parametrize("token", ["", "!!!", "abc", "AAAAAAAAAAAAAAAA", "x" * 41, "0"])
def test_garbage_is_rejected(token: str) -> None:
    with pytest.raises(cursor.CursorError):
        cursor.decode(token, cursor.fingerprint("u"), SIGNER, max_items=10)


def test_tampering_breaks_the_signature() -> None:
    fp = cursor.fingerprint("u")
    token = cursor.encode(cursor.Served().plus(["a", "b", "c"]), fp, SIGNER)
    flipped = token[:8] + ("A" if token[8] != "A" else "B") + token[9:]
    with pytest.raises(cursor.CursorError, match="not issued by this service"):
        cursor.decode(flipped, fp, SIGNER, max_items=10)


def test_a_cursor_cannot_be_forged_without_the_secret() -> None:
    """A checksum is not a signature: with a CRC32 or a blank tail, no cursor is accepted."""
    fp = cursor.fingerprint("victim", None, None)
    body = struct.pack(">BI", 2, fp) + struct.pack(">I", cursor.item_hash("x"))
    for tail in (struct.pack(">I", zlib.crc32(body)), b"\0" * cursor.MAC_BYTES):
        forged = base64.urlsafe_b64encode(body + tail).rstrip(b"=").decode()
        with pytest.raises(cursor.CursorError):
            cursor.decode(forged, fp, SIGNER, max_items=10)
    other = cursor.encode(cursor.Served().plus(["x"]), fp, cursor.Signer("another-secret"))
    with pytest.raises(cursor.CursorError, match="not issued by this service"):
        cursor.decode(other, fp, SIGNER, max_items=10)


def test_a_rotation_accepts_cursors_of_the_previous_secret_and_signs_with_the_new() -> None:
    fp = cursor.fingerprint("u")
    old = cursor.encode(cursor.Served().plus(["a"]), fp, cursor.Signer("old"))
    rotated = cursor.Signer("new", previous=["old"])
    assert "a" in cursor.decode(old, fp, rotated, max_items=10)
    fresh = cursor.encode(cursor.Served().plus(["b"]), fp, rotated)
    assert "b" in cursor.decode(fresh, fp, cursor.Signer("new"), max_items=10)
    with pytest.raises(cursor.CursorError):
        cursor.decode(fresh, fp, cursor.Signer("old"), max_items=10)


def test_without_a_secret_cursors_are_good_within_the_process_only() -> None:
    fp = cursor.fingerprint("u")
    token = cursor.encode(cursor.Served().plus(["a"]), fp, cursor.Signer(""))
    with pytest.raises(cursor.CursorError):
        cursor.decode(token, fp, cursor.Signer(""), max_items=10)


def test_longer_than_issued_is_rejected() -> None:
    fp = cursor.fingerprint("u")
    token = cursor.encode(cursor.Served().plus(str(i) for i in range(11)), fp, SIGNER)
    with pytest.raises(cursor.CursorError, match="longer"):
        cursor.decode(token, fp, SIGNER, max_items=10)

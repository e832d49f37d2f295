import pytest

from app.ranking import cursor


def test_round_trip_remembers_served_items() -> None:
    fp = cursor.fingerprint("user-1", "bikes", None)
    token = cursor.encode(cursor.Served().plus(["a", "b"]), fp)
    served = cursor.decode(token, fp, max_items=10)
    assert "a" in served and "b" in served and "c" not in served
    assert len(served) == 2
    assert token.isascii() and "=" not in token


def test_cursor_is_bound_to_user_and_filters() -> None:
    token = cursor.encode(cursor.Served().plus(["a"]), cursor.fingerprint("user-1", None, None))
    with pytest.raises(cursor.CursorError, match="another user"):
        cursor.decode(token, cursor.fingerprint("user-2", None, None), max_items=10)
    with pytest.raises(cursor.CursorError):
        cursor.decode(token, cursor.fingerprint("user-1", "bikes", None), max_items=10)


@pytest.mark.parametrize("token", ["", "!!!", "abc", "AAAAAAAAAAAAAAAA", "x" * 41])
def test_garbage_is_rejected(token: str) -> None:
    with pytest.raises(cursor.CursorError):
        cursor.decode(token, cursor.fingerprint("u"), max_items=10)


def test_tampering_breaks_the_checksum() -> None:
    fp = cursor.fingerprint("u")
    token = cursor.encode(cursor.Served().plus(["a", "b", "c"]), fp)
    flipped = token[:8] + ("A" if token[8] != "A" else "B") + token[9:]
    with pytest.raises(cursor.CursorError):
        cursor.decode(flipped, fp, max_items=10)


def test_longer_than_issued_is_rejected() -> None:
    fp = cursor.fingerprint("u")
    token = cursor.encode(cursor.Served().plus(str(i) for i in range(11)), fp)
    with pytest.raises(cursor.CursorError, match="longer"):
        cursor.decode(token, fp, max_items=10)

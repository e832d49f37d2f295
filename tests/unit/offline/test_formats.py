import gzip
import os
import pickle
import random
import string
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain import CatalogItem, EventType, is_valid_id
from app.offline.formats import (
    MAX_SKIP_REASONS,
    FormatError,
    ReadStats,
    read_catalog,
    read_interactions,
    read_neighbours,
    read_popular,
    write_catalog,
    write_interactions,
    write_neighbours,
    write_popular,
)

TS = 1_700_000_000_000


def put(path: Path, text: str, *, compress: bool = False) -> Path:
    data = text.encode()
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


# --- Round trips -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["n.csv", "n.csv.gz"])
def test_neighbours_round_trip(tmp_path: Path, name: str) -> None:
    rows = [("a", "b", 0.5), ("a", "c", -1.25), ("b", "a", 3e-7)]
    assert write_neighbours(tmp_path / name, rows) == 3
    assert list(read_neighbours(tmp_path / name)) == rows


@pytest.mark.parametrize("name", ["p.csv", "p.csv.gz"])
def test_popular_round_trip(tmp_path: Path, name: str) -> None:
    rows = [("global", "a", 10.0), ("category:bikes", "b", 2.5), ("region:berlin", "c", 1.0)]
    assert write_popular(tmp_path / name, rows) == 3
    assert list(read_popular(tmp_path / name)) == rows


@pytest.mark.parametrize("name", ["i.csv", "i.csv.gz"])
def test_interactions_round_trip_yields_event_types(tmp_path: Path, name: str) -> None:
    rows = [("u1", "a", EventType.VIEW, TS), ("u1", "b", EventType.PURCHASE, TS + 1)]
    write_interactions(tmp_path / name, rows)
    got = list(read_interactions(tmp_path / name))
    assert got == rows
    assert all(type(row[2]) is EventType for row in got)


@pytest.mark.parametrize("name", ["p.csv", "p.csv.gz"])
def test_popular_segments_are_free_text_labels(tmp_path: Path, name: str) -> None:
    rows = [
        ("category:Children's", "a", 3.0),
        ("category:Home & Garden, Outdoor", "b", 2.0),
        ('region:São Paulo "centro"', "c", 1.0),
        ("category:" + "é" * 128, "d", 0.5),
    ]
    write_popular(tmp_path / name, rows)
    assert list(read_popular(tmp_path / name)) == rows


def test_catalog_categories_and_regions_are_free_text_labels(tmp_path: Path) -> None:
    items = [
        CatalogItem("m1", "Toy Story", "Children's", region="São Paulo"),
        CatalogItem("m2", category="Home & Garden", region="Zürich, Altstadt"),
    ]
    write_catalog(tmp_path / "c.jsonl", items)
    assert list(read_catalog(tmp_path / "c.jsonl")) == items


def test_interaction_logs_from_1970_on_are_read(tmp_path: Path) -> None:
    movielens_1997 = 874_724_710_000
    rows = [("u", "a", EventType.VIEW, 0), ("u", "b", EventType.VIEW, movielens_1997)]
    write_interactions(tmp_path / "i.csv", rows)
    assert list(read_interactions(tmp_path / "i.csv")) == rows


def test_interactions_writer_takes_plain_event_names(tmp_path: Path) -> None:
    write_interactions(tmp_path / "i.csv", [("u1", "a", "add_to_cart", TS)])
    assert (
        tmp_path / "i.csv"
    ).read_text() == f"user_id,item_id,event_type,ts_ms\nu1,a,add_to_cart,{TS}\n"


@pytest.mark.parametrize("name", ["c.jsonl", "c.jsonl.gz"])
def test_catalog_round_trip(tmp_path: Path, name: str) -> None:
    items = [
        CatalogItem("a", "Red bike", "bikes", 120.5, "berlin", "seller-1", True),
        CatalogItem("b", active=False),
    ]
    assert write_catalog(tmp_path / name, items) == 2
    assert list(read_catalog(tmp_path / name)) == items


def test_scores_are_written_with_six_significant_digits(tmp_path: Path) -> None:
    write_neighbours(tmp_path / "n.csv", [("a", "b", 1 / 3)])
    assert (tmp_path / "n.csv").read_text().splitlines()[1] == "a,b,0.333333"


def test_gzip_output_is_deterministic(tmp_path: Path) -> None:
    rows = [("a", "b", 0.5)]
    write_neighbours(tmp_path / "1.csv.gz", rows)
    os.utime(tmp_path, (0, 0))
    write_neighbours(tmp_path / "2.csv.gz", rows)
    assert (tmp_path / "1.csv.gz").read_bytes() == (tmp_path / "2.csv.gz").read_bytes()


def test_writer_replaces_the_file_only_when_done(tmp_path: Path) -> None:
    target = tmp_path / "n.csv"
    write_neighbours(target, [("a", "b", 1.0)])

    def broken() -> object:
        yield ("x", "y", 1.0)
        raise RuntimeError("builder failed")

    with pytest.raises(RuntimeError):
        write_neighbours(target, broken())  # type: ignore[arg-type]
    assert list(read_neighbours(target)) == [("a", "b", 1.0)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["n.csv"]


# --- Accepted variations -----------------------------------------------------------------


def test_columns_in_any_order_with_extra_columns(tmp_path: Path) -> None:
    path = put(
        tmp_path / "n.csv",
        "model,score,similar_item_id,note,item_id\nv1,0.5,b,,a\nv1,0.25,c,hello,a\n",
    )
    assert list(read_neighbours(path)) == [("a", "b", 0.5), ("a", "c", 0.25)]


def test_gzip_is_detected_by_magic_bytes_without_suffix(tmp_path: Path) -> None:
    path = put(
        tmp_path / "interactions.csv",
        f"user_id,item_id,event_type,ts_ms\nu,a,view,{TS}\n",
        compress=True,
    )
    assert list(read_interactions(path)) == [("u", "a", EventType.VIEW, TS)]


def test_bom_crlf_blank_lines_and_missing_final_newline(tmp_path: Path) -> None:
    text = "\ufeffsegment,item_id,score\r\nglobal,a,1\r\n\r\nregion:paris,b,2"
    path = put(tmp_path / "p.csv", text)
    stats = ReadStats()
    assert list(read_popular(path, stats=stats)) == [
        ("global", "a", 1.0),
        ("region:paris", "b", 2.0),
    ]
    assert stats.rows_read == 2


def test_quoted_fields_are_read_with_the_csv_rules(tmp_path: Path) -> None:
    text = (
        "item_id,similar_item_id,score,comment\n"
        '"a","b","0.5","line one\nline two, with a comma"\n'
        "a,c,0.25,plain\n"
        "a,a,0.1,bad\n"
    )
    path = put(tmp_path / "n.csv", text)
    with pytest.raises(FormatError) as caught:
        list(read_neighbours(path))
    assert caught.value.line == 5  # the quoted record spans lines 2-3
    assert list(read_neighbours(path, skip_invalid=True)) == [("a", "b", 0.5), ("a", "c", 0.25)]


@pytest.mark.parametrize("score", ["1", "-2", "0.5", ".5", "5.", "1e-3", "+2E+2"])
def test_accepted_score_syntax(tmp_path: Path, score: str) -> None:
    path = put(tmp_path / "n.csv", f"item_id,similar_item_id,score\na,b,{score}\n")
    assert list(read_neighbours(path)) == [("a", "b", float(score))]


def test_catalog_defaults_and_unknown_keys(tmp_path: Path) -> None:
    path = put(
        tmp_path / "c.jsonl",
        '{"item_id": "a", "color": "red"}\n'
        "\n"
        '{"item_id": "b", "price": 3, "active": null, "title": null}\n',
    )
    assert list(read_catalog(path)) == [CatalogItem("a"), CatalogItem("b", price=3.0)]


# --- Malformed rows ----------------------------------------------------------------------

NEIGHBOURS = "item_id,similar_item_id,score\n"
POPULAR = "segment,item_id,score\n"
INTERACTIONS = "user_id,item_id,event_type,ts_ms\n"

BAD_ROWS = [
    # (reader, file text, line, reason)
    (read_neighbours, NEIGHBOURS + "a,b,1\nbad id,b,1\n", 3, "item_id is not a valid id"),
    (
        read_neighbours,
        NEIGHBOURS + "a," + "x" * 65 + ",1\n",
        2,
        "similar_item_id is not a valid id",
    ),
    (read_neighbours, NEIGHBOURS + "a,b,abc\n", 2, "score is not a number: 'abc'"),
    (read_neighbours, NEIGHBOURS + "a,b,\n", 2, "score is not a number: ''"),
    (read_neighbours, NEIGHBOURS + "a,b,1_0\n", 2, "score is not a number: '1_0'"),
    (read_neighbours, NEIGHBOURS + "a,b,nan\n", 2, "score is not a number: 'nan'"),
    (read_neighbours, NEIGHBOURS + "a,b,1e999\n", 2, "score is not finite: '1e999'"),
    (read_neighbours, NEIGHBOURS + "a,a,1\n", 2, "item_id equals similar_item_id: 'a'"),
    (read_neighbours, NEIGHBOURS + "a,b\n", 2, "row has 2 fields, the header has 3"),
    (read_popular, POPULAR + "top,a,1\n", 2, "segment must be 'global', 'category:<label>'"),
    (read_popular, POPULAR + "category:,a,1\n", 2, "segment must be"),
    (read_popular, POPULAR + "category: \t ,a,1\n", 2, "segment must be"),
    (read_popular, POPULAR + "region:" + "x" * 129 + ",a,1\n", 2, "1 to 128 characters"),
    (read_popular, POPULAR + "global,a,inf\n", 2, "score is not a number: 'inf'"),
    (read_interactions, INTERACTIONS + f"u,a,click,{TS}\n", 2, "unknown event_type 'click'"),
    (read_interactions, INTERACTIONS + f"u,a,VIEW,{TS}\n", 2, "unknown event_type 'VIEW'"),
    (read_interactions, INTERACTIONS + "u,a,view,1.7e12\n", 2, "ts_ms is not an integer"),
    (read_interactions, INTERACTIONS + "u,a,view,-5\n", 2, "ts_ms is not an integer"),
    (read_interactions, INTERACTIONS + f"u:1,,view,{TS}\n", 2, "item_id is not a valid id"),
    (read_neighbours, "item_id,score\na,1\n", 1, "missing column 'similar_item_id'"),
    (
        read_interactions,
        "user,item\n",
        1,
        "missing columns 'user_id', 'item_id', 'event_type', 'ts_ms'",
    ),
    (read_popular, "", 1, "empty file"),
]


@pytest.mark.parametrize(("reader", "text", "line", "reason"), BAD_ROWS)
@pytest.mark.parametrize("compress", [False, True])
def test_malformed_row_reports_file_line_and_reason(
    tmp_path: Path, reader: object, text: str, line: int, reason: str, compress: bool
) -> None:
    path = put(tmp_path / ("data.csv.gz" if compress else "data.csv"), text, compress=compress)
    with pytest.raises(FormatError) as caught:
        list(reader(path))  # type: ignore[operator]
    error = caught.value
    assert (error.path, error.line) == (str(path), line)
    assert reason in error.reason
    assert str(error) == f"{path}:{line}: {error.reason}"


def test_message_format(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    put(tmp_path / "neighbours.csv", NEIGHBOURS + "a,b,1\n" * 15 + "a,b,abc\n")
    with pytest.raises(FormatError, match=r"^neighbours\.csv:17: score is not a number: 'abc'$"):
        list(read_neighbours("neighbours.csv"))


def test_format_error_survives_pickling() -> None:
    error = pickle.loads(pickle.dumps(FormatError("f.csv", 3, "bad")))
    assert (error.path, error.line, error.reason, str(error)) == ("f.csv", 3, "bad", "f.csv:3: bad")


BAD_CATALOG_LINES = [
    ('{"item_id": "a"', "invalid JSON"),
    ('["a"]', "expected a JSON object, got an array"),
    ('{"title": "x"}', "missing item_id"),
    ('{"item_id": 5}', "item_id must be a string, got a number"),
    ('{"item_id": "a b"}', "item_id is not a valid id"),
    ('{"item_id": "a", "price": -1}', "price must be a finite number >= 0: -1.0"),
    ('{"item_id": "a", "price": "10"}', "price must be a number, got a string"),
    ('{"item_id": "a", "price": true}', "price must be a number, got a boolean"),
    ('{"item_id": "a", "active": "yes"}', "active must be true or false: 'yes'"),
    ('{"item_id": "a", "category": "  "}', "category is not a valid label"),
    ('{"item_id": "a", "region": "a\\u0000b"}', "region is not a valid label"),
    ('{"item_id": "a", "seller_id": "shop 1"}', "seller_id is not a valid id"),
    ('{"item_id": "a", "region": 7}', "region must be a string, got a number"),
    ('{"item_id": "a", "title": ["x"]}', "title must be a string, got an array"),
]


@pytest.mark.parametrize(("line_text", "reason"), BAD_CATALOG_LINES)
def test_malformed_catalog_line(tmp_path: Path, line_text: str, reason: str) -> None:
    path = put(tmp_path / "c.jsonl", '{"item_id": "ok"}\n\n' + line_text + "\n")
    with pytest.raises(FormatError) as caught:
        list(read_catalog(path))
    assert caught.value.line == 3
    assert reason in caught.value.reason


def test_invalid_utf8_is_reported_on_its_line(tmp_path: Path) -> None:
    data = (NEIGHBOURS + "a,b,1\n").encode() + b"a\xff,b,1\n"
    (tmp_path / "n.csv").write_bytes(data)
    with pytest.raises(FormatError, match=r":3: item_id is not a valid id .*not valid UTF-8"):
        list(read_neighbours(tmp_path / "n.csv"))
    (tmp_path / "c.jsonl").write_bytes(b'{"item_id": "a"}\n{"item_id": "\xff"}\n')
    with pytest.raises(FormatError, match=r":2: invalid JSON"):
        list(read_catalog(tmp_path / "c.jsonl"))


def test_truncated_gzip_is_a_format_error(tmp_path: Path) -> None:
    data = gzip.compress((NEIGHBOURS + "a,b,1\n" * 50_000).encode())
    (tmp_path / "n.csv.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(FormatError, match="cannot read the file"):
        list(read_neighbours(tmp_path / "n.csv.gz", skip_invalid=True))


def test_missing_file_is_not_a_format_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        list(read_neighbours(tmp_path / "nope.csv"))


# --- Skip and count ----------------------------------------------------------------------


def test_skip_invalid_yields_the_good_rows_and_counts_the_bad(tmp_path: Path) -> None:
    text = INTERACTIONS + f"u,a,view,{TS}\nu,a,click,{TS}\n\nu,b,view,-5\nu,b,purchase,{TS}\nu,c\n"
    path = put(tmp_path / "i.csv", text)
    stats = ReadStats()
    rows = list(read_interactions(path, skip_invalid=True, stats=stats))
    assert rows == [("u", "a", EventType.VIEW, TS), ("u", "b", EventType.PURCHASE, TS)]
    assert (stats.rows_read, stats.rows_skipped, stats.rows_ok) == (5, 3, 2)
    assert [reason.split(": ")[0] for reason in stats.skip_reasons] == [
        f"{path}:3",
        f"{path}:5",
        f"{path}:7",
    ]


def test_skip_reasons_are_capped_and_lines_stay_exact(tmp_path: Path) -> None:
    # Identical bad rows among many good ones: each keeps its own line number.
    lines = [f"item-{i},item-{i + 1},0.5" for i in range(60_000)]
    bad = range(1000, 1000 + 3 * (MAX_SKIP_REASONS + 5), 3)
    for position in bad:
        lines[position] = "a,a,1"
    path = put(tmp_path / "n.csv", NEIGHBOURS + "\n".join(lines) + "\n")
    stats = ReadStats()
    good = sum(1 for _ in read_neighbours(path, skip_invalid=True, stats=stats))
    assert good == 60_000 - len(bad)
    assert (stats.rows_read, stats.rows_skipped) == (60_000, len(bad))
    assert len(stats.skip_reasons) == MAX_SKIP_REASONS
    assert stats.skip_reasons[1] == f"{path}:1005: item_id equals similar_item_id: 'a'"


def test_error_line_is_exact_deep_into_a_large_gzip_file(tmp_path: Path) -> None:
    lines = [f"user-{i % 97},item-{i % 1013},view,{TS + i}" for i in range(120_000)]
    lines[99_999] = f"user-1,item-1,view,{TS}x"
    path = put(tmp_path / "i.csv.gz", INTERACTIONS + "\n".join(lines) + "\n", compress=True)
    with pytest.raises(FormatError) as caught:
        list(read_interactions(path))
    assert caught.value.line == 100_001


# --- The fast path agrees with app.domain ------------------------------------------------

ID_ALPHABET = string.ascii_letters + string.digits + "_.:-" + " /#@é,;'\t"


@settings(max_examples=200, deadline=None)
@given(candidate=st.text(alphabet=ID_ALPHABET, min_size=0, max_size=70))
def test_reader_accepts_exactly_the_ids_is_valid_id_accepts(candidate: str) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = put(Path(directory) / "n.csv", NEIGHBOURS + f"zz,{candidate},1\n")
        accepted = list(read_neighbours(path, skip_invalid=True))
    assert bool(accepted) == (is_valid_id(candidate) and candidate != "zz")


def test_fast_and_slow_paths_give_the_same_rows(tmp_path: Path) -> None:
    rng = random.Random(7)
    rows = [
        (f"u{rng.randrange(50)}", f"i{rng.randrange(500)}", rng.choice(list(EventType)), TS + i)
        for i in range(5000)
    ]
    write_interactions(tmp_path / "clean.csv", rows)
    # A blank line sends its whole block to the slow path.
    text = (tmp_path / "clean.csv").read_text()
    put(tmp_path / "slow.csv", text.replace("\n", "\n\n", 1))
    assert list(read_interactions(tmp_path / "clean.csv")) == rows
    assert list(read_interactions(tmp_path / "slow.csv")) == rows


def test_a_row_with_more_fields_than_the_header_is_rejected(tmp_path: Path) -> None:
    """An unquoted comma inside a value must not shift the columns silently."""
    path = put(tmp_path / "n.csv", NEIGHBOURS + "a,b,1\nzz,0,0,1\n")
    with pytest.raises(FormatError) as caught:
        list(read_neighbours(path))
    assert caught.value.line == 3
    assert "row has 4 fields, the header has 3" in str(caught.value)

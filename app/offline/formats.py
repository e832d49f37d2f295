"""Streaming readers and writers for the four offline data files.

| file             | fields                                 | a reader yields                     |
|------------------|----------------------------------------|-------------------------------------|
| neighbours CSV   | item_id, similar_item_id, score        | `(item_id, similar_item_id, score)` |
| popular CSV      | segment, item_id, score                | `(segment, item_id, score)`         |
| interactions CSV | user_id, item_id, event_type, ts_ms    | `(user_id, item_id, EventType, ts)` |
| catalog JSONL    | item_id, title, category, price,       | `app.domain.CatalogItem`            |
|                  | region, seller_id, active              |                                     |

All files are UTF-8 (a leading BOM is ignored) and may be gzip-compressed (a `.gz`
suffix or the gzip magic bytes). CSV files need a header row; columns are found by
name, in any order, and extra columns are ignored. Blank lines are ignored.

Validation follows `app.domain`: ids obey `is_valid_id`, segments `is_valid_segment`,
event types are `EventType` values, `ts_ms` is an integer of epoch milliseconds >= 0
(a log from 1970 on; the live events endpoint has its own, stricter rule), scores are
finite decimal numbers (`1.5`, `-2`, `3e-4`; not `nan`, `inf` or `1_0`), and a
neighbour never points to itself. In the catalog, `seller_id` must be a valid id (a
lookup key), and `category` and `region` valid labels (`is_valid_label`: free text such
as "Children's" or "São Paulo"): they name segments and filters.

A malformed row raises `FormatError(path, line, reason)`, `line` being the 1-based
physical line (the CSV header is line 1). With `skip_invalid=True` the row is skipped
instead and counted in the `ReadStats` passed by the caller. A missing column, an empty
file or unreadable gzip data always raise.

How the CSV readers stay fast (~1M rows/s): the file is read in blocks of whole lines
and each block is parsed by one regular expression built from the header, which also
validates ids, event types and number syntax. A block where every line matches goes
through a short per-format loop (float/int conversion, the few checks a regex cannot
do). Any other block goes through the slow path: the `csv` module and one per-format
`_parse_*` function, which is the single authority on what is valid and says why
a row is not. The regex only ever accepts a subset of what the slow path accepts,
so both paths give the same rows; a block containing a double quote that does not
match switches the rest of the file to the `csv` module (quoted fields may span lines).

Writers trust their input (it comes from these readers or from our own builders):
they do not validate, write `.gz` when the path ends with `.gz` (deterministic bytes:
no file name or time stamp in the gzip header), write scores with 6 significant digits,
and replace the target atomically (write to a temporary file, then rename).
"""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import math
import operator
import os
import re
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any, Final, TypeAlias

import orjson

from app.domain import (
    ID_CHARSET_DESCRIPTION,
    ID_REGEX,
    LABEL_DESCRIPTION,
    CatalogItem,
    EventType,
    is_valid_id,
    is_valid_label,
    is_valid_segment,
)

__all__ = [
    "INTERACTION_COLUMNS",
    "NEIGHBOUR_COLUMNS",
    "POPULAR_COLUMNS",
    "FormatError",
    "InteractionLog",
    "InteractionRow",
    "NeighbourRow",
    "PathLike",
    "PopularRow",
    "ReadStats",
    "read_catalog",
    "read_interactions",
    "read_neighbours",
    "read_popular",
    "write_catalog",
    "write_interactions",
    "write_neighbours",
    "write_popular",
]

PathLike: TypeAlias = str | os.PathLike[str]
NeighbourRow: TypeAlias = tuple[str, str, float]
"""(item_id, similar_item_id, score)"""
PopularRow: TypeAlias = tuple[str, str, float]
"""(segment, item_id, score)"""
InteractionRow: TypeAlias = tuple[str, str, EventType, int]
"""(user_id, item_id, event_type, ts_ms)"""

NEIGHBOUR_COLUMNS: Final = ("item_id", "similar_item_id", "score")
POPULAR_COLUMNS: Final = ("segment", "item_id", "score")
INTERACTION_COLUMNS: Final = ("user_id", "item_id", "event_type", "ts_ms")

MAX_SKIP_REASONS: Final = 10
"""How many skipped-row messages `ReadStats.skip_reasons` keeps."""

_GZIP_MAGIC: Final = b"\x1f\x8b"
_BOM: Final = b"\xef\xbb\xbf"
_BLOCK_BYTES: Final = 1 << 20
_WRITE_BATCH: Final = 8192
_GZIP_LEVEL: Final = 1
_EVENT_TYPES: Final[dict[str, EventType]] = {e.value: e for e in EventType}
_EVENT_NAMES: Final = ", ".join(e.value for e in EventType)

# Regex fragments of the fast path (no capturing groups inside). `test_formats` checks
# that `_ID` accepts exactly what `is_valid_id` accepts.
_ID: Final = rf"(?:{ID_REGEX})"
_NUMBER: Final = r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"
_INTEGER: Final = r"[0-9]{1,18}"
_EVENT: Final = "|".join(re.escape(e.value) for e in EventType)
# A superset of valid segments: the fast loop checks each distinct one with is_valid_segment.
_SEGMENT: Final = r'global|(?:category|region):[^,\r\n"]+'
_OTHER: Final = r'[^,\r\n"]*'
_NUMBER_RE: Final = re.compile(_NUMBER)
_INTEGER_RE: Final = re.compile(_INTEGER)


class FormatError(ValueError):
    """A malformed file or row: `path:line: reason`."""

    def __init__(self, path: PathLike, line: int, reason: str, *, row: bool = False) -> None:
        self.path = os.fspath(path)
        self.line = line
        self.reason = reason
        # True for one malformed row (skippable with skip_invalid); False for the whole file
        # (no header, a missing column, unreadable gzip).
        self.row = row
        super().__init__(f"{self.path}:{line}: {reason}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.path, self.line, self.reason), {"row": self.row})


@dataclass(slots=True)
class ReadStats:
    """Filled by a reader as it goes (complete once the reader is exhausted)."""

    rows_read: int = 0
    """Data rows seen (blank lines excluded), valid or not."""
    rows_skipped: int = 0
    skip_reasons: list[str] = field(default_factory=list)
    """The first `MAX_SKIP_REASONS` skipped rows, as `path:line: reason`."""

    @property
    def rows_ok(self) -> int:
        return self.rows_read - self.rows_skipped


class _Invalid(Exception):
    """Raised by the `_parse_*` functions; the reader adds path and line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Rejects:
    """Raise or count a bad row, depending on `skip_invalid`."""

    __slots__ = ("path", "skip", "stats")

    def __init__(self, path: PathLike, skip_invalid: bool, stats: ReadStats | None) -> None:
        self.path = path
        self.skip = skip_invalid
        self.stats = stats if stats is not None else ReadStats()

    def reject(self, line: int, reason: str) -> None:
        error = FormatError(self.path, line, reason, row=True)
        if not self.skip:
            raise error
        self.stats.rows_skipped += 1
        if len(self.stats.skip_reasons) < MAX_SKIP_REASONS:
            self.stats.skip_reasons.append(str(error))


# --- Field checks shared by the slow paths ---------------------------------------------


def _show(value: object) -> str:
    text = repr(value)
    if len(text) > 80:
        text = text[:77] + "..."
    if isinstance(value, str) and any("\udc80" <= c <= "\udcff" for c in value):
        text += " (not valid UTF-8)"
    return text


def _check_id(name: str, value: str) -> str:
    if not is_valid_id(value):
        raise _Invalid(f"{name} is not a valid id ({ID_CHARSET_DESCRIPTION}): {_show(value)}")
    return value


def _check_score(value: str) -> float:
    if _NUMBER_RE.fullmatch(value) is None:
        raise _Invalid(f"score is not a number: {_show(value)}")
    score = float(value)
    if not math.isfinite(score):
        raise _Invalid(f"score is not finite: {_show(value)}")
    return score


def _parse_neighbour(fields: Sequence[str]) -> NeighbourRow:
    item_id = _check_id("item_id", fields[0])
    similar_id = _check_id("similar_item_id", fields[1])
    score = _check_score(fields[2])
    if item_id == similar_id:
        raise _Invalid(f"item_id equals similar_item_id: {_show(item_id)}")
    return item_id, similar_id, score


def _parse_popular(fields: Sequence[str]) -> PopularRow:
    segment = fields[0]
    if not is_valid_segment(segment):
        raise _Invalid(
            "segment must be 'global', 'category:<label>' or 'region:<label>' "
            f"(a label: {LABEL_DESCRIPTION}): {_show(segment)}"
        )
    return segment, _check_id("item_id", fields[1]), _check_score(fields[2])


def _parse_interaction(fields: Sequence[str]) -> InteractionRow:
    user_id = _check_id("user_id", fields[0])
    item_id = _check_id("item_id", fields[1])
    event_type = _EVENT_TYPES.get(fields[2])
    if event_type is None:
        raise _Invalid(f"unknown event_type {_show(fields[2])} (expected one of {_EVENT_NAMES})")
    raw_ts = fields[3]
    if _INTEGER_RE.fullmatch(raw_ts) is None:
        raise _Invalid(f"ts_ms is not an integer of epoch milliseconds: {_show(raw_ts)}")
    return user_id, item_id, event_type, int(raw_ts)


# --- Opening files -----------------------------------------------------------------------


def _open_binary(path: PathLike, stack: ExitStack) -> io.BufferedIOBase:
    raw = stack.enter_context(open(path, "rb"))  # noqa: SIM115 (closed by the stack)
    if raw.peek(2)[:2] == _GZIP_MAGIC or os.fspath(path).endswith(".gz"):
        return stack.enter_context(gzip.GzipFile(fileobj=raw, mode="rb"))
    return raw


_READ_ERRORS: Final = (OSError, EOFError, zlib.error)


def _text_chunks(source: io.BufferedIOBase) -> Iterator[str]:
    """The file as text, in chunks of whole lines (the last one may lack its newline)."""
    pending = b""
    first = True
    while True:
        data = source.read(_BLOCK_BYTES)
        if first:
            first = False
            data = data.removeprefix(_BOM)
        if not data:
            if pending:
                yield pending.decode("utf-8", "surrogateescape")
            return
        if pending:
            data = pending + data
        cut = data.rfind(b"\n") + 1
        if cut == 0:
            pending = data
            continue
        pending = data[cut:]
        # A newline byte never occurs inside a multi-byte UTF-8 sequence: safe to cut.
        yield data[:cut].decode("utf-8", "surrogateescape")


def _lines(chunks: Iterable[str]) -> Iterator[str]:
    for text in chunks:
        yield from io.StringIO(text, newline="\n")


# --- CSV reading -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Layout:
    """Where the wanted columns are in this file, and the fast-path regex for a line."""

    indices: tuple[int, ...]
    """Header position of each wanted column, in the format's column order."""
    width: int
    """Columns in the header."""
    regex: re.Pattern[str]
    reorder: Callable[[Any], tuple[str, ...]] | None
    """Puts the regex groups (header order) into column order; None when they already are."""

    @classmethod
    def from_header(
        cls, path: PathLike, header_line: str, columns: Sequence[str], fragments: Sequence[str]
    ) -> _Layout:
        header = [name.strip() for name in next(csv.reader([header_line]), [])]
        positions: dict[str, int] = {}
        for position, name in enumerate(header):
            positions.setdefault(name, position)
        missing = [name for name in columns if name not in positions]
        if missing:
            names = ", ".join(repr(name) for name in missing)
            raise FormatError(
                path,
                1,
                f"missing column{'s' if len(missing) > 1 else ''} {names} "
                f"(header: {','.join(header) or '<empty>'}; expected {','.join(columns)})",
            )
        indices = tuple(positions[name] for name in columns)
        parts = [_OTHER] * len(header)
        for index, fragment in zip(indices, fragments, strict=True):
            parts[index] = f"({fragment})"
        regex = re.compile("^" + ",".join(parts) + r"\r?$", re.MULTILINE)
        capture_order = sorted(indices)
        ranks = tuple(capture_order.index(index) for index in indices)
        reorder = None if ranks == tuple(range(len(ranks))) else operator.itemgetter(*ranks)
        return cls(indices, len(header), regex, reorder)


@dataclass(slots=True)
class _Block:
    """A run of lines: parsed by the regex (`rows`) or left to the slow path (`records`)."""

    first_line: int
    rows: list[tuple[str, ...]] = field(default_factory=list)
    """One tuple of column values per line; `rows[i]` is on line `first_line + i`."""
    records: Iterator[tuple[int, list[str]]] = field(default_factory=lambda: iter(()))
    """(line, column values) from the csv module."""
    _last_error: int = -1

    def line_of(self, row: tuple[str, ...]) -> int:
        """The line of a fast row found bad (called in order, so repeats resolve right)."""
        self._last_error = self.rows.index(row, self._last_error + 1)
        return self.first_line + self._last_error


def _csv_blocks(
    path: PathLike, columns: Sequence[str], fragments: Sequence[str], rejects: _Rejects
) -> Iterator[_Block]:
    with ExitStack() as stack:
        chunks = _text_chunks(_open_binary(path, stack))
        line = 1
        try:
            first = next(chunks, "")
            header_line, newline, rest = first.partition("\n")
            if not newline and not header_line.strip():
                raise FormatError(path, 1, f"empty file: expected a header row {','.join(columns)}")
            layout = _Layout.from_header(path, header_line, columns, fragments)
            line = 2
            texts = itertools.chain((rest,), chunks) if rest else chunks
            for text in texts:
                lines = text.count("\n") + (not text.endswith("\n"))
                found = layout.regex.findall(text)
                if len(found) == lines:
                    rejects.stats.rows_read += lines
                    rows = found if layout.reorder is None else list(map(layout.reorder, found))
                    yield _Block(line, rows=rows)
                elif '"' in text:
                    rest_of_file = itertools.chain(io.StringIO(text, newline="\n"), _lines(chunks))
                    yield _Block(line, records=_records(rest_of_file, line, layout, rejects))
                    return
                else:
                    lines_iter = io.StringIO(text, newline="\n")
                    yield _Block(line, records=_records(lines_iter, line, layout, rejects))
                line += lines
        except _READ_ERRORS as exc:
            raise FormatError(path, line, f"cannot read the file: {exc}") from exc


def _records(
    lines: Iterator[str], first_line: int, layout: _Layout, rejects: _Rejects
) -> Iterator[tuple[int, list[str]]]:
    reader = csv.reader(lines)
    indices = layout.indices
    width = layout.width
    consumed = 0
    while True:
        line = first_line + consumed
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            consumed = reader.line_num
            rejects.stats.rows_read += 1
            rejects.reject(line, f"malformed CSV: {exc}")
            continue
        except _READ_ERRORS as exc:
            raise FormatError(rejects.path, line, f"cannot read the file: {exc}") from exc
        consumed = reader.line_num
        if not row:
            continue
        rejects.stats.rows_read += 1
        if len(row) != width:
            # Too many fields is as wrong as too few: most often an unquoted comma in a value.
            rejects.reject(line, f"row has {len(row)} fields, the header has {width}")
            continue
        yield line, [row[i] for i in indices]


def read_neighbours(
    path: PathLike, *, skip_invalid: bool = False, stats: ReadStats | None = None
) -> Iterator[NeighbourRow]:
    """Rows `(item_id, similar_item_id, score)` of a neighbours CSV, in file order."""
    rejects = _Rejects(path, skip_invalid, stats)
    isfinite = math.isfinite
    fragments = (_ID, _ID, _NUMBER)
    for block in _csv_blocks(path, NEIGHBOUR_COLUMNS, fragments, rejects):
        for row in block.rows:
            item_id, similar_id, raw_score = row
            score = float(raw_score)
            if item_id != similar_id and isfinite(score):
                yield item_id, similar_id, score
                continue
            try:
                parsed = _parse_neighbour(row)
            except _Invalid as exc:
                rejects.reject(block.line_of(row), exc.reason)
                continue
            yield parsed
        for line, fields in block.records:
            try:
                parsed = _parse_neighbour(fields)
            except _Invalid as exc:
                rejects.reject(line, exc.reason)
                continue
            yield parsed


def read_popular(
    path: PathLike, *, skip_invalid: bool = False, stats: ReadStats | None = None
) -> Iterator[PopularRow]:
    """Rows `(segment, item_id, score)` of a popular CSV, in file order."""
    rejects = _Rejects(path, skip_invalid, stats)
    isfinite = math.isfinite
    fragments = (_SEGMENT, _ID, _NUMBER)
    segments: set[str] = set()  # checked once each: a segment names hundreds of rows
    for block in _csv_blocks(path, POPULAR_COLUMNS, fragments, rejects):
        for row in block.rows:
            segment, item_id, raw_score = row
            score = float(raw_score)
            if isfinite(score) and (segment in segments or is_valid_segment(segment)):
                segments.add(segment)
                yield segment, item_id, score
                continue
            try:
                parsed = _parse_popular(row)
            except _Invalid as exc:
                rejects.reject(block.line_of(row), exc.reason)
                continue
            yield parsed
        for line, fields in block.records:
            try:
                parsed = _parse_popular(fields)
            except _Invalid as exc:
                rejects.reject(line, exc.reason)
                continue
            yield parsed


def read_interactions(
    path: PathLike, *, skip_invalid: bool = False, stats: ReadStats | None = None
) -> Iterator[InteractionRow]:
    """Rows `(user_id, item_id, event_type, ts_ms)` of an interactions CSV, in file order."""
    rejects = _Rejects(path, skip_invalid, stats)
    event_types = _EVENT_TYPES
    fragments = (_ID, _ID, _EVENT, _INTEGER)
    for block in _csv_blocks(path, INTERACTION_COLUMNS, fragments, rejects):
        # The regex checked every field: ids, event type, ts_ms as 1 to 18 digits.
        for user_id, item_id, event_name, raw_ts in block.rows:
            yield user_id, item_id, event_types[event_name], int(raw_ts)
        for line, fields in block.records:
            try:
                parsed = _parse_interaction(fields)
            except _Invalid as exc:
                rejects.reject(line, exc.reason)
                continue
            yield parsed


class InteractionLog:
    """An interactions file as rows that can be read more than once: each `iter()` reads
    the file again (builders with recency take two passes). `stats` are the last pass's."""

    def __init__(self, path: PathLike, *, skip_invalid: bool = False) -> None:
        self.path = path
        self.skip_invalid = skip_invalid
        self.stats = ReadStats()

    def __iter__(self) -> Iterator[InteractionRow]:
        self.stats = ReadStats()
        return read_interactions(self.path, skip_invalid=self.skip_invalid, stats=self.stats)


# --- Catalog JSONL -----------------------------------------------------------------------

_JSON_TYPES: Final = {
    dict: "an object",
    list: "an array",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "a boolean",
    type(None): "null",
}


def _optional_str(obj: dict[str, Any], name: str) -> str | None:
    value = obj.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _Invalid(f"{name} must be a string, got {_JSON_TYPES.get(type(value), '?')}")
    return value


def _optional_id(obj: dict[str, Any], name: str) -> str | None:
    value = _optional_str(obj, name)
    return None if value is None else _check_id(name, value)


def _optional_label(obj: dict[str, Any], name: str) -> str | None:
    value = _optional_str(obj, name)
    if value is not None and not is_valid_label(value):
        raise _Invalid(f"{name} is not a valid label ({LABEL_DESCRIPTION}): {_show(value)}")
    return value


def _parse_catalog_line(data: bytes) -> CatalogItem:
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise _Invalid(f"invalid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise _Invalid(f"expected a JSON object, got {_JSON_TYPES.get(type(obj), '?')}")
    if obj.get("item_id") is None:
        raise _Invalid("missing item_id")
    item_id = _optional_id(obj, "item_id")
    assert item_id is not None
    price = obj.get("price")
    if price is not None:
        if isinstance(price, bool) or not isinstance(price, int | float):
            raise _Invalid(f"price must be a number, got {_JSON_TYPES.get(type(price), '?')}")
        price = float(price)
        if not (math.isfinite(price) and price >= 0):
            raise _Invalid(f"price must be a finite number >= 0: {price!r}")
    active = obj.get("active")
    if active is None:
        active = True
    elif not isinstance(active, bool):
        raise _Invalid(f"active must be true or false: {_show(active)}")
    return CatalogItem(
        item_id=item_id,
        title=_optional_str(obj, "title"),
        category=_optional_label(obj, "category"),
        price=price,
        region=_optional_label(obj, "region"),
        seller_id=_optional_id(obj, "seller_id"),
        active=active,
    )


def read_catalog(
    path: PathLike, *, skip_invalid: bool = False, stats: ReadStats | None = None
) -> Iterator[CatalogItem]:
    """Catalog items of a JSONL file (one object per line), in file order.

    `item_id` is required; `title`, `category`, `price`, `region`, `seller_id` may be
    missing or null; `active` defaults to true. Unknown keys are ignored.
    """
    rejects = _Rejects(path, skip_invalid, stats)
    with ExitStack() as stack:
        source = _open_binary(path, stack)
        line = 0
        try:
            for line, data in enumerate(source, 1):
                if data.isspace() or not data:
                    continue
                rejects.stats.rows_read += 1
                try:
                    item = _parse_catalog_line(data.removeprefix(_BOM) if line == 1 else data)
                except _Invalid as exc:
                    rejects.reject(line, exc.reason)
                    continue
                yield item
        except _READ_ERRORS as exc:
            raise FormatError(path, line + 1, f"cannot read the file: {exc}") from exc


# --- Writers -----------------------------------------------------------------------------


@contextmanager
def _atomic_output(path: PathLike) -> Iterator[io.BufferedIOBase]:
    """A binary stream for `path` (gzip when it ends with .gz), renamed into place on success."""
    target = os.fspath(path)
    temporary = f"{target}.tmp-{os.getpid()}"
    try:
        with open(temporary, "wb") as raw:
            if target.endswith(".gz"):
                with gzip.GzipFile(
                    filename="", mode="wb", fileobj=raw, compresslevel=_GZIP_LEVEL, mtime=0
                ) as compressed:
                    yield compressed
            else:
                yield raw
        os.replace(temporary, target)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def _write_lines(path: PathLike, header: str | None, lines: Iterable[str]) -> int:
    """Writes `header` then `lines` (each ending with a newline); returns the line count."""
    written = 0
    lines = iter(lines)
    with _atomic_output(path) as out:
        if header is not None:
            out.write(header.encode())
        while batch := list(itertools.islice(lines, _WRITE_BATCH)):
            out.write("".join(batch).encode())
            written += len(batch)
    return written


def _score_lines(rows: Iterable[tuple[str, str, float]]) -> Iterator[str]:
    return (f"{a},{b},{score:.6g}\n" for a, b, score in rows)


def _csv_field(value: str) -> str:
    """A field quoted only when it must be (a label may hold a comma or a quote)."""
    if "," in value or '"' in value:
        return '"' + value.replace('"', '""') + '"'
    return value


def write_neighbours(path: PathLike, rows: Iterable[NeighbourRow]) -> int:
    """Writes `(item_id, similar_item_id, score)` rows; returns how many."""
    header = ",".join(NEIGHBOUR_COLUMNS) + "\n"
    return _write_lines(path, header, _score_lines(rows))


def write_popular(path: PathLike, rows: Iterable[PopularRow]) -> int:
    """Writes `(segment, item_id, score)` rows; returns how many."""
    header = ",".join(POPULAR_COLUMNS) + "\n"
    quoted = ((_csv_field(segment), item_id, score) for segment, item_id, score in rows)
    return _write_lines(path, header, _score_lines(quoted))


def write_interactions(path: PathLike, rows: Iterable[tuple[str, str, str, int]]) -> int:
    """Writes `(user_id, item_id, event_type, ts_ms)` rows; returns how many.

    `event_type` may be an `EventType` or its string value.
    """
    header = ",".join(INTERACTION_COLUMNS) + "\n"
    names: dict[str, str] = {event: event.value for event in EventType}  # also by value
    lines = (f"{user},{item},{names.get(event, event)},{ts}\n" for user, item, event, ts in rows)
    return _write_lines(path, header, lines)


def _catalog_line(item: CatalogItem) -> str:
    obj: dict[str, object] = {"item_id": item.item_id}
    for name in ("title", "category", "price", "region", "seller_id"):
        value = getattr(item, name)
        if value is not None:
            obj[name] = value
    obj["active"] = item.active
    return orjson.dumps(obj, option=orjson.OPT_APPEND_NEWLINE).decode()


def write_catalog(path: PathLike, items: Iterable[CatalogItem]) -> int:
    """Writes one JSON object per item (null fields left out); returns how many."""
    return _write_lines(path, None, map(_catalog_line, items))

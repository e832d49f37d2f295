"""Value types shared by every layer: ids, event types, interactions, catalog items.

Pure data, no I/O. Time is an integer count of epoch milliseconds everywhere
(`ts_ms`): it crosses DynamoDB, CSV files and JSON unchanged, with no time zone
or datetime parsing on the hot path.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Final

# Item, user and event ids: what the API, the loaders and the stores accept.
MAX_ID_LENGTH: Final = 64
ID_CHARSET_DESCRIPTION: Final = "1 to 64 characters from A-Z a-z 0-9 and _ . : -, not . or .."
# The id rule as a regular expression (no anchors, no look-around: documents, the file
# readers' fast path and generated clients all use it): the charset, but not "." or "..".
ID_REGEX: Final = (
    r"[A-Za-z0-9_:\-][A-Za-z0-9_.:\-]{0,63}"
    r"|\.[A-Za-z0-9_:\-][A-Za-z0-9_.:\-]{0,62}"
    r"|\.\.[A-Za-z0-9_.:\-]{1,62}"
)
ID_PATTERN: Final = rf"^(?:{ID_REGEX})$"
_ID_RE: Final = re.compile(ID_REGEX)

# Categories and regions: free text as catalogs write it ("Children's", "São Paulo"). They
# name popular-list segments and API filters, so no control character, line separator or
# lone surrogate (invalid UTF-8), and not blank. The API documents this very pattern, so a
# client generated from the document and the server agree on every value.
MAX_LABEL_LENGTH: Final = 128
LABEL_DESCRIPTION: Final = "1 to 128 characters, no control characters, not only spaces"
_LABEL_CHAR: Final = r"\x00-\x1f\x7f-\x9f\u2028\u2029"  # refused anywhere
LABEL_PATTERN: Final = rf"^[^{_LABEL_CHAR}]*[^\s{_LABEL_CHAR}][^{_LABEL_CHAR}]*$"
_LABEL_RE: Final = re.compile(LABEL_PATTERN)

# The live events endpoint's lower bound (2000-01-01T00:00:00Z): a live event older than
# this is a client bug. Files (logs, model builds) accept any ts_ms >= 0.
MIN_TS_MS: Final = 946_684_800_000


def is_valid_id(value: str) -> bool:
    # "." and ".." are path segments, not ids: a URL would resolve them away.
    return _ID_RE.fullmatch(value) is not None


def is_valid_label(value: str) -> bool:
    """A category or region name: text in any script (LABEL_PATTERN), valid UTF-8."""
    if len(value) > MAX_LABEL_LENGTH or _LABEL_RE.fullmatch(value) is None:
        return False
    # A file's invalid UTF-8 is read as lone surrogates; a URL's is already replaced.
    return value.isascii() or not any("\ud800" <= char <= "\udfff" for char in value)


class EventType(StrEnum):
    """What a user did with an item, weakest signal first."""

    VIEW = "view"
    FAVORITE = "favorite"
    MESSAGE = "message"
    ADD_TO_CART = "add_to_cart"
    PURCHASE = "purchase"


EVENT_TYPE_NAMES: Final = frozenset(e.value for e in EventType)

# How much each kind of action says about a user's interest: the default for both the feed's
# scoring and the offline builders. EventType is a StrEnum, so "view" finds EventType.VIEW.
DEFAULT_EVENT_WEIGHTS: Final[Mapping[EventType, float]] = MappingProxyType(
    {
        EventType.VIEW: 1.0,
        EventType.FAVORITE: 3.0,
        EventType.MESSAGE: 4.0,
        EventType.ADD_TO_CART: 5.0,
        EventType.PURCHASE: 8.0,
    }
)


# Recency decay (`0.5 ** (age / half_life)`) stops at this many half-lives: an old interaction
# keeps a floor weight instead of underflowing to zero, in the feed and in the builders alike.
MAX_HALF_LIVES: Final = 64.0


@dataclass(frozen=True, slots=True)
class Interaction:
    """One thing a user did: the unit the feed reads and the events endpoint writes."""

    item_id: str
    event_type: str
    ts_ms: int


@dataclass(frozen=True, slots=True)
class CatalogItem:
    """Item metadata from the catalog (the marketplace's listing service)."""

    item_id: str
    title: str | None = None
    category: str | None = None
    price: float | None = None
    region: str | None = None
    seller_id: str | None = None
    active: bool = True


# Popular-list segments: `global`, `category:<label>` or `region:<label>`.
GLOBAL_SEGMENT: Final = "global"


def category_segment(category: str) -> str:
    return f"category:{category}"


def region_segment(region: str) -> str:
    return f"region:{region}"


def is_valid_segment(segment: str) -> bool:
    if segment == GLOBAL_SEGMENT:
        return True
    kind, sep, name = segment.partition(":")
    return bool(sep) and kind in ("category", "region") and is_valid_label(name)


@dataclass(frozen=True, slots=True)
class Event:
    """One user interaction to store."""

    event_id: str
    user_id: str
    item_id: str
    event_type: str
    ts_ms: int
    surface: str | None = None
    model_version: str | None = None


@dataclass(slots=True)
class WriteOutcome:
    """Which events are stored, and which could not be within the deadline."""

    stored: list[Event] = field(default_factory=list)
    failed: list[Event] = field(default_factory=list)

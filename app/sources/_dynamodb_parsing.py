"""The DynamoDB client's response parser and User-Agent (`app.sources.dynamo.connect`).

botocore parses a DynamoDB response by walking the JSON it decoded through the service
model: every attribute value of every item is visited as a structure of 10 members, only to
be returned as it was, except for binary values (B, BS: base64 decoded to bytes). Here an
item whose values hold no binary is returned as decoded; anything else, and every other
shape, goes through botocore's walk. The body is decoded by orjson, in about half of json's
time. Imported by `connect` only: botocore's parsers are slow to import.
"""

from __future__ import annotations

from typing import Any, Final

import aiobotocore
import botocore
import orjson
from aiobotocore.parsers import AioJSONParser, AioResponseParserFactory
from botocore.model import Shape
from botocore.parsers import ResponseParser

# A supplied User-Agent is sent as is; without one botocore rebuilds it from ~30 parts on
# every call.
USER_AGENT: Final = f"recs aiobotocore/{aiobotocore.__version__} botocore/{botocore.__version__}"

# AttributeValue members whose JSON botocore returns unchanged. B and BS (base64 decoded to
# bytes) are not among them, nor is anything botocore does not know.
_VERBATIM_TYPES: Final = frozenset({"S", "N", "BOOL", "NULL", "SS", "NS"})


def _verbatim(value: object) -> bool:
    """Whether botocore's parse of this AttributeValue would equal its JSON."""
    if type(value) is not dict or len(value) != 1:
        return False
    ((kind, inner),) = value.items()
    if kind in _VERBATIM_TYPES:
        return inner is not None
    if kind == "M":  # a map of AttributeValues, judged as an item is
        return type(inner) is dict and _verbatim_item(inner)
    if kind == "L":
        return type(inner) is list and all(_verbatim(v) for v in inner)
    return False


def _verbatim_item(item: dict[str, Any]) -> bool:
    """Whether botocore's parse of this item (a map of AttributeValues) would equal its JSON.
    Strings and numbers, nearly every value, are judged without a call."""
    for value in item.values():
        if type(value) is not dict or len(value) != 1:
            return False
        if type(value.get("S") or value.get("N")) is not str and not _verbatim(value):
            return False
    return True


class AttributeValueParser(AioJSONParser):
    """botocore's JSON parser, but an item (a map of AttributeValues) whose values hold no
    binary is returned as decoded: the same dict botocore would build, built once. Anything
    else, and every other shape, goes through botocore's own walk."""

    def _parse_shape(self, shape: Shape, node: Any) -> Any:
        if (
            shape.type_name == "map"
            and getattr(shape, "value", None) is not None
            and shape.value.name == "AttributeValue"  # type: ignore[attr-defined]
            and type(node) is dict
            and _verbatim_item(node)
        ):
            return node
        return super()._parse_shape(shape, node)  # type: ignore[misc]

    def _parse_body_as_json(self, body_contents: bytes) -> Any:
        # What orjson refuses and json reads (NaN, Infinity, lone surrogates) goes to
        # botocore's own decoding. orjson reads an integer past 64 bits as a float; the
        # numbers DynamoDB sends bare are counts, sizes and capacities (an attribute's
        # number is a string).
        if body_contents:
            try:
                return orjson.loads(body_contents)
            except orjson.JSONDecodeError:
                pass
        return super()._parse_body_as_json(body_contents)  # type: ignore[misc]


class ParserFactory(AioResponseParserFactory):
    """One parser per protocol for the client's life. botocore asks for a new parser for
    every response, and a parser holds a bound method of itself (a reference cycle): two
    parsers and a bound method per Query left for the garbage collector
    (docs/performance.md). A parser keeps no state between calls."""

    def __init__(self) -> None:
        super().__init__()
        self._parsers: dict[str, ResponseParser] = {}

    def set_parser_defaults(self, **kwargs: Any) -> None:
        super().set_parser_defaults(**kwargs)
        self._parsers.clear()  # built with the old defaults

    def create_parser(self, protocol_name: str) -> ResponseParser:
        parser = self._parsers.get(protocol_name)
        if parser is None:
            if protocol_name == "json":  # DynamoDB's protocol
                parser = AttributeValueParser(**self._defaults)  # type: ignore[attr-defined]
            else:
                parser = super().create_parser(protocol_name)
            self._parsers[protocol_name] = parser
        return parser

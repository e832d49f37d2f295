"""The DynamoDB client's response parser: the same answers as botocore's, built cheaper."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any, cast

import botocore.session
import pytest
from aiobotocore.parsers import create_parser
from botocore.model import StructureShape

from app.sources import _dynamodb_parsing as parsing


def _query_response(items: list[dict[str, Any]], capacity_units: float = 1.5) -> dict[str, Any]:
    body = {
        "Count": len(items),
        "ScannedCount": len(items),
        "Items": items,
        "LastEvaluatedKey": {"user_id": {"S": "u1"}, "sk": {"S": "0001#e1"}},
        "ConsumedCapacity": {"TableName": "t", "CapacityUnits": capacity_units},
    }
    return {
        "status_code": 200,
        "headers": {"x-amzn-requestid": "req-1", "content-type": "application/x-amz-json-1.0"},
        "body": json.dumps(body).encode(),
        "context": {"operation_name": "Query"},
    }


QUERY = botocore.session.get_session().get_service_model("dynamodb").operation_model("Query")
QUERY_OUTPUT = cast(StructureShape, QUERY.output_shape)  # a Query has one
B64 = base64.b64encode(b"\x00\x01bytes").decode()

ITEMS: dict[str, list[dict[str, Any]]] = {
    "plain": [
        {"item_id": {"S": f"item-{n}"}, "event_type": {"S": "view"}, "ts_ms": {"N": f"{n}"}}
        for n in range(5)
    ],
    "every plain type, nested": [
        {
            "s": {"S": "x"},
            "n": {"N": "-1.5e3"},
            "bool": {"BOOL": False},
            "null": {"NULL": True},
            "ss": {"SS": ["a", "b"]},
            "ns": {"NS": ["1", "2"]},
            "m": {"M": {"inner": {"L": [{"S": "y"}, {"M": {}}, {"N": "3"}]}}},
            "empty": {"L": []},
        }
    ],
    "binary": [{"b": {"B": B64}, "bs": {"BS": [B64, B64]}, "s": {"S": "x"}}],
    "binary nested in a map and a list": [
        {"m": {"M": {"b": {"B": B64}}}, "l": {"L": [{"S": "x"}, {"B": B64}]}}
    ],
    "a type botocore does not model": [{"future": {"VECTOR": [1, 2]}, "s": {"S": "x"}}],
    "strings and numbers the quick check leaves to the full one": [
        {"empty": {"S": ""}, "not a string": {"S": 5}, "null": {"N": None}},
        {"a string beside a binary": {"S": "x", "B": B64}},
    ],
    # Serialized by json as an escape orjson refuses, so botocore's decoding reads the body.
    "a lone surrogate": [{"s": {"S": "\ud800"}}],
    "no items": [],
}


def _parse(parser: Any, items: list[dict[str, Any]]) -> Any:
    return asyncio.run(parser.parse(_query_response(items), QUERY_OUTPUT))


@pytest.mark.parametrize("case", ITEMS)
def test_parses_exactly_as_botocore(case: str) -> None:
    ours = _parse(parsing.ParserFactory().create_parser("json"), ITEMS[case])
    botocores = _parse(create_parser("json"), ITEMS[case])
    assert ours == botocores


def test_a_body_orjson_refuses_is_read_as_botocore_reads_it() -> None:
    response = _query_response(ITEMS["plain"], capacity_units=float("inf"))
    assert b"Infinity" in response["body"]
    ours = asyncio.run(parsing.ParserFactory().create_parser("json").parse(response, QUERY_OUTPUT))
    assert ours == asyncio.run(create_parser("json").parse(response, QUERY_OUTPUT))
    assert ours["ConsumedCapacity"]["CapacityUnits"] == float("inf")
    assert len(ours["Items"]) == 5


def test_binary_values_come_back_as_bytes() -> None:
    parsed = _parse(parsing.ParserFactory().create_parser("json"), ITEMS["binary"])
    item = parsed["Items"][0]
    assert item["b"] == {"B": b"\x00\x01bytes"}
    assert item["bs"] == {"BS": [b"\x00\x01bytes", b"\x00\x01bytes"]}


def test_plain_items_skip_the_per_attribute_walk() -> None:
    """The saving itself: botocore's walk visits every attribute value as a structure; a
    plain page of items costs one structure visit (the response), plus ConsumedCapacity."""
    parser = parsing.ParserFactory().create_parser("json")
    visits = 0
    walk = parser._handle_structure  # type: ignore[attr-defined]

    def counting(shape: Any, value: Any) -> Any:
        nonlocal visits
        visits += 1
        return walk(shape, value)

    parser._handle_structure = counting  # type: ignore[attr-defined]
    parsed = _parse(parser, ITEMS["plain"])
    assert len(parsed["Items"]) == 5
    assert visits == 2


def test_error_responses_are_botocores() -> None:
    error = {
        "status_code": 400,
        "headers": {"x-amzn-requestid": "req-2"},
        "body": json.dumps(
            {
                "__type": "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException",
                "message": "Requested resource not found",
            }
        ).encode(),
        "context": {"operation_name": "Query"},
    }
    ours = asyncio.run(parsing.ParserFactory().create_parser("json").parse(error, QUERY_OUTPUT))
    assert ours == asyncio.run(create_parser("json").parse(error, QUERY_OUTPUT))
    assert ours["Error"]["Code"] == "ResourceNotFoundException"


def test_other_protocols_get_botocores_parser() -> None:
    parser = parsing.ParserFactory().create_parser("rest-json")
    assert type(parser) is type(create_parser("rest-json"))


def test_user_agent_names_the_service_and_the_sdk() -> None:
    assert parsing.USER_AGENT.startswith("recs ")
    assert "botocore/" in parsing.USER_AGENT and "aiobotocore/" in parsing.USER_AGENT


def test_one_parser_per_protocol_serves_every_response() -> None:
    factory = parsing.ParserFactory()
    parser = factory.create_parser("json")
    assert factory.create_parser("json") is parser
    first = _parse(parser, ITEMS["plain"])
    assert _parse(parser, ITEMS["binary"]) == _parse(create_parser("json"), ITEMS["binary"])
    assert _parse(parser, ITEMS["plain"]) == first  # nothing left over from a call
    factory.set_parser_defaults(timestamp_parser=str)
    assert factory.create_parser("json") is not parser  # new defaults, new parser

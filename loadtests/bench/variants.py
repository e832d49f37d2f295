"""Server variants: `Pieces` (which implementation of each optimized piece the bench server
installs) plus `RECS_*` settings.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Final

# Each piece's implementations, the product's first. `instrumentation`: the request
# middleware, dependency timers, loop-lag sampler and GC callbacks.
_CHOICES: Final = {
    "scylla": ("batched", "fanout"),
    "dynamodb": ("aioboto3", "boto3", "signed-json"),
    "responses": ("orjson", "pydantic"),
    "catalog_http": ("aiohttp", "httpx"),
    "fastapi_telemetry": ("off", "on"),
    "instrumentation": ("on", "off"),
}


@dataclass(frozen=True)
class Pieces:
    """Which implementation of each piece the server runs (one of `_CHOICES`)."""

    scylla: str = "batched"
    dynamodb: str = "aioboto3"
    responses: str = "orjson"
    catalog_http: str = "aiohttp"
    fastapi_telemetry: str = "off"
    instrumentation: str = "on"

    def argv(self) -> list[str]:
        """Command-line options of `python -m loadtests.bench.server` for these pieces."""
        return [word for name in _CHOICES for word in (_option(name), getattr(self, name))]

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        for name, choices in _CHOICES.items():
            parser.add_argument(
                _option(name),
                dest=name,
                choices=choices,
                default=choices[0],
                help=f"default: {choices[0]} (the product)",
            )

    @classmethod
    def from_namespace(cls, args: argparse.Namespace) -> Pieces:
        return cls(**{name: getattr(args, name) for name in _CHOICES})

    def differences(self) -> list[str]:
        """What differs from the product, as `name=value` words."""
        return [
            f"{name}={getattr(self, name)}"
            for name, choices in _CHOICES.items()
            if getattr(self, name) != choices[0]
        ]


def _option(name: str) -> str:
    return f"--{name.replace('_', '-')}"


# Settings of the CPython-default GC, and of each cache turned off.
DEFAULT_GC: Final = MappingProxyType({"RECS_GC_THRESHOLDS": "700,10,10", "RECS_GC_FREEZE": "0"})
NO_NEIGHBOUR_CACHE: Final = MappingProxyType({"RECS_NEIGHBOUR_CACHE_MB": "0"})
NO_CATALOG_CACHE: Final = MappingProxyType({"RECS_CATALOG_CACHE_TTL_S": "0"})


@dataclass(frozen=True)
class Variant:
    name: str
    pieces: Pieces = field(default_factory=Pieces)
    env: Mapping[str, str] = field(default_factory=dict)

    def with_env(self, name: str, env: Mapping[str, str]) -> Variant:
        return replace(self, name=name, env={**self.env, **env})

    def summary(self) -> str:
        """Pieces and settings that differ from the product, for the report."""
        words = self.pieces.differences() + [f"{k}={v}" for k, v in sorted(self.env.items())]
        return ", ".join(f"`{word}`" for word in words) or "the product as shipped"


PRODUCT: Final = Variant("product")
NAIVE: Final = Variant(
    "naive",
    Pieces(
        scylla="fanout",
        dynamodb="boto3",
        responses="pydantic",
        catalog_http="httpx",
        fastapi_telemetry="on",
    ),
    {**DEFAULT_GC, **NO_NEIGHBOUR_CACHE, **NO_CATALOG_CACHE},
)

"""Where the development tools are, and the download cache they live in.

- The Go tools (`GO_TOOLS`: kustomize, vegeta) are built at the versions scripts/tools.sh
  pins (`pinned_version`) into the cache's `bin/` (`make tools`); never taken from PATH,
  where another version may be.
- The Python tools (py-spy, hadolint, ...) come with the virtualenv (`make install`), beside
  the interpreter that runs us; PATH is the fallback.

The cache is `$RECS_CACHE_DIR`, by default `~/.cache/recs` (the Makefile's and tools.sh's
default too): Cassandra, DynamoDB Local, datasets and the Go tools, shared by every clone.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path

GO_TOOLS = frozenset({"kustomize", "vegeta"})
TOOLS_SCRIPT = Path(__file__).with_name("tools.sh")


class ToolMissing(LookupError):
    """A tool is not where it should be; the message says how to install it."""


def cache_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """The download cache: `RECS_CACHE_DIR`, or ~/.cache/recs."""
    return Path(environ.get("RECS_CACHE_DIR") or Path.home() / ".cache" / "recs")


def path(name: str) -> Path:
    """Where `name` belongs: the cache's bin/ for a Go tool, else the virtualenv's bin/."""
    if name in GO_TOOLS:
        return cache_dir() / "bin" / name
    return Path(sys.executable).parent / name


def require(name: str) -> Path:
    """The executable `name`, from `path(name)` (or PATH, for a Python tool); ToolMissing
    when it is not installed."""
    found = path(name)
    if found.is_file() and os.access(found, os.X_OK):
        return found
    if name not in GO_TOOLS and (on_path := shutil.which(name)) is not None:
        return Path(on_path)
    how = "`make tools` (scripts/tools.sh)" if name in GO_TOOLS else "`make install`"
    raise ToolMissing(f"{name} is not installed at {found}: run {how}")


def pinned_version(name: str) -> str:
    """The version scripts/tools.sh pins for the Go tool `name` (its `NAME_VERSION=` line)."""
    variable = f"{name.upper()}_VERSION"
    match = re.search(rf"^{variable}=(\S+)$", TOOLS_SCRIPT.read_text(), re.MULTILINE)
    if match is None:
        raise LookupError(f"{variable} is not set in {TOOLS_SCRIPT}")
    return match.group(1)

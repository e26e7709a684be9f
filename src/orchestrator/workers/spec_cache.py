"""The built-in tools' specs, kept on disk so that listing them needs neither the worker modules nor pydantic.

Building a tool's schemas (its argument model, its output adapter, two JSON Schemas) and importing the modules
that define the tools is most of what ``orchestrator tools`` costs. The specs only change when the code does,
so they are written once to ``<ORCHESTRATOR_HOME>/cache/tool-specs-<key>.json`` and read back later, the way
Python keeps byte code: the key covers this package's source files (path, size, modification time), the
Python and pydantic versions and the file format. An edited worker changes the key, and the
next command writes a fresh file. A missing, unreadable, malformed or unwritable file only costs the build.

A cached tool is still a :class:`~orchestrator.registry.DeferredTool`: its spec is known at once, and the
function is imported and built the first time the tool is got from a registry (to validate or run a step).
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from orchestrator.registry import DeferredTool, Tool, ToolSpec, function_tool, tool_name

__all__ = ["CachedTool", "Filler", "SpecCache", "deferred", "package_key"]

logger = logging.getLogger(__name__)

FORMAT = 1
"""Bumped when the file's shape changes."""

_PACKAGE = Path(__file__).resolve().parent.parent


class CachedTool(BaseModel):
    """One line of the file: where the function is, and the spec it gave."""

    module: str
    attr: str
    spec: ToolSpec


class _CacheFile(BaseModel):
    format: int
    key: str
    tools: list[CachedTool]


def package_key(package: Path = _PACKAGE) -> str:
    """A digest of every source file's path, size and modification time under `package`, and the versions
    the specs depend on (computed once per process by :class:`SpecCache`)."""
    from pydantic import VERSION as pydantic_version

    digest = hashlib.sha256()
    digest.update(f"{FORMAT}|{sys.version}|{pydantic_version}|{package}".encode())
    for path in sorted(_sources(package)):
        stat = os.stat(path)
        digest.update(f"|{os.path.relpath(path, package)}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:24]


def _sources(folder: Path) -> Iterable[str]:
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False) and entry.name != "__pycache__":
                yield from _sources(Path(entry.path))
            elif entry.name.endswith(".py"):
                yield entry.path


@dataclass
class SpecCache:
    """The cache file for one key in `folder`."""

    folder: Path
    key: str

    @property
    def path(self) -> Path:
        return self.folder / f"tool-specs-{self.key}.json"

    def load(self) -> list[CachedTool] | None:
        """The cached tools, or None when there is no usable file for this key."""
        try:
            data = _CacheFile.model_validate_json(self.path.read_bytes())
        except (OSError, ValidationError, ValueError):
            return None
        return data.tools if data.format == FORMAT and data.key == self.key else None

    def save(self, tools: list[CachedTool]) -> None:
        """Write the file atomically (a temporary file renamed); never raises: a cache that cannot be written
        only means the next command builds again."""
        body = _CacheFile(format=FORMAT, key=self.key, tools=tools).model_dump_json()
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".tool-specs-", dir=self.folder)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    f.write(body)
                os.replace(tmp, self.path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            logger.debug("tool spec cache not written to %s: %s", self.folder, exc)
            return
        for stale in self.folder.glob("tool-specs-*.json"):
            if stale != self.path:
                stale.unlink(missing_ok=True)


def deferred(entry: CachedTool) -> DeferredTool:
    """The tool of a cache entry: its spec now, the function imported and built on first use."""
    return DeferredTool(entry.spec.name, _builder(entry.module, entry.attr), spec=entry.spec)


def _builder(module: str, attr: str) -> Callable[[], Tool]:
    def build() -> Tool:
        return function_tool(getattr(import_module(module), attr))

    return build


class Filler:
    """On a miss: the tools, each built when a command first needs it (validating a plan builds only the tools it
    names); the file is written once every one has been built (listing the tools does that)."""

    def __init__(self, cache: SpecCache, described: Sequence[tuple[str, Callable[..., Any]]]) -> None:
        self._cache = cache
        self._described = described
        self._entries: dict[int, CachedTool] = {}

    def tools(self) -> list[DeferredTool]:
        return [DeferredTool(tool_name(fn), self._builder(i, attr, fn)) for i, (attr, fn) in enumerate(self._described)]

    def _builder(self, index: int, attr: str, fn: Callable[..., Any]) -> Callable[[], Tool]:
        def build() -> Tool:
            built = function_tool(fn)
            if index not in self._entries:
                self._entries[index] = CachedTool(module=fn.__module__, attr=attr, spec=built.spec)
                if len(self._entries) == len(self._described):
                    self._cache.save([self._entries[i] for i in range(len(self._described))])
            return built

        return build

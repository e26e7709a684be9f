"""The built-in tools as a tool source: every function the worker modules describe with ``@tool``.

Importing a worker module registers nothing; :class:`BuiltinTools` imports them when asked for its tools
(so ``orchestrator --help`` never loads them), and each tool's schemas are built when a registry first
gets it (so validating a plan builds only the tools it names), once per process. Their specs are also kept
on disk (:mod:`orchestrator.workers.spec_cache`): with a current cache file, listing the tools imports no
worker module and builds no tool.
"""

from __future__ import annotations

from collections.abc import Iterator
from importlib import import_module
from pathlib import Path

from orchestrator.registry import DeferredTool, deferred_tools_in, described_in

__all__ = ["BuiltinTools"]

_MODULES = (
    "orchestrator.workers.receipts.ocr",
    "orchestrator.workers.receipts.tools",
    "orchestrator.workers.finance",
    "orchestrator.workers.documents",
    "orchestrator.workers.language",
)

_key: str | None = None  # the source files do not change under a running process: stat them once


class BuiltinTools:
    """The tools shipped with orchestrator: receipts (OCR, parse, categorize), finance, documents, language.

    Args:
        cache_folder: where the specs are kept (default ``<ORCHESTRATOR_HOME>/cache``); None and
            `use_cache=False` build from the code every time.
    """

    name = "builtins"

    def __init__(self, cache_folder: Path | None = None, *, use_cache: bool = True) -> None:
        self._folder = cache_folder
        self._use_cache = use_cache

    def tools(self) -> Iterator[DeferredTool]:
        if not self._use_cache:
            for name in _MODULES:
                yield from deferred_tools_in(import_module(name))
            return
        from orchestrator.workers import spec_cache

        cache = spec_cache.SpecCache(self._folder or _default_folder(), _package_key())
        entries = cache.load()
        if entries is None:
            described = [pair for name in _MODULES for pair in described_in(import_module(name))]
            yield from spec_cache.Filler(cache, described).tools()
            return
        for entry in entries:
            yield spec_cache.deferred(entry)

    def __repr__(self) -> str:
        return "BuiltinTools()"


def _default_folder() -> Path:
    from orchestrator.settings import current_settings

    return current_settings().orchestrator_home / "cache"


def _package_key() -> str:
    global _key
    if _key is None:
        from orchestrator.workers.spec_cache import package_key

        _key = package_key()
    return _key

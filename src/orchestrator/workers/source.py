"""The built-in tools as a tool source: every function the worker modules describe with ``@tool``.

Importing a worker module registers nothing; :class:`BuiltinTools` imports them when asked for its tools
(so ``orchestrator --help`` never loads them), and each tool's schemas are built when a registry first
gets it (so validating a plan builds only the tools it names), once per process.
"""

from __future__ import annotations

from collections.abc import Iterator

from orchestrator.registry import DeferredTool, deferred_tools_in

__all__ = ["BuiltinTools"]


class BuiltinTools:
    """The tools shipped with orchestrator: receipts (OCR, parse, categorize), finance, documents, language."""

    name = "builtins"

    def tools(self) -> Iterator[DeferredTool]:
        from orchestrator.workers import documents, finance, language
        from orchestrator.workers.receipts import ocr, tools

        for module in (ocr, tools, finance, documents, language):
            yield from deferred_tools_in(module)

    def __repr__(self) -> str:
        return "BuiltinTools()"

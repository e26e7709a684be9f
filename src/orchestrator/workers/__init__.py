"""Workers: the built-in tools, typed functions that steps call (the layer below the executor).

- receipts: OCR, line-item parsing, categorization (the headline use case)
- finance: totals, tax, duplicate detection
- documents: loading documents and records, sections, ranking, report formatting
- language: the `small_model` text tasks and the large-model `synthesize` step
- routing: small model or keywords (USE_SMALL_MODEL), with the design's graceful fallback; the design's
  `line_item_parser_worker(payload)` and `expense_categorizer_worker(payload)`
- source: :class:`~orchestrator.workers.source.BuiltinTools`, the tool source over all of them

Importing a worker module registers nothing (``@tool`` only describes a function); the toolbox
(:mod:`orchestrator.toolbox`) assembles registries. Names here are imported on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestrator.workers import documents, finance, language, receipts
    from orchestrator.workers.routing import expense_categorizer_worker, line_item_parser_worker

__all__ = ["documents", "expense_categorizer_worker", "finance", "language", "line_item_parser_worker", "receipts"]

_LAZY = {
    "documents": None,
    "finance": None,
    "language": None,
    "receipts": None,
    "expense_categorizer_worker": "routing",
    "line_item_parser_worker": "routing",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = _LAZY[name]
    if module is None:
        return importlib.import_module(f"{__name__}.{name}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)

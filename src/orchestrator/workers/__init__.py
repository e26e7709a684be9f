"""Built-in worker tools. Importing this package registers them in `orchestrator.registry.BUILTINS`.

- receipts: OCR, line-item parsing, categorization (the headline use case)
- finance: totals, tax, duplicate detection
- documents: loading documents and records, sections, ranking, report formatting
- language: the `small_model` text tasks and the large-model `synthesize` step
- routing: small model or keywords (USE_SMALL_MODEL), with the design's graceful fallback; the design's
  `line_item_parser_worker(payload)` and `expense_categorizer_worker(payload)`
"""

from orchestrator.workers import documents, finance, language, receipts
from orchestrator.workers.routing import expense_categorizer_worker, line_item_parser_worker

__all__ = ["documents", "expense_categorizer_worker", "finance", "language", "line_item_parser_worker", "receipts"]

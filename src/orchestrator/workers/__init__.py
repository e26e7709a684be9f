"""Built-in worker tools. Importing this package registers them in `orchestrator.registry.BUILTINS`.

- receipts: OCR, line-item parsing, categorization (the headline use case)
- finance: totals, tax, duplicate detection
- documents: loading documents and records, sections, ranking, report formatting
- language: the `small_model` text tasks and the large-model `synthesize` step
"""

from orchestrator.workers import documents, finance, language, receipts

__all__ = ["documents", "finance", "language", "receipts"]

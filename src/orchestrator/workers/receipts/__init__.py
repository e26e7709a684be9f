"""Receipt and invoice tools: OCR, line-item parsing, categorization, totals, reports, duplicates."""

from orchestrator.workers.receipts import categorize, ocr, parse

__all__ = ["categorize", "ocr", "parse"]

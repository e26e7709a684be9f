"""The receipt tools a plan calls: ``line_item_parser`` and ``expense_categorizer``.

Both route (:mod:`orchestrator.workers.routing`): with ``USE_SMALL_MODEL`` on, into the small-model cascade
(:class:`~orchestrator.small_model_worker.SmallModelWorker`); otherwise, or when anything about the model
fails, the keyword rules (:mod:`orchestrator.rules`) answer.
"""

from __future__ import annotations

from orchestrator.errors import ToolError
from orchestrator.files import FilePath, check_text_size, confine
from orchestrator.registry import tool
from orchestrator.rules.models import CategorizedItems, LineItem, OcrLine, ParsedReceipt
from orchestrator.workers.routing import categorize_items, parse_line_items

__all__ = ["expense_categorizer", "line_item_parser"]


def _check_text(text: object) -> str:
    if not isinstance(text, str):
        raise ToolError(f"line_item_parser: text must be a string, got {type(text).__name__}")
    if not text.strip():
        raise ToolError("line_item_parser: text is empty; pass the receipt's OCR text (e.g. from receipt_ocr)")
    return check_text_size(text, source="line_item_parser: text")


# Read-only and idempotent by default (keyword rules). With USE_SMALL_MODEL on they may ask a model server
# (open world); its answers are cached, so a repeat costs nothing more.
@tool(kind="function", read_only=True, destructive=False, idempotent=True, open_world=True)
async def line_item_parser(text: str, lines: list[OcrLine] | None = None) -> ParsedReceipt:
    """Parse receipt text (from OCR) into merchant, date, currency, subtotal, tax, total and line items.

    Keyword and layout rules by default: fast and free. With USE_SMALL_MODEL on and a generative small
    model configured, the model parses (schema-constrained JSON, checked like the rules' output) and the
    rules are the fallback; `mode` says which answered. `confidence` says how well items, subtotal, tax
    and total agree, and `issues` lists each mismatch.

    Args:
        text: The receipt's text, one line per printed line or per OCR box.
        lines: The OCR lines the text came from, with their boxes (step:ocr.lines beside step:ocr.text):
            the seller's name and address are then found by position and size too (centred or large
            print), not from the text alone.

    Raises:
        ToolError: `text` is not a string, or is empty; `lines` are not the lines of `text`.
    """
    return await parse_line_items(_check_text(text), lines)


@tool(kind="function", read_only=True, destructive=False, idempotent=True, open_world=True)
async def expense_categorizer(
    items: list[LineItem], taxonomy: list[str] | None = None, rules_path: FilePath | None = None
) -> CategorizedItems:
    """Put each line item in an expense category, with totals per category.

    Keyword rules answer by default. With USE_SMALL_MODEL on, a cascade answers per item: keywords when they
    are sure, else the embedded MiniLM classifier, else the configured small model (and, if enabled, the
    large model); any failure falls back to keywords. Each item says which tier answered (`mode`).

    Args:
        items: Line items, e.g. step:parse.items.
        taxonomy: Allowed categories; default food, beverage, groceries, alcohol, household, office_supplies,
            electronics, clothing, health, transport, fuel, lodging, entertainment, services, other.
        rules_path: A JSON file of keyword rules merged over the defaults.
    """
    if rules_path is not None:  # inside the run's allowed folders (orchestrator.files)
        rules_path = str(confine(rules_path, what="rules_path"))
    return await categorize_items(items, taxonomy, rules_path)

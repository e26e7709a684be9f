"""The design's routing between small models and keywords, with its graceful fallback.

With ``USE_SMALL_MODEL=true`` the receipt tools ask a
:class:`~orchestrator.small_model_worker.SmallModelWorker`; otherwise, or when anything about the model
fails, the keyword rules answer. Plans do not change: ``line_item_parser`` and ``expense_categorizer``
route here. The design's ``line_item_parser_worker(payload)`` and ``expense_categorizer_worker(payload)``
are here too, for code written against it:

    async def line_item_parser_worker(payload):
        small_model = _get_small_model_worker()
        if small_model:
            try:
                return await small_model.parse_line_items(text)   # route to Phi-3 (or whichever is set)
            except Exception:
                pass                                             # fall back to keyword matching
        return keyword_based_parsing(text)

Inside a plan run, one worker serves the whole run (or batch): it lives in the run's
:class:`~orchestrator.run_scope.RunScope` and is closed when the run ends. Outside a run, each call makes
and closes its own.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from orchestrator.context import report_count, report_mode
from orchestrator.errors import ConfigurationError, ToolError
from orchestrator.rules.models import CategorizedItems, LineItem, OcrLine, ParsedReceipt
from orchestrator.run_scope import current_scope
from orchestrator.settings import Settings, current_settings

if TYPE_CHECKING:
    from orchestrator.small_model_worker import SmallModelWorker

__all__ = [
    "categorize_items",
    "expense_categorizer_worker",
    "line_item_parser_worker",
    "parse_line_items",
    "small_model_worker",
]

logger = logging.getLogger(__name__)


_warned: set[str] = set()


def mark_warned(problem: str) -> None:
    """Record that the user was told about `problem` (the CLI's first line), so runs do not warn again."""
    _warned.add(problem)


def _make_worker(settings: Settings) -> SmallModelWorker | None:
    from orchestrator.small_model_worker import SmallModelWorker

    try:
        return SmallModelWorker(settings=settings)
    except ConfigurationError as exc:
        level = logging.INFO if str(exc) in _warned else logging.WARNING
        _warned.add(str(exc))
        logger.log(level, "USE_SMALL_MODEL is on but the small model cannot be set up (%s); keywords answer", exc)
        return None


def _get_small_model_worker() -> tuple[SmallModelWorker | None, bool]:
    """The worker to route to (None: use keywords), and whether the caller owns it (must close it)."""
    settings = current_settings()
    if not settings.use_small_model:
        return None, False
    scope = current_scope()
    if scope is None:
        return _make_worker(settings), True
    key = ("small_model_worker", settings.model_dump_json())
    return scope.resource(key, lambda: _make_worker(settings)), False


@asynccontextmanager
async def small_model_worker() -> AsyncIterator[SmallModelWorker | None]:
    """The small-model worker when ``USE_SMALL_MODEL`` is on (else None), closed afterwards if it was made here."""
    worker, owned = _get_small_model_worker()
    try:
        yield worker
    finally:
        if owned and worker is not None:
            await worker.aclose()


async def parse_line_items(text: str, lines: Sequence[OcrLine] | None = None) -> ParsedReceipt:
    """Parse receipt text with the small model when enabled, else (or on any failure) the keyword parser.

    `lines` (the OCR lines with boxes the text came from) reach the keyword parser; the small model reads
    the text.

    Raises:
        ToolError: `lines` are not the lines of `text`.
    """
    from orchestrator.rules.receipt.parse import check_lines, parse_receipt_text  # its rules compile on first use

    if lines is not None:
        try:
            check_lines(text, lines)
        except ValueError as exc:
            raise ToolError(f"line_item_parser: {exc}") from exc

    async with small_model_worker() as small_model:
        if small_model is not None:
            try:
                return await small_model.parse_line_items(text)
            except Exception as exc:
                logger.warning("small-model parsing failed (%s: %s); keywords answer", type(exc).__name__, exc)
                report_count("fallback:keyword")
    report_mode("keyword")
    return parse_receipt_text(text, lines)


async def categorize_items(
    items: Sequence[LineItem], taxonomy: Sequence[str] | None = None, rules_path: str | None = None
) -> CategorizedItems:
    """Categorize with the cascade when enabled, else (or on any failure) the keyword rules."""
    from orchestrator.rules.categories import categorize_with_keywords, load_rules, taxonomy_labels

    labels = taxonomy_labels(taxonomy)
    rules = load_rules(rules_path)
    async with small_model_worker() as small_model:
        if small_model is not None:
            try:
                return await small_model.categorize_items(items, labels, rules)
            except Exception as exc:
                logger.warning("small-model categorization failed (%s: %s); keywords answer", type(exc).__name__, exc)
                report_count("fallback:keyword", len(items))
    result = categorize_with_keywords(items, labels, rules)
    for mode, count in result.modes.items():
        report_mode(mode)
        report_count(f"tier:{mode}", count)
    return result


async def line_item_parser_worker(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The design's parser worker: ``{"text": ...}`` in, the parsed receipt as JSON out.

    Raises:
        ToolError: the payload has no text.
    """
    text = payload.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ToolError("line_item_parser_worker: the payload needs a non-empty 'text'")
    return (await parse_line_items(text)).model_dump(mode="json")


async def expense_categorizer_worker(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The design's categorizer worker: ``{"items": [...], "taxonomy"?: [...]}`` in, categorized items out.

    Raises:
        ToolError: the payload has no list of items.
    """
    raw = payload.get("items")
    if not isinstance(raw, list):
        raise ToolError("expense_categorizer_worker: the payload needs 'items', a list of line items")
    items = [LineItem(name=i, amount=0.0) if isinstance(i, str) else LineItem.model_validate(i) for i in raw]
    result = await categorize_items(items, payload.get("taxonomy"), payload.get("rules_path"))
    return result.model_dump(mode="json")

"""Text tasks for plans: the `small_model` tool (classify, extract, sentiment, summarize, parse_items,
categorize) and `synthesize`.

Keyword matching is the mode that always works; it is what answers here unless USE_SMALL_MODEL is on,
and whenever the small model fails (see `orchestrator.small_model_worker`). `synthesize` is the one
large-model step in the design's feedback pipeline: with no large model configured it degrades to a stated,
deterministic fallback instead of failing the run.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any, Literal

from orchestrator.context import report_count, report_mode
from orchestrator.errors import ToolError
from orchestrator.registry import ToolKind, tool
from orchestrator.rules.models import CategorizedItem, LineItem
from orchestrator.rules.text import (
    TextResult,
    classify,
    extract,
    keyword_label,
    keyword_sentiment,
    lexicon,
    sentiment,
    summarize,
)
from orchestrator.workers._synthesis import Synthesis, synthesize_with_model

if TYPE_CHECKING:
    from orchestrator.small_model_worker import SmallModelWorker

__all__ = [
    "Synthesis",
    "TextResult",
    "classify",
    "extract",
    "keyword_label",
    "keyword_sentiment",
    "sentiment",
    "small_model_task",
    "summarize",
    "synthesize",
]

logger = logging.getLogger(__name__)


def _extract_schema(fields: list[str] | None) -> dict[str, Any]:
    """What the small model is asked to extract: known aspects for ``issues`` (so counts stay comparable)."""
    aspects = sorted(lexicon()["aspects"])
    wanted = fields or ["issues", "amounts", "emails"]
    properties: dict[str, Any] = {}
    for name in wanted:
        items: dict[str, Any] = {"type": "string", "enum": aspects} if name == "issues" else {"type": "string"}
        properties[name] = {"type": "array", "items": items, "maxItems": 20}
    return {"type": "object", "properties": properties, "required": wanted, "additionalProperties": False}


@tool(
    name="small_model", kind=ToolKind.SMALL_MODEL, read_only=False, destructive=False, idempotent=False, open_world=True
)
async def small_model_task(
    task: Literal["classify", "extract", "sentiment", "summarize", "parse_items", "categorize"],
    text: str = "",
    labels: list[str] | None = None,
    fields: list[str] | None = None,
    items: list[LineItem] | None = None,
) -> TextResult:
    """A small-model text task: classify, extract, sentiment, summarize, parse_items (receipt), categorize (items).

    Keyword rules answer unless USE_SMALL_MODEL is on; then the small-model worker does (cascade: keywords
    when sure, the embedded model, the configured small model), falling back to keywords on any failure.
    `mode` says which answered.

    Args:
        task: classify, extract, sentiment, summarize, parse_items or categorize.
        text: the text (for categorize: one item name, when `items` is not given).
        labels: the labels to choose from (classify), or the categories (categorize).
        fields: what to extract (extract): issues, amounts, emails.
        items: line items to categorize (categorize), e.g. step:parse.items.
    """
    from orchestrator.workers.routing import small_model_worker

    if task in ("classify", "extract", "sentiment", "summarize", "parse_items") and not text.strip():
        raise ToolError(f"small_model: task {task!r} needs a non-empty text")
    async with small_model_worker() as worker:
        if worker is not None:
            try:
                return await _with_model(worker, task, text, labels, fields, items)
            except ToolError:
                raise
            except Exception as exc:
                logger.warning("small_model %s failed (%s: %s); keywords answer", task, type(exc).__name__, exc)
                report_count("fallback:keyword")
    report_mode("keyword")
    return _with_keywords(task, text, labels, fields, items)


def _with_keywords(
    task: str, text: str, labels: list[str] | None, fields: list[str] | None, items: list[LineItem] | None
) -> TextResult:
    from orchestrator.rules.categories import categorize_with_keywords
    from orchestrator.rules.receipt.parse import parse_receipt_text

    if task == "sentiment":
        return sentiment(text)
    if task == "classify":
        return classify(text, labels or [])
    if task == "extract":
        return extract(text, fields)
    if task == "parse_items":
        receipt = parse_receipt_text(text)
        return TextResult(task=task, confidence=receipt.confidence, receipt=receipt)
    if task == "categorize":
        result = categorize_with_keywords(_items(text, items), labels or None)
        return _categorized(result.items)
    return summarize(text)


async def _with_model(
    worker: SmallModelWorker,
    task: str,
    text: str,
    labels: list[str] | None,
    fields: list[str] | None,
    items: list[LineItem] | None,
) -> TextResult:
    if task in ("classify", "sentiment"):
        if task == "classify" and not labels:
            raise ToolError("classify needs a non-empty list of labels")
        labelled = await (worker.classify([text], labels or []) if task == "classify" else worker.sentiment([text]))
        one = labelled[0]
        return TextResult(task=task, label=one.label, confidence=one.confidence, mode=one.mode)
    if task == "extract":
        found = await worker.extract_entities(text, _extract_schema(fields))
        entities = found.entities or [
            str(v) for value in found.data.values() for v in (value if isinstance(value, list) else [value]) if v
        ]
        return TextResult(task=task, entities=entities, data=found.data, confidence=found.confidence, mode=found.mode)
    if task == "parse_items":
        receipt = await worker.parse_line_items(text)
        return TextResult(task=task, confidence=receipt.confidence, receipt=receipt, mode=receipt.mode)
    if task == "categorize":
        result = await worker.categorize_items(_items(text, items), labels or None)
        return _categorized(result.items)
    summary = await worker.summarize(text)
    return TextResult(task=task, summary=summary.summary, confidence=summary.confidence, mode=summary.mode)


def _items(text: str, items: list[LineItem] | None) -> list[LineItem]:
    if items:
        return items
    if not text.strip():
        raise ToolError("small_model: task 'categorize' needs items, or an item name as text")
    return [LineItem(name=text.strip(), amount=0.0)]


def _categorized(items: list[CategorizedItem]) -> TextResult:
    first = items[0] if len(items) == 1 else None
    modes = list(dict.fromkeys(i.mode for i in items))
    return TextResult(
        task="categorize",
        label=first.category if first else None,
        confidence=round(min((i.confidence for i in items), default=0.0), 4),
        items=items,
        mode=modes[0] if len(modes) == 1 else "cascade",
    )


@tool(kind=ToolKind.LARGE_MODEL, read_only=False, destructive=False, idempotent=False, open_world=True)
async def synthesize(instruction: str, data: Any = None) -> Synthesis:
    """Large-model synthesis (e.g. action items from ranked issues); a stated fallback when none is configured.

    Args:
        instruction: what to write.
        data: the material (e.g. ranked issues with counts).
    """
    result = await synthesize_with_model(instruction, data)
    if result is not None:
        return result
    report_mode("fallback")
    return Synthesis(
        text=_fallback_text(instruction, data),
        mode="fallback",
        note="no large model configured (set OPENAI_API_KEY, ANTHROPIC_API_KEY or PLANNER_PROVIDER=ollama); "
        "wrote a template from the data instead",
    )


def _fallback_text(instruction: str, data: Any) -> str:
    lines = [f"{instruction.strip()} (template, no large model):"]
    rows = data if isinstance(data, list) else [data] if data is not None else []
    for i, row in enumerate(rows[:10], 1):
        if isinstance(row, dict) and "value" in row:
            count = f" ({row['count']} mentions)" if "count" in row else ""
            lines.append(f"{i}. Address '{row['value']}'{count}.")
        else:
            lines.append(f"{i}. Review: {json.dumps(row, ensure_ascii=False)[:120]}")
    return "\n".join(lines)

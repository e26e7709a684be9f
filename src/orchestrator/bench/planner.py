"""Planner benchmarks: what streaming execution saves, and what planning once per batch costs.

:func:`measure_streaming` times one request against a fake OpenAI server that writes the receipt plan at a
realistic token rate, streamed (steps start as they are written) and not (plan, then run): time from the
request to the first step started, to the full plan, and to the end of the run. Workers are simulated
with a fixed latency, so the figures isolate the planner and the scheduler.

:func:`measure_batch` plans once for a batch of documents, runs the plan over every document, counts the
large-model calls, and compares the cost per 1,000 documents with a baseline that sends every document to
the large model (price table, realistic tokens per receipt).
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anyio

from orchestrator.executor import Event, RunNote, StepStarted, execute_plan
from orchestrator.planner import LargePlanner, PlannedRun
from orchestrator.providers.pricing import PRICES, Price, find_price
from orchestrator.registry import ToolRegistry
from orchestrator.settings import Settings
from orchestrator.testing.fake_llm import FakeLLMServer
from orchestrator.toolbox import default_registry

_REPO = Path(__file__).resolve().parents[3]
RECEIPT_PLAN: dict[str, Any] = {
    "goal": "Process this receipt and categorize items",
    "inputs": {"image_path": {"type": "string", "description": "receipt image or text file"}},
    "steps": [
        {"id": "ocr", "tool": "receipt_ocr", "args": {"image_path": "input:image_path"}},
        {"id": "parse", "tool": "line_item_parser", "args": {"text": "step:ocr.text"}},
        {"id": "categorize", "tool": "expense_categorizer", "args": {"items": "step:parse.items"}},
        {
            "id": "totals",
            "tool": "calculate_totals",
            "args": {"items": "step:categorize.items", "tax": "step:parse.tax"},
        },
        {
            "id": "report",
            "tool": "format_report",
            "args": {
                "title": "Receipt: {{step:parse.merchant}}",
                "text": "Spent {{step:totals.total}} {{step:parse.currency}} at {{step:parse.merchant}}.",
                "data": {"by category": "step:totals.by_category", "items": "step:categorize.items"},
            },
        },
    ],
    "output": "step:report",
}
"""The receipt plan (as in examples/example_plan_hybrid.json) that the fake planner writes."""

REQUEST = "Process this receipt and categorize items"
SAMPLE_RECEIPT = "BLUE HERON CAFE\n2024-03-14\nLatte 2 x 3.50 7.00\nCroissant 2 x 3.25 6.50\nTax 1.09\nTotal 14.59\n"

# The per-document baseline: one large-model call per receipt doing OCR-text parsing and categorisation.
BASELINE_PROMPT_TOKENS = 600
"""Instructions plus the output schema, per receipt."""
BASELINE_OUTPUT_TOKENS = 350
"""Line items with categories and totals as JSON, per receipt."""


def _simulated_tools(step_delay_s: float) -> ToolRegistry:
    """The receipt plan's tools as stand-ins that take `step_delay_s` each (a small-model call, say)."""
    registry = ToolRegistry()
    output = {"text": "t", "items": [], "tax": 0.0, "merchant": "m", "currency": "USD", "total": 0.0}
    output["by_category"] = {}
    for name in ("receipt_ocr", "line_item_parser", "expense_categorizer", "calculate_totals", "format_report"):

        async def work(**kwargs: Any) -> Any:
            await anyio.sleep(step_delay_s)
            return output

        work.__doc__ = f"Simulated {name}."
        registry.tool(name=name)(work)
    return registry


async def _one_request(
    server: FakeLLMServer, registry: ToolRegistry, home: Path, *, stream: bool
) -> tuple[dict[str, Any], PlannedRun]:
    marks: dict[str, float] = {}
    started = time.perf_counter()

    def watch(event: Event) -> None:
        now = time.perf_counter() - started
        if isinstance(event, StepStarted):
            marks.setdefault("first_step_started_s", now)
        elif isinstance(event, RunNote) and event.data.get("kind") == "planner_call":
            marks.setdefault("plan_complete_s", now)

    settings = Settings(orchestrator_home=home, ollama_api_url="http://127.0.0.1:9")
    async with LargePlanner(
        "openai", "gpt-4o", registry=registry, settings=settings, library=False, stream=stream,
        api_key="sk-bench", base_url=server.openai_url, timeout_s=120.0,
    ) as planner:  # fmt: skip
        done = await planner.run(REQUEST, {"image_path": "receipt.txt"}, on_event=watch)
    total = time.perf_counter() - started
    figures: dict[str, Any] = {
        "first_step_started_s": round(marks.get("first_step_started_s", math.nan), 3),
        "plan_complete_s": round(marks.get("plan_complete_s", math.nan), 3),
        "total_s": round(total, 3),
    }
    return figures, done


async def measure_streaming(
    *, tokens_per_s: float = 60.0, step_delay_s: float = 0.3, home: Path | None = None
) -> dict[str, Any]:
    """Time one receipt request streamed and not, against a fake OpenAI server writing at `tokens_per_s`.

    Returns:
        ``{"tokens_per_s", "step_delay_s", "plan_tokens", "streaming": {...}, "non_streaming": {...},
        "first_step_speedup", "total_speedup"}``; each mode has ``first_step_started_s``,
        ``plan_complete_s`` and ``total_s`` (seconds from the request), and streaming also
        ``steps_started_before_plan_complete``.
    """
    registry = _simulated_tools(step_delay_s)
    text = json.dumps(RECEIPT_PLAN, indent=2)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as scratch, FakeLLMServer(default=text, tokens_per_s=tokens_per_s) as server:
        for mode, stream in (("streaming", True), ("non_streaming", False)):
            figures, done = await _one_request(server, registry, home or Path(scratch), stream=stream)
            if stream:
                complete = next(
                    (n for n in done.planning.notes if n.startswith("planner: plan complete")), "plan complete (?)"
                )
                figures["steps_started_before_plan_complete"] = _started_before(complete)
            figures["status"] = done.result.status
            results[mode] = figures
    streaming, plain = results["streaming"], results["non_streaming"]
    return {
        "tokens_per_s": tokens_per_s,
        "step_delay_s": step_delay_s,
        "plan_tokens": math.ceil(len(text) / 4),
        "streaming": streaming,
        "non_streaming": plain,
        "first_step_speedup": round(plain["first_step_started_s"] / streaming["first_step_started_s"], 2),
        "total_speedup": round(plain["total_s"] / streaming["total_s"], 2),
    }


def _started_before(note: str) -> int:
    # "planner: plan complete (5 steps; 2 already started)"
    try:
        return int(note.rsplit("; ", 1)[1].split(" ", 1)[0])
    except (IndexError, ValueError):
        return 0


def _receipts() -> list[str]:
    folder = _REPO / "examples" / "receipts"
    texts = [p.read_text(encoding="utf-8") for p in sorted(folder.glob("*.txt"))] if folder.is_dir() else []
    return texts or [SAMPLE_RECEIPT]


async def measure_batch(
    *,
    n_docs: int = 100,
    batch_size: int = 1000,
    model: str = "gpt-4o",
    baseline_models: tuple[str, ...] = ("gpt-4o", "claude-sonnet-4-5"),
    prices: Mapping[str, Price] | None = None,
    home: Path | None = None,
) -> dict[str, Any]:
    """Plan once for a batch of receipts, run the plan on each, and cost it against one large call per receipt.

    `n_docs` receipts are actually run (to count calls and check the plan works); the cost per 1,000
    documents assumes batches of `batch_size` documents, one planner call each.

    The planner call goes to a fake OpenAI server with the real tool catalog (so its prompt has the real
    size); the plan runs with the real receipt tools (keyword mode: no model) over the example receipts'
    text, cycled. Receipt tokens for the baseline are measured from that text (4 characters a token).
    """
    if n_docs < 1 or batch_size < 1:
        raise ValueError("n_docs and batch_size must be at least 1")
    with tempfile.TemporaryDirectory() as scratch:
        return await _batch(n_docs, batch_size, model, baseline_models, prices, (home or Path(scratch)) / "bench")


async def _batch(
    n_docs: int,
    batch_size: int,
    model: str,
    baseline_models: tuple[str, ...],
    prices: Mapping[str, Price] | None,
    folder: Path,
) -> dict[str, Any]:
    table = dict(PRICES) | dict(prices or {})
    receipts = _receipts()
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, text in enumerate(receipts):
        path = folder / f"receipt_{index}.txt"
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    registry = default_registry()
    with FakeLLMServer(default=json.dumps(RECEIPT_PLAN, indent=2)) as server:
        settings = Settings(orchestrator_home=folder, ollama_api_url="http://127.0.0.1:9")
        async with LargePlanner(
            "openai", model, registry=registry, settings=settings, library=False, api_key="sk-bench",
            base_url=server.openai_url,
        ) as planner:  # fmt: skip
            plan, report = await planner.plan_with_report(REQUEST, {"image_path": str(paths[0])})
        started = time.perf_counter()
        ok = 0
        for index in range(n_docs):
            result = await execute_plan(plan, {"image_path": str(paths[index % len(paths)])}, registry=registry)
            ok += result.ok
        seconds = time.perf_counter() - started
        calls = len(server.requests)
    receipt_tokens = sum(math.ceil(len(t) / 4) for t in receipts) / len(receipts)
    planner_cost = report.usage.cost_usd
    two_model = round(planner_cost * 1000 / batch_size, 5)
    baselines = {}
    for name in baseline_models:
        price = find_price(name, table)
        if price is None:
            continue
        per_doc = price.cost(int(BASELINE_PROMPT_TOKENS + receipt_tokens), BASELINE_OUTPUT_TOKENS)
        baselines[name] = {
            "usd_per_1000_docs": round(per_doc * 1000, 4),
            "large_model_calls_per_1000_docs": 1000,
            "times_two_model": round(per_doc * 1000 / two_model, 1) if two_model else None,
        }
    return {
        "n_docs": n_docs,
        "docs_succeeded": ok,
        "docs_per_s": round(n_docs / seconds, 1) if seconds > 0 else 0.0,
        "large_model_calls_per_batch": calls,
        "planner_call": {
            "model": model,
            "input_tokens": report.usage.input_tokens,
            "output_tokens": report.usage.output_tokens,
            "usd": round(planner_cost, 5),
        },
        "two_model_usd_per_1000_docs": two_model,
        "batch_size": batch_size,
        "two_model_note": "one planner call per batch; the workers run locally (keyword mode) at no token cost",
        "per_document_baseline": baselines,
        "assumptions": {
            "baseline_input_tokens_per_doc": int(BASELINE_PROMPT_TOKENS + receipt_tokens),
            "baseline_output_tokens_per_doc": BASELINE_OUTPUT_TOKENS,
            "receipt_tokens_measured_from": f"{len(receipts)} example receipt text(s), 4 characters per token",
        },
    }


__all__ = ["RECEIPT_PLAN", "measure_batch", "measure_streaming"]

"""The cost ledger of a recorded run: throughput, model calls, items per cascade tier, cost per 1,000 documents,
and the same work priced as one large-model call per document (the design's comparison).

Every figure comes from what the store recorded (steps' usage and counts, planner calls), so a run resumed
over several sessions is counted once: steps reused from an earlier session are not recorded again. The
per-document baseline reuses the benchmark's assumptions (prompt and output tokens per receipt, as
:mod:`orchestrator.bench.planner` uses them) and the price table, both in :mod:`orchestrator.providers.pricing`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from orchestrator.store._sqlite import RunStore, StepRecord

_TEXT_SUFFIXES = {".txt", ".md"}


class Baseline(BaseModel):
    """The same documents, each sent to the large model once."""

    model: str
    input_tokens_per_doc: int
    output_tokens_per_doc: int
    usd_per_1000_docs: float | None = Field(description="None when the model has no price in the table")
    times_this_run: float | None = Field(default=None, description="baseline cost / this run's cost")
    tokens_measured_from: str


class CostLedger(BaseModel):
    """What `orchestrator cost RUN_ID --json` prints."""

    run_id: str
    kind: str
    status: str
    documents: int
    documents_done: int
    documents_succeeded: int
    sessions: int
    active_s: float = Field(description="time spent running, summed over sessions (a resumed run has several)")
    docs_per_s: float
    planner_calls: int
    planner_input_tokens: int
    planner_output_tokens: int
    planner_cost_usd: float
    model_calls: int = Field(description="calls of worker models (small models, a large-model step) made by steps")
    model_input_tokens: int
    model_output_tokens: int
    model_cost_usd: float
    items_per_tier: dict[str, int] = Field(description="cascade tier -> items it answered")
    cache_hits: dict[str, int]
    cost_usd: float
    cost_per_1000_docs: float
    per_step: dict[str, dict[str, float]] = Field(description="step id -> calls, tokens and cost over all documents")
    per_document: dict[str, float] = Field(description="document -> cost in US dollars")
    large_model_per_document: Baseline

    def headline(self) -> str:
        """One line: throughput, calls, cost per 1,000 documents against the large model per document."""
        base = self.large_model_per_document
        versus = (
            f" (large model per document: ${base.usd_per_1000_docs:,.2f})" if base.usd_per_1000_docs is not None else ""
        )
        return (
            f"{self.docs_per_s:.2f} docs/s; {self.planner_calls} planner call(s), {self.model_calls} worker model "
            f"call(s); ${self.cost_usd:.4f} in all, ${self.cost_per_1000_docs:.4f} per 1,000 docs{versus}"
        )


def _add_span(spans: dict[int, list[float]], step: StepRecord) -> None:
    """Widen the step's session's active span to cover the step."""
    if step.started_at is None or step.finished_at is None or step.attempts == 0 and step.status != "succeeded":
        return
    lo, hi = spans.setdefault(step.session, [step.started_at, step.finished_at])
    spans[step.session] = [min(lo, step.started_at), max(hi, step.finished_at)]


def _active_seconds(spans: dict[int, list[float]], planner: list[dict[str, Any]]) -> float:
    if planner and spans:
        first = min(spans)
        start = min(call["at"] - call["latency_s"] for call in planner)
        spans[first][0] = min(spans[first][0], start)
    return sum(hi - lo for lo, hi in spans.values())


def _doc_chars(doc: str, text_len: int | None) -> int | None:
    """The document's length in characters: its text file's, else its first recorded text output's."""
    path = Path(doc)
    if doc and path.suffix.lower() in _TEXT_SUFFIXES:
        try:
            return len(path.read_text(encoding="utf-8", errors="replace"))
        except OSError:
            pass
    return text_len


def _baseline(model: str, chars: list[int], own_cost: float, docs: int) -> Baseline:
    from orchestrator.providers.pricing import BASELINE_OUTPUT_TOKENS, BASELINE_PROMPT_TOKENS, PRICES, find_price

    doc_tokens = math.ceil(sum(chars) / len(chars) / 4) if chars else 0
    tokens_in = int(BASELINE_PROMPT_TOKENS + doc_tokens)
    price = find_price(model, PRICES)
    per_1000 = None if price is None else round(price.cost(tokens_in, BASELINE_OUTPUT_TOKENS) * 1000, 4)
    own_per_1000 = own_cost / docs * 1000 if docs else 0.0
    source = (
        f"{len(chars)} document text(s), 4 characters per token, plus {BASELINE_PROMPT_TOKENS} prompt tokens"
        if chars
        else f"no document text recorded: {BASELINE_PROMPT_TOKENS} prompt tokens only"
    )
    return Baseline(
        model=model,
        input_tokens_per_doc=tokens_in,
        output_tokens_per_doc=BASELINE_OUTPUT_TOKENS,
        usd_per_1000_docs=per_1000,
        times_this_run=round(per_1000 / own_per_1000, 1) if per_1000 is not None and own_per_1000 > 0 else None,
        tokens_measured_from=source,
    )


def cost_ledger(store: RunStore, run_id: str, *, large_model: str = "gpt-4o") -> CostLedger:
    """The ledger of a recorded run. `large_model` prices the baseline unless the run's planner model is known.

    Documents and steps are read a page at a time and summed as they come, so a run of any size takes
    memory for one number per document, not for its results.
    """
    run = store.get_run(run_id)
    if run is None:
        raise KeyError(run_id)
    planner = store.planner_calls(run_id)
    per_doc: dict[str, float] = {}
    done: set[str] = set()
    succeeded = n_docs = 0
    for d in store.iter_documents(run_id):
        n_docs += 1
        per_doc[d.doc] = 0.0
        if d.status not in ("pending", "cancelled"):
            done.add(d.doc)
        succeeded += d.status == "succeeded"
    tiers: dict[str, int] = {}
    hits: dict[str, int] = {}
    per_step: dict[str, dict[str, float]] = {}
    text_len: dict[str, int] = {}  # the first recorded text output of each document
    spans: dict[int, list[float]] = {}
    model_calls = model_input = model_output = 0
    model_cost = 0.0
    for step in store.iter_steps(run_id):
        for name, n in step.counts.items():
            kind, _, tier = name.partition(":")
            if kind == "tier":
                tiers[tier] = tiers.get(tier, 0) + n
            elif kind == "cache_hits":
                hits[tier] = hits.get(tier, 0) + n
        row = per_step.setdefault(step.step_id, {"calls": 0, "input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0})
        row["calls"] += step.calls
        row["input_tokens"] += step.input_tokens
        row["output_tokens"] += step.output_tokens
        row["cost_usd"] += step.cost_usd
        per_doc[step.doc] = per_doc.get(step.doc, 0.0) + step.cost_usd
        if step.doc not in text_len and isinstance(step.output, dict) and isinstance(step.output.get("text"), str):
            text_len[step.doc] = len(step.output["text"])
        _add_span(spans, step)
        model_calls += step.calls
        model_input += step.input_tokens
        model_output += step.output_tokens
        model_cost += step.cost_usd
    planner_cost = sum(float(c["cost_usd"]) for c in planner)
    total = planner_cost + model_cost
    active = _active_seconds(spans, planner)
    n_done = len(done)
    chars = [c for c in (_doc_chars(doc, text_len.get(doc)) for doc in per_doc if doc in done) if c is not None]
    model = next((str(c["model"]) for c in planner if c.get("model")), large_model)
    return CostLedger(
        run_id=run_id,
        kind=run.kind,
        status=run.status,
        documents=n_docs,
        documents_done=n_done,
        documents_succeeded=succeeded,
        sessions=run.sessions,
        active_s=round(active, 4),
        docs_per_s=round(n_done / active, 3) if active > 0 else 0.0,
        planner_calls=len(planner),
        planner_input_tokens=sum(int(c["input_tokens"]) for c in planner),
        planner_output_tokens=sum(int(c["output_tokens"]) for c in planner),
        planner_cost_usd=round(planner_cost, 6),
        model_calls=model_calls,
        model_input_tokens=model_input,
        model_output_tokens=model_output,
        model_cost_usd=round(model_cost, 6),
        items_per_tier=tiers,
        cache_hits=hits,
        cost_usd=round(total, 6),
        cost_per_1000_docs=round(total / n_done * 1000, 4) if n_done else 0.0,
        per_step=per_step,
        per_document={doc: round(cost, 6) for doc, cost in per_doc.items()},
        large_model_per_document=_baseline(model, chars, total, n_done),
    )


__all__ = ["Baseline", "CostLedger", "cost_ledger"]

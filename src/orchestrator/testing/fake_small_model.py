"""A deterministic "small model" for :class:`~orchestrator.testing.fake_llm.FakeLLMServer`: it reads the
small-model worker's prompts and answers them with schema-valid JSON, so a fake Ollama, OpenAI-compatible or
Azure AI server behaves like a (rule-following) model.

    with FakeLLMServer(default=SmallModelResponder(latency_s=(0.2, 0.4))) as server:
        worker = SmallModelWorker(backend="ollama", base_url=server.base_url)
        ...

How it answers, by the shape of the schema it was sent:

* label tasks (``answers``): the keyword rules (expense categories, sentiment lexicon, label words), with a
  fixed confidence; a label no rule supports gets the first allowed label, with a lower confidence;
* receipts (``items`` and ``total``): the keyword receipt parser's result;
* summaries: the first sentence; extraction: the known aspects for ``issues``, empty for other fields.

`latency_s` makes each reply wait (a fixed time, or uniform in a range, seeded), as a model server would.
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Sequence
from typing import Any

from orchestrator.testing.fake_llm import RecordedRequest, Reply

__all__ = ["SmallModelResponder", "task_input"]


def task_input(request: RecordedRequest) -> dict[str, Any]:
    """The JSON after ``INPUT:`` in the latest message that has one (repair turns come after it)."""
    for message in reversed(request.messages):
        content = str(message.get("content", ""))
        if content.startswith("INPUT:"):
            body = content.removeprefix("INPUT:").split("\n\nSCHEMA:", 1)[0]
            value = json.loads(body)
            return value if isinstance(value, dict) else {}
    return {}


class SmallModelResponder:
    """A reply function for FakeLLMServer that answers the worker's tasks (see the module docstring).

    Args:
        latency_s: seconds to wait per reply: a number, or a (low, high) range drawn from a seeded RNG.
        confidence: the confidence it states for a label a rule supports.
        seed: seed for the latency draws.
    """

    def __init__(self, *, latency_s: float | tuple[float, float] = 0.0, confidence: float = 0.9, seed: int = 0) -> None:
        self.latency_s = latency_s
        self.confidence = confidence
        self._rng = random.Random(seed)
        self._lock = threading.Lock()  # the server answers from several threads
        self.calls = 0

    def __call__(self, request: RecordedRequest) -> Reply:
        with self._lock:
            self.calls += 1
            if isinstance(self.latency_s, tuple):
                delay = self._rng.uniform(*self.latency_s)
            else:
                delay = float(self.latency_s)
        return Reply(data=self.answer(request), delay_s=delay)

    def answer(self, request: RecordedRequest) -> Any:
        """The JSON answer for `request`."""
        schema = request.json_schema or {}
        properties = schema.get("properties", {})
        payload = task_input(request)
        if "answers" in properties:
            return {"answers": [self._label(text, payload.get("labels", {})) for text in payload.get("items", [])]}
        if "items" in properties and "total" in properties:
            return _receipt(str(payload.get("receipt", "")))
        if set(properties) == {"summary"}:
            text = str(payload.get("text", ""))
            return {"summary": text.split(". ")[0].strip()[:500] or text[:500]}
        return _extract(str(payload.get("text", "")), properties)

    def _label(self, text: str, labels: dict[str, str]) -> dict[str, Any]:
        allowed = list(labels)
        label, sure = _rule_label(text, allowed)
        return {"label": label, "confidence": self.confidence if sure else round(self.confidence / 2, 2)}


def _rule_label(text: str, labels: Sequence[str]) -> tuple[str, bool]:
    from orchestrator.rules import text as language
    from orchestrator.rules.categories import load_rules

    if set(labels) == {"positive", "negative", "neutral"}:
        found = language.sentiment(text)
        return (found.label or "neutral", True)
    rules = load_rules()
    if any(label in rules.categories for label in labels):
        prediction = rules.predict([text], labels)[0]
        if prediction.confidence > 0:
            return prediction.label, True
    guess = language.classify(text, list(labels))
    if guess.label is not None:
        return guess.label, True
    return labels[0], False


def _receipt(text: str) -> dict[str, Any]:
    from orchestrator.rules.receipt.parse import parse_receipt_text

    parsed = parse_receipt_text(text)
    return {
        "merchant": parsed.merchant,
        "date": parsed.date,
        "currency": parsed.currency,
        "subtotal": parsed.subtotal,
        "tax": parsed.tax,
        "total": parsed.total,
        "items": [item.model_dump() for item in parsed.items],
    }


def _extract(text: str, properties: dict[str, Any]) -> dict[str, Any]:
    from orchestrator.rules import text as language

    found = set(language.extract(text, ["issues"]).entities)
    out: dict[str, Any] = {}
    for name, spec in properties.items():
        kind = spec.get("type") if isinstance(spec, dict) else None
        if kind == "array":
            allowed = (spec.get("items") or {}).get("enum")
            out[name] = sorted(found & set(allowed)) if allowed else []
        else:
            out[name] = None
    return out

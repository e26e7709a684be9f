"""Small worker models: the design's ``SmallModelWorker``, its back-ends, and the confidence cascade.

    from orchestrator.small_model_worker import SmallModelWorker

    worker = SmallModelWorker(backend="ollama", model_name="phi3")
    items = await worker.parse_line_items(ocr_text)
    categorized = await worker.categorize_items(items)

Back-ends: ``ollama``, ``openai_compatible``, ``azure`` (Azure AI model inference), ``transformers`` (a
local model with constrained decoding) and ``embedded`` (MiniLM, offline, the default when no server is
configured). Names are imported on first use, so importing this package loads neither torch nor httpx
clients, and the receipt tools can import the cascade without a cycle.

Layer: below the workers (which route into it), above the keyword rules (:mod:`orchestrator.rules`, its
first tier) and the providers. The cascade, and which tiers it runs, live here and only here.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestrator.small_model_worker.backends.base import Generated, JsonBackend
    from orchestrator.small_model_worker.cascade import Cascade, Prediction, Tier
    from orchestrator.small_model_worker.choose import SmallModelChoice, choose_backend
    from orchestrator.small_model_worker.results import Classification, Extraction, SentimentResult, Summary
    from orchestrator.small_model_worker.runner import BudgetExhausted, ModelRunner
    from orchestrator.small_model_worker.worker import SmallModelWorker

__all__ = [
    "BudgetExhausted",
    "Cascade",
    "Classification",
    "Extraction",
    "Generated",
    "JsonBackend",
    "ModelRunner",
    "Prediction",
    "SentimentResult",
    "SmallModelChoice",
    "SmallModelWorker",
    "Summary",
    "Tier",
    "choose_backend",
]

_LAZY = {
    "BudgetExhausted": "runner",
    "Cascade": "cascade",
    "Classification": "results",
    "Extraction": "results",
    "Generated": "backends.base",
    "JsonBackend": "backends.base",
    "ModelRunner": "runner",
    "Prediction": "cascade",
    "SentimentResult": "results",
    "SmallModelChoice": "choose",
    "SmallModelWorker": "worker",
    "Summary": "results",
    "Tier": "cascade",
    "choose_backend": "choose",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)

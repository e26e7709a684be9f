"""The answer cache: a repeated item costs nothing, and keys keep back-ends, tasks and label sets apart."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from orchestrator.context import StepContext, step_reporter
from orchestrator.small_model_worker import SmallModelWorker
from orchestrator.small_model_worker.cache import ResultCache, cache_key
from orchestrator.testing.fake_llm import FakeLLMServer

pytestmark = pytest.mark.anyio

WorkerFor = Callable[..., SmallModelWorker]
RECEIPT = "CORNER CAFE\nLatte 3.50\nTOTAL 3.50"


async def test_a_repeated_item_makes_no_request_even_from_a_new_worker(
    worker_for: WorkerFor, fake: FakeLLMServer
) -> None:
    async with worker_for(cascade=("llm",)) as worker:
        first = await worker.classify(["iced latte", "diesel"], ["beverage", "fuel"])
        await worker.parse_line_items(RECEIPT)
    assert len(fake.requests) == 2
    context = StepContext("r1", "s1")
    token = step_reporter.set(context)
    try:
        async with worker_for(cascade=("llm",)) as again:  # same ORCHESTRATOR_HOME: the SQLite cache persists
            second = await again.classify(["diesel", "iced latte"], ["beverage", "fuel"])
            receipt = await again.parse_line_items(RECEIPT)
    finally:
        step_reporter.reset(token)
    assert len(fake.requests) == 2  # no new request
    assert [r.label for r in second] == [r.label for r in reversed(first)]
    assert all(r.mode == "ollama:phi3" for r in second) and receipt.mode == "ollama:phi3"
    assert context.notes == {"cache_hits:ollama:phi3": 3, "tier:ollama:phi3": 3}
    assert context.usage is None  # nothing was spent


async def test_other_labels_another_task_or_another_model_are_asked_again(
    worker_for: WorkerFor, fake: FakeLLMServer
) -> None:
    async with worker_for(cascade=("llm",)) as worker:
        await worker.classify(["iced latte"], ["beverage", "fuel"])
        await worker.classify(["iced latte"], ["beverage", "fuel", "food"])
        await worker.categorize_items(["iced latte"])
    async with worker_for("openai_compatible", cascade=("llm",)) as other:
        await other.classify(["iced latte"], ["beverage", "fuel"])
    assert len(fake.requests) == 4


async def test_without_the_cache_every_call_asks_the_model(worker_for: WorkerFor, fake: FakeLLMServer) -> None:
    async with worker_for(cascade=("llm",), cache=False) as worker:
        await worker.classify(["iced latte"], ["beverage", "fuel"])
        await worker.classify(["iced latte"], ["beverage", "fuel"])
    assert len(fake.requests) == 2


def test_keys_cover_backend_task_and_input_and_values_survive_a_round_trip(tmp_path: Path) -> None:
    keys = {
        cache_key("ollama:phi3", "classify", {"text": "latte"}),
        cache_key("ollama:llama3", "classify", {"text": "latte"}),
        cache_key("ollama:phi3", "categorize", {"text": "latte"}),
        cache_key("ollama:phi3", "classify", {"text": "latté"}),
    }
    assert len(keys) == 4
    cache = ResultCache(tmp_path)
    cache.put_many({"k": ["beverage", 0.9], "r": {"total": 1.5}})
    assert cache.get_many(["k", "r", "missing"]) == {"k": ["beverage", 0.9], "r": {"total": 1.5}}


async def test_a_damaged_cache_file_is_treated_as_empty(tmp_path: Path) -> None:
    (tmp_path / "small_model.sqlite").write_text("this is not a database")
    cache = ResultCache(tmp_path)
    assert await cache.aget(["k"]) == {}
    await cache.aput({"k": 1})  # logged, not raised

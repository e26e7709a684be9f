"""Small-model answers in the shapes real models write them, through the real client against the fake server:
loose labels, string confidences, reasoning blocks, two objects, refusals, truncation, and the budget on repairs."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from orchestrator.context import StepContext, step_reporter
from orchestrator.settings import Settings
from orchestrator.small_model_worker import SmallModelWorker
from orchestrator.testing.fake_llm import FakeLLMServer, Reply

from .conftest import KEY

pytestmark = pytest.mark.anyio

WorkerFor = Callable[..., SmallModelWorker]
LABELS = ["beverage", "fuel", "office_supplies"]
UNKNOWN = "Zorblax 3000"  # no keyword rule knows it: only the model can answer


def answers(*pairs: tuple[Any, Any]) -> str:
    return json.dumps({"answers": [{"label": label, "confidence": conf} for label, conf in pairs]})


@pytest.mark.parametrize("backend", ["ollama", "openai_compatible"])
@pytest.mark.parametrize(
    ("label", "confidence", "expected"),
    [
        ("Fuel.", 0.9, ("fuel", 0.9)),
        (" FUEL ", "0.8", ("fuel", 0.8)),
        ("The answer is fuel", "85%", ("fuel", 0.85)),
        ("office supplies", 0.7, ("office_supplies", 0.7)),
    ],
)
async def test_a_loosely_written_label_and_confidence_are_read_without_a_repair(
    backend: str,
    label: str,
    confidence: Any,
    expected: tuple[str, float | None],
    worker_for: WorkerFor,
    fake: FakeLLMServer,
) -> None:
    fake.enqueue(answers((label, confidence)))
    async with worker_for(backend, cascade=("llm",), cache=False) as worker:
        [result] = await worker.classify([UNKNOWN], LABELS)
    assert (result.label, result.confidence) == expected
    assert result.mode.endswith(":phi3") and len(fake.requests) == 1


@pytest.mark.parametrize("confidence", ["very sure", None, "", [0.9]])
async def test_a_confidence_that_does_not_read_is_left_empty_not_made_up(
    confidence: Any, worker_for: WorkerFor, fake: FakeLLMServer
) -> None:
    fake.enqueue(answers(("Fuel", confidence)))
    async with worker_for(cascade=("llm",), cache=False) as worker:
        assert worker.runner is not None
        got = await worker.runner.label("classify", [UNKNOWN], LABELS, {})
    assert got == [("fuel", None)] and len(fake.requests) == 1


async def test_a_confidence_left_empty_never_counts_as_sure_in_the_cascade(
    worker_for: WorkerFor, fake: FakeLLMServer
) -> None:
    fake.enqueue(answers(("fuel", "certain")))
    async with worker_for(cascade=("llm", "keyword"), cache=False, threshold=0.5) as worker:
        [result] = await worker.classify(["Diesel"], LABELS)
    assert result.mode == "keyword"  # the model's answer had no confidence: the next tier was asked


@pytest.mark.parametrize(
    ("first", "feedback"),
    [
        (answers(("fuel or beverage", 0.9)), "ambiguous"),
        (answers(("fuel", 0.9)) + "\n" + answers(("beverage", 0.9)), "2 separate JSON objects"),
        ("I'm sorry, but I can't help with that.", "declined"),
        (Reply(answers(("fuel", 0.9))[:20], finish_reason="length"), "cut off at the output limit"),
    ],
    ids=["ambiguous-label", "two-objects", "refusal", "truncated"],
)
async def test_a_bad_answer_is_fed_back_saying_what_was_wrong_and_the_repair_is_used(
    first: Any, feedback: str, worker_for: WorkerFor, fake: FakeLLMServer
) -> None:
    fake.enqueue(first, answers(("fuel", 0.9)))
    async with worker_for(cascade=("keyword", "llm"), cache=False) as worker:
        [result] = await worker.classify([UNKNOWN], LABELS)
    assert (result.label, result.mode) == ("fuel", "ollama:phi3")
    assert len(fake.requests) == 2
    assert feedback in fake.requests[1].messages[-1]["content"]


async def test_a_reasoning_block_around_the_answer_is_skipped(worker_for: WorkerFor, fake: FakeLLMServer) -> None:
    fake.enqueue('<think>{"answers": [{"label": "beverage"}]} no, it is a fuel.</think>' + answers(("fuel", 0.9)))
    async with worker_for(cascade=("llm",), cache=False) as worker:
        [result] = await worker.classify([UNKNOWN], LABELS)
    assert (result.label, result.confidence) == ("fuel", 0.9) and len(fake.requests) == 1


async def test_two_refusals_leave_the_item_to_the_keywords_after_one_retry(
    worker_for: WorkerFor, fake: FakeLLMServer
) -> None:
    fake.enqueue("I cannot help with that.", "I must decline.", answers(("fuel", 0.9)))
    context = StepContext("r1", "s1")
    token = step_reporter.set(context)
    try:
        async with worker_for(cascade=("keyword", "llm"), cache=False) as worker:
            [result] = await worker.classify(["Diesel"], LABELS)
    finally:
        step_reporter.reset(token)
    assert result.mode == "keyword" and len(fake.requests) == 2
    assert context.notes is not None and context.notes["invalid:ollama:phi3"] == 1


async def test_a_repair_is_not_asked_for_once_the_first_answer_spent_the_budget(
    worker_for: WorkerFor, isolated_settings: Settings
) -> None:
    def costly_garbage(request: Any) -> Reply:
        return Reply("not json at all", input_tokens=100_000, output_tokens=10)  # $0.015 on gpt-4o-mini

    with FakeLLMServer(default=costly_garbage, api_key=KEY) as paid:
        worker = worker_for(
            "openai_compatible", paid, model="gpt-4o-mini", cascade=("keyword", "llm"), budget_usd=0.01, cache=False
        )
        async with worker:
            [result] = await worker.classify([UNKNOWN], LABELS)
        assert len(paid.requests) == 1  # the repair would have gone over the budget
    assert result.mode == "keyword"

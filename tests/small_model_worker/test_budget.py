"""The run-wide budget: once spent, nothing escalates to a paid model; local models are never stopped by it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from orchestrator.context import StepContext, step_reporter
from orchestrator.executor import execute_plan
from orchestrator.settings import Settings, use_settings
from orchestrator.small_model_worker import SmallModelWorker
from orchestrator.testing.fake_llm import FakeLLMServer, RecordedRequest, Reply
from orchestrator.testing.fake_small_model import SmallModelResponder

from .conftest import KEY

pytestmark = pytest.mark.anyio

WorkerFor = Callable[..., SmallModelWorker]
UNSURE = ["Zorblax 3000", "Quuxinator", "Flimflam Deluxe"]
PAID = "openai_compatible:gpt-4o-mini"  # priced: $0.15 per million input tokens


def costly(answers: SmallModelResponder, *, confidence: float | None = None) -> Callable[[RecordedRequest], Reply]:
    """Answers like the fake model, each call reporting 100k input tokens ($0.015 on gpt-4o-mini)."""

    def reply(request: RecordedRequest) -> Reply:
        data = answers.answer(request)
        if confidence is not None:
            for answer in data.get("answers", []):
                answer["confidence"] = confidence
        return Reply(data=data, input_tokens=100_000, output_tokens=10)

    return reply


@pytest.fixture
def paid(responder: SmallModelResponder) -> Iterator[FakeLLMServer]:
    with FakeLLMServer(default=costly(responder), api_key=KEY) as server:
        yield server


async def test_a_spent_budget_stops_escalation_and_the_rest_keep_their_keyword_answers(
    worker_for: WorkerFor, paid: FakeLLMServer
) -> None:
    context = StepContext("r1", "s1")
    token = step_reporter.set(context)
    try:
        worker = worker_for(
            "openai_compatible",
            paid,
            model="gpt-4o-mini",
            cascade=("keyword", "llm"),
            batch_size=1,
            concurrency=1,
            budget_usd=0.01,
        )
        async with worker:
            result = await worker.categorize_items(UNSURE)
    finally:
        step_reporter.reset(token)
    assert len(paid.requests) == 1  # $0.015 spent on the first call: over the $0.01 budget
    assert [i.mode for i in result.items].count(PAID) == 1
    assert [i.mode for i in result.items].count("keyword") == 2
    assert context.notes is not None and context.notes[f"budget_stopped:{PAID}"] == 2
    assert context.usage is not None and context.usage.cost_usd == pytest.approx(0.015, rel=0.01)


async def test_a_local_model_is_not_stopped_by_a_spent_budget(worker_for: WorkerFor, fake: FakeLLMServer) -> None:
    async with worker_for(cascade=("keyword", "llm"), budget_usd=0.0) as worker:
        result = await worker.categorize_items(UNSURE[:1])
    assert result.items[0].mode == "ollama:phi3" and len(fake.requests) == 1


def plan(*names: str) -> dict[str, Any]:
    """One categorize step per name, each after the one before."""
    steps: list[dict[str, Any]] = []
    for i, name in enumerate(names):
        step: dict[str, Any] = {
            "id": f"s{i}",
            "tool": "expense_categorizer",
            "args": {"items": [{"name": name, "amount": 1.0}]},
        }
        if i:
            step["depends_on"] = [f"s{i - 1}"]
        steps.append(step)
    return {"goal": "categorize", "steps": steps}


async def test_the_budget_is_shared_by_every_step_of_a_run_and_fresh_for_the_next_run(
    paid: FakeLLMServer, isolated_settings: Settings
) -> None:
    settings = isolated_settings.model_copy(
        update={
            "use_small_model": True,
            "small_model_backend": "openai_compatible",
            "small_model_base_url": paid.openai_url,
            "small_model_api_key": KEY,
            "worker_model": "gpt-4o-mini",
            "small_model_cascade": ("keyword", "llm"),
            "small_model_max_retries": 0,
            "budget_usd": 0.01,
        }
    )
    with use_settings(settings):
        first = await execute_plan(plan(*UNSURE))
        second = await execute_plan(plan(UNSURE[0]))
    steps = first.steps
    assert steps["s0"].counts == {f"tier:{PAID}": 1}
    assert steps["s1"].counts == {f"budget_stopped:{PAID}": 1, "tier:keyword": 1}
    assert steps["s2"].counts == {f"budget_stopped:{PAID}": 1, "tier:keyword": 1}
    assert first.usage.cost_usd == pytest.approx(0.015, rel=0.01)  # the run result reports the cost
    assert second.steps["s0"].modes == (PAID,)  # a new run, a new budget: the cache answered, at no cost
    assert len(paid.requests) == 1


async def test_the_large_model_answers_what_the_small_one_is_unsure_of_until_the_budget_is_spent(
    responder: SmallModelResponder, isolated_settings: Settings
) -> None:
    small = costly(responder, confidence=0.3)
    large = costly(responder, confidence=0.95)
    with FakeLLMServer(default=lambda r: small(r) if r.api == "ollama" else large(r), api_key=KEY) as server:
        settings = isolated_settings.model_copy(
            update={"openai_api_key": KEY, "openai_base_url": server.openai_url, "small_model_max_retries": 0}
        )
        worker = SmallModelWorker(
            "ollama",
            "phi3",
            settings=settings,
            base_url=server.base_url,
            cascade=("keyword", "llm", "large"),
            batch_size=1,
            concurrency=1,
            budget_usd=0.3,
        )
        async with worker:
            result = await worker.categorize_items(UNSURE)
        apis = [r.api for r in server.requests]
    modes = [i.mode for i in result.items]
    assert apis.count("ollama") == 3  # local: every unsure item goes to the small model
    assert apis.count("openai") == 2  # gpt-4o, $0.25 a call: the second spends past $0.30, a third is not made
    assert modes.count("openai:gpt-4o") == 2 and modes.count("ollama:phi3") == 1

"""Hostile planner answers through each provider's real SDK against the fake server: what is read, what is fed
back, what ran and what did not.

The plan writes with `save` (not read-only), so every test can assert that nothing wrote from an answer
that was never a valid plan.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from orchestrator.errors import PlanningError
from orchestrator.executor import Event, RunNote, StepStarted
from orchestrator.planner import LargePlanner
from orchestrator.testing.fake_llm import FakeLLMServer, Reply

from .conftest import CONTEXT

pytestmark = pytest.mark.anyio

MakePlanner = Callable[..., LargePlanner]
PROVIDERS = ["openai", "anthropic", "ollama"]
REQUEST = "double n, keep it, add three"
WRITES: dict[str, Any] = {
    "goal": REQUEST,
    "inputs": {"n": {"type": "integer"}},
    "steps": [
        {"id": "twice", "tool": "double", "args": {"x": "input:n"}},
        {"id": "keep", "tool": "save", "args": {"value": "step:twice"}},
        {"id": "total", "tool": "add", "args": {"a": "step:twice", "b": 3}},
    ],
    "output": "step:total",
}
TEXT = json.dumps(WRITES, indent=1)
REFUSAL = "I'm sorry, but I can't help with processing these files."


def _feedback(fake: FakeLLMServer, index: int = 1) -> str:
    return fake.requests[index].last_user_text


# -- read as a plan: nothing is fed back ----------------------------------------------------------------


@pytest.mark.parametrize("provider", ["openai", "ollama"])  # Anthropic's forced tool input has no room for prose
@pytest.mark.parametrize("stream", [True, False])
async def test_a_think_block_with_braces_before_the_plan_is_skipped(
    provider: str, stream: bool, fake: FakeLLMServer, planner_for: MakePlanner, calls: Counter[str]
) -> None:
    fake.enqueue(f'<think>They want {{"steps": [{{"id": "x", "tool": "save"}}]}}? No.</think>\n{TEXT}')
    done = await planner_for(provider).run(REQUEST, CONTEXT, stream=stream)
    assert done.result.ok and done.result.output == 13
    assert len(fake.requests) == 1 and calls["save"] == 1


# -- fed back, repaired, and nothing written from the bad answer ----------------------------------------


def _two_objects() -> str:
    draft = {**WRITES, "steps": WRITES["steps"][:1], "output": "step:twice"}
    return f"Draft:\n{json.dumps(draft)}\nFinal:\n{TEXT}"


def _wrong_types() -> Any:
    return {**WRITES, "steps": [{"id": "keep", "tool": "save", "args": {"value": "ten", "name": 5}}]}


def _runaway() -> Reply:
    step = ',\n  {"id": "keep", "tool": "save", "args": {"value": "step:twice"}}'
    head = TEXT[: TEXT.index('  {\n   "id": "keep"')].rstrip().rstrip(",")
    return Reply(head + step * 300, finish_reason="length")


HOSTILE: dict[str, tuple[Callable[[], Any], str]] = {
    "two-objects": (_two_objects, "2 separate JSON objects"),
    "wrong-types": (_wrong_types, "value"),
    "runaway-repetition": (_runaway, "cut off at the output limit"),
    "commented": (lambda: TEXT.replace('  {\n   "id": "total"', '  /* add */ {\n   "id": "total"'), "not valid JSON"),
}


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("shape", list(HOSTILE))
async def test_a_hostile_answer_is_fed_back_and_nothing_writes_before_the_repaired_plan(
    shape: str, provider: str, fake: FakeLLMServer, planner_for: MakePlanner, calls: Counter[str]
) -> None:
    make, said = HOSTILE[shape]
    fake.enqueue(make(), WRITES)
    saves_at_rejection: list[int] = []

    def watch(event: Event) -> None:
        if isinstance(event, RunNote) and event.data["kind"] == "rejected":
            saves_at_rejection.append(calls["save"])

    done = await planner_for(provider).run(REQUEST, CONTEXT, on_event=watch)

    assert saves_at_rejection == [0]
    assert done.result.ok and calls["save"] == 1
    assert len(fake.requests) == 2
    assert said in _feedback(fake)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_answers_that_never_become_a_plan_end_in_a_planning_error_having_written_nothing(
    provider: str, fake: FakeLLMServer, planner_for: MakePlanner, calls: Counter[str]
) -> None:
    fake.enqueue(_two_objects(), _runaway(), _wrong_types())
    with pytest.raises(PlanningError, match="no valid plan in 3 attempts"):
        await planner_for(provider).run(REQUEST, CONTEXT)
    assert calls["save"] == 0 and len(fake.requests) == 3


# -- refusals ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", ["openai", "ollama"])
@pytest.mark.parametrize("stream", [True, False])
async def test_a_refusal_is_asked_again_once_and_a_second_one_says_the_model_declined(
    provider: str, stream: bool, fake: FakeLLMServer, planner_for: MakePlanner, calls: Counter[str]
) -> None:
    fake.enqueue(REFUSAL, "<think>no</think>I must decline this request.", WRITES)
    events: list[Event] = []
    with pytest.raises(PlanningError, match="declined to plan this request") as caught:
        await planner_for(provider, max_attempts=5).run(REQUEST, CONTEXT, on_event=events.append, stream=stream)
    assert "must decline" in str(caught.value)
    assert len(fake.requests) == 2  # one retry, not five
    assert "routine request" in _feedback(fake)
    assert sum(calls.values()) == 0 and not any(isinstance(e, StepStarted) for e in events)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_one_refusal_then_a_plan_runs_the_plan(
    provider: str, fake: FakeLLMServer, planner_for: MakePlanner
) -> None:
    first: Any = Reply("", finish_reason="refusal") if provider == "anthropic" else REFUSAL
    fake.enqueue(first, WRITES)
    done = await planner_for(provider).run(REQUEST, CONTEXT)
    assert done.result.ok and done.planning.refusals == 1 and len(fake.requests) == 2


async def test_the_providers_own_refusal_signal_counts_as_declining(
    fake: FakeLLMServer, planner_for: MakePlanner, calls: Counter[str]
) -> None:
    fake.enqueue(Reply("", finish_reason="refusal"), Reply("", finish_reason="refusal"), WRITES)
    with pytest.raises(PlanningError, match="declined"):
        await planner_for("anthropic").generate_plan(REQUEST, CONTEXT)
    assert len(fake.requests) == 2 and sum(calls.values()) == 0


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_truncated_answer_is_fed_back_as_truncated(
    provider: str, fake: FakeLLMServer, planner_for: MakePlanner
) -> None:
    fake.enqueue(Reply(TEXT[: len(TEXT) // 2], finish_reason="length"), WRITES)
    plan = await planner_for(provider).generate_plan(REQUEST, CONTEXT)
    assert len(plan.steps) == 3
    assert "cut off at the output limit" in _feedback(fake)

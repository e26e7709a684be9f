"""LargePlanner behaviour with scripted models: streaming, repair, replanning, cost, and plan reuse."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import pytest

from orchestrator.errors import ConfigurationError, ModelError, PlanningError
from orchestrator.executor import Event, RunNote, StepStarted, execute_plan
from orchestrator.plan.model import Plan
from orchestrator.planner import LargePlanner, PlanLibrary
from orchestrator.planner.testing import CallInfo, FunctionChatModel, ScriptedChatModel
from orchestrator.providers import Message
from orchestrator.registry import ToolRegistry
from orchestrator.settings import Settings
from orchestrator.testing.fake_llm import FakeLLMServer

from .conftest import CONTEXT, PLAN, plan_text

pytestmark = pytest.mark.anyio


def notes(events: list[Event], kind: str) -> list[RunNote]:
    return [e for e in events if isinstance(e, RunNote) and e.data.get("kind") == kind]


def scripted(
    *replies: Any, tools: ToolRegistry, settings: Settings, **options: Any
) -> tuple[LargePlanner, ScriptedChatModel]:
    """A planner whose model answers `replies` in order (priced as gpt-4o), and that model."""
    options.setdefault("library", False)
    model = ScriptedChatModel(*replies, model="gpt-4o", provider="openai")
    return LargePlanner(chat_model=model, registry=tools, settings=settings, **options), model


async def test_a_step_starts_while_the_model_is_still_writing_the_plan(tools: ToolRegistry, settings: Settings) -> None:
    text = plan_text()
    cut = text.index('"id": "six"')
    first_started = anyio.Event()

    async def model(messages: list[Message], info: CallInfo) -> AsyncIterator[str]:
        yield text[:cut]  # `twice` is complete here
        with anyio.fail_after(5):
            await first_started.wait()  # the rest of the plan is held back until the first step has started
        yield text[cut:]

    def watch(event: Event) -> None:
        if isinstance(event, StepStarted) and event.step_id == "twice":
            first_started.set()

    planner = LargePlanner(chat_model=FunctionChatModel(model), registry=tools, settings=settings, library=False)
    done = await planner.run("double n and add six", CONTEXT, on_event=watch)

    assert done.result.ok and done.result.output == 16


async def test_a_cycle_found_only_when_the_plan_is_complete_stops_the_run_and_is_repaired(
    tools: ToolRegistry, settings: Settings, calls: Counter[str]
) -> None:
    cyclic = json.loads(plan_text())
    cyclic["steps"][1] = {"id": "six", "tool": "double", "args": {"x": "step:total"}}  # six -> total -> six
    planner, model = scripted(cyclic, PLAN, tools=tools, settings=settings)
    events: list[Event] = []

    done = await planner.run("double n and add six", CONTEXT, on_event=events.append)

    assert done.result.ok and done.result.output == 16
    rejected = notes(events, "rejected")
    assert rejected and "dependency cycle" in " ".join(rejected[0].data["issues"])
    assert "dependency cycle: " in model.calls[1][-1].content
    assert calls["add"] == 1  # total never ran in the cyclic plan
    assert calls["double"] == 2  # twice ran once (reused), six once (in the repaired plan)


async def test_every_planner_call_is_recorded_with_tokens_latency_and_cost_and_added_to_the_run_usage(
    tools: ToolRegistry, settings: Settings
) -> None:
    bad = json.loads(plan_text())
    bad["steps"][2]["tool"] = "plus"
    planner, model = scripted(bad, PLAN, tools=tools, settings=settings, stream=False)
    events: list[Event] = []

    done = await planner.run("double n and add six", CONTEXT, on_event=events.append)

    calls = notes(events, "planner_call")
    assert [c.data["purpose"] for c in calls] == ["plan", "plan: repair"]
    for note in calls:
        assert note.data["input_tokens"] > 0 and note.data["output_tokens"] > 0
        assert note.data["cost_usd"] > 0 and note.data["latency_s"] >= 0 and note.data["model"] == "gpt-4o"
    planning = done.planning.usage
    assert planning.calls == 2 and planning.cost_usd == pytest.approx(sum(c.data["cost_usd"] for c in calls))
    assert done.result.usage.cost_usd == pytest.approx(planning.cost_usd)  # the tools here cost nothing
    assert done.planning.attempts == 2 and done.planning.provider == "openai"


async def test_the_context_keys_must_become_the_plans_inputs(tools: ToolRegistry, settings: Settings) -> None:
    wrong = json.loads(plan_text())
    wrong["inputs"] = {"number": {"type": "integer"}}
    wrong["steps"][0]["args"] = {"x": "input:number"}
    planner, model = scripted(wrong, PLAN, tools=tools, settings=settings)

    plan = await planner.generate_plan("double n and add six", CONTEXT)

    assert set(plan.inputs) == {"n"}
    feedback = model.calls[1][-1].content
    assert "inputs" in feedback and "'number'" in feedback


async def test_a_failed_step_triggers_a_replan_that_reuses_finished_steps(
    tools: ToolRegistry, settings: Settings, calls: Counter[str]
) -> None:
    failing = {
        "goal": "half of twice n",
        "inputs": {"n": {"type": "integer"}},
        "steps": [
            {"id": "twice", "tool": "double", "args": {"x": "input:n"}},
            {"id": "half", "tool": "divide", "args": {"a": "step:twice", "b": 0}},
        ],
        "output": "step:half",
    }
    fixed = json.loads(json.dumps(failing))
    fixed["steps"][1] = {"id": "half", "tool": "divide", "args": {"a": "step:twice", "b": 2}}
    planner, model = scripted(failing, fixed, tools=tools, settings=settings)
    events: list[Event] = []

    done = await planner.run("half of twice n", CONTEXT, on_event=events.append)

    assert done.result.ok and done.result.output == 5
    assert calls == Counter({"double": 1, "divide": 2})  # twice reused, not rerun
    assert done.planning.replans == 1 and done.planning.reused_steps == ["twice"]
    replan = notes(events, "replan")
    assert len(replan) == 1 and replan[0].data["step_id"] == "half"
    asked = model.calls[1][-1].content
    assert "step `half` (tool `divide`) failed: division by zero" in asked
    assert "`twice` (tool `double`): 10" in asked  # the completed output, summarised


async def test_replanning_is_bounded(tools: ToolRegistry, settings: Settings, calls: Counter[str]) -> None:
    failing = {
        "inputs": {"n": {"type": "integer"}},
        "steps": [{"id": "half", "tool": "divide", "args": {"a": "input:n", "b": 0}}],
        "output": "step:half",
    }
    planner, model = scripted(failing, failing, failing, tools=tools, settings=settings, max_replans=2)
    events: list[Event] = []

    done = await planner.run("half of n", CONTEXT, on_event=events.append)

    assert done.result.status != "succeeded" and calls["divide"] == 3
    assert done.planning.replans == 2 and len(notes(events, "replan")) == 2


async def test_refine_plan_revises_a_plan_with_the_users_feedback(tools: ToolRegistry, settings: Settings) -> None:
    revised = json.loads(plan_text())
    revised["steps"][1]["args"] = {"x": 4}
    planner, model = scripted(revised, tools=tools, settings=settings)
    first = await execute_plan(PLAN, CONTEXT, registry=tools)

    plan = await planner.refine_plan(Plan.model_validate(PLAN), "add eight, not six", result=first, context=CONTEXT)

    assert plan.steps[1].args == {"x": 4}
    asked = model.calls[0][-1].content
    assert "add eight, not six" in asked and "`twice` (tool `double`): 10" in asked


async def test_planning_gives_up_with_the_last_issues_attempts_and_output(
    tools: ToolRegistry, settings: Settings
) -> None:
    planner, model = scripted("I cannot help with that.", "Still no.", tools=tools, settings=settings, max_attempts=2)

    with pytest.raises(PlanningError) as caught:
        await planner.generate_plan("double n and add six", CONTEXT)

    assert caught.value.attempts == 2 and caught.value.last_output == "Still no."
    assert [i.code for i in caught.value.issues] == ["not_json"]


async def test_a_model_error_before_any_output_is_a_planning_error(tools: ToolRegistry, settings: Settings) -> None:
    planner, model = scripted(ModelError("openai returned HTTP 503", status_code=503), tools=tools, settings=settings)
    with pytest.raises(PlanningError, match="HTTP 503"):
        await planner.run("double n and add six", CONTEXT)


# -- plan reuse ---------------------------------------------------------------------------------------


async def test_a_repeated_request_is_served_from_the_library_with_no_model_call(
    fake: FakeLLMServer, planner_for: Callable[..., LargePlanner], library: PlanLibrary, calls: Counter[str]
) -> None:
    fake.enqueue(PLAN)
    planner = planner_for("openai", library=library)
    events: list[Event] = []

    first = await planner.run("Double n and add six", CONTEXT)
    asked = len(fake.requests)
    second = await planner.run("  double N and add six. ", {"n": 7}, on_event=events.append)

    assert asked == 1 and len(fake.requests) == asked  # no model call the second time
    assert first.result.output == 16 and second.result.output == 20
    assert second.planning.source == "library" and second.planning.usage.is_zero
    assert "no model call" in notes(events, "library")[0].message


async def test_a_stored_plan_is_not_reused_when_the_inputs_do_not_fit(
    fake: FakeLLMServer, planner_for: Callable[..., LargePlanner], library: PlanLibrary
) -> None:
    other = json.loads(plan_text())
    other["inputs"] = {"m": {"type": "integer"}}
    other["steps"][0]["args"] = {"x": "input:m"}
    fake.enqueue(PLAN, other)
    planner = planner_for("openai", library=library)

    await planner.generate_plan("double n and add six", CONTEXT)
    plan = await planner.generate_plan("double n and add six", {"m": 1})

    assert len(fake.requests) == 2 and set(plan.inputs) == {"m"}


class KeywordEmbedder:
    """A deterministic stand-in for MiniLM: texts sharing words point the same way."""

    VOCAB = ("double", "twice", "add", "six", "receipt", "invoice", "feedback")

    async def embed(self, texts: list[str]) -> list[list[float]]:
        out = []
        for text in texts:
            words = text.lower().replace(".", "").split()
            out.append([1.0 if w in words or (w == "double" and "twice" in words) else 0.0 for w in self.VOCAB])
        return out


async def test_a_similar_request_reuses_the_stored_plan_with_its_own_inputs(
    fake: FakeLLMServer, planner_for: Callable[..., LargePlanner], settings: Settings
) -> None:
    library = PlanLibrary(settings=settings, seeds=(), embedder=KeywordEmbedder(), threshold=0.85)
    fake.enqueue(PLAN)
    planner = planner_for("openai", library=library)

    await planner.run("double n and add six", CONTEXT)
    done = await planner.run("take twice n, add six", {"n": 1})

    assert len(fake.requests) == 1
    assert done.planning.source == "library-similar" and done.result.output == 8
    assert done.plan.goal == "take twice n, add six"


async def test_a_configured_model_plans_requests_that_only_a_seed_plan_matches(
    fake: FakeLLMServer, planner_for: Callable[..., LargePlanner], settings: Settings, tmp_path: Any
) -> None:
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps(PLAN))
    library = PlanLibrary(settings=settings, seeds=[seed], embedder=None)
    fake.enqueue(PLAN)

    await planner_for("openai", library=library).generate_plan(PLAN["goal"], CONTEXT)

    assert len(fake.requests) == 1  # seeds serve provider="library"; a configured model plans afresh


async def test_the_library_provider_serves_a_seeded_request_with_no_key_and_no_server(
    tools: ToolRegistry, settings: Settings, tmp_path: Any
) -> None:
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps(PLAN))
    library = PlanLibrary(settings=settings, seeds=[seed], embedder=None)
    planner = LargePlanner(registry=tools, settings=settings, library=library)
    events: list[Event] = []

    done = await planner.run("Double n and add six!", CONTEXT, on_event=events.append)

    assert done.result.output == 16 and done.planning.source == "library"
    assert planner.choice is not None and planner.choice.provider == "library"
    assert "no Ollama answered" in (planner.choice_reason or "")
    assert notes(events, "provider")[0].message == planner.choice_reason


async def test_the_library_provider_says_what_to_configure_for_an_unknown_request(
    tools: ToolRegistry, settings: Settings, tmp_path: Any
) -> None:
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps(PLAN))
    planner = LargePlanner(
        registry=tools, settings=settings, library=PlanLibrary(settings=settings, seeds=[seed], embedder=None)
    )

    with pytest.raises(ConfigurationError) as caught:
        await planner.generate_plan("write me a poem", {})

    message = str(caught.value)
    for needed in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "PLANNER_PROVIDER=ollama", "'double n and add six'"):
        assert needed in message


async def test_the_shipped_examples_seed_the_library_for_the_default_tools(settings: Settings) -> None:
    planner = LargePlanner("library", settings=settings, similar_requests=False)
    plan = await planner.generate_plan("Analyze customer feedback and generate action items")
    assert plan.steps[0].tool == "load_records"


async def test_scripted_and_function_planners_let_users_test_their_own_planning_code(tools: ToolRegistry) -> None:
    from orchestrator.planner.testing import FunctionPlanner, ScriptedPlanner

    scripted_plan = await ScriptedPlanner("not json", PLAN, registry=tools).generate_plan("x", CONTEXT)
    assert len(scripted_plan.steps) == 3

    def model(messages: list[Message], info: CallInfo) -> Any:
        assert info.json_schema is not None and "steps" in info.json_schema["properties"]
        return PLAN

    done = await FunctionPlanner(model, registry=tools).run("x", CONTEXT)
    assert done.result.output == 16 and done.planning.provider == "function"

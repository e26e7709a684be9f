"""The planner through each provider's real SDK or client, against a fake server speaking that provider's API."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from orchestrator.errors import PlanningError
from orchestrator.executor import Event, RunNote, StepStarted
from orchestrator.planner import LargePlanner, PlanLibrary
from orchestrator.registry import ToolRegistry
from orchestrator.settings import Settings
from orchestrator.testing.fake_llm import Failure, FakeLLMServer, RecordedRequest, Reply

from .conftest import CONTEXT, PLAN, plan_text

pytestmark = pytest.mark.anyio

PROVIDERS = ["openai", "anthropic", "ollama"]
ALL_PROVIDERS = [*PROVIDERS, "azure_openai", "openai_compatible"]

MakePlanner = Callable[..., LargePlanner]


def asked_for_plan_schema(request: RecordedRequest) -> bool:
    """The provider's native structured output carried the plan JSON Schema."""
    schema = request.json_schema
    return schema is not None and "steps" in schema.get("properties", {})


@pytest.mark.parametrize("provider", ALL_PROVIDERS)
async def test_a_valid_answer_becomes_a_validated_plan_using_native_structured_output(
    provider: str, fake: FakeLLMServer, planner_for: MakePlanner, tools: ToolRegistry
) -> None:
    fake.enqueue(PLAN)
    planner = planner_for(provider)

    plan = await planner.generate_plan("double n and add six", CONTEXT)

    assert [s.id for s in plan.steps] == ["twice", "six", "total"]
    request = fake.last_request
    assert asked_for_plan_schema(request)
    system = request.messages[0]["content"]
    catalog = json.dumps([spec.model_dump(mode="json") for spec in tools.catalog()], indent=2, ensure_ascii=False)
    assert catalog in system  # the catalog exactly as `orchestrator tools --json` prints it
    assert "small_model" in system and "Maximise parallelism" in system
    assert "double n and add six" in request.last_user_text
    assert "`n` (integer)" in request.last_user_text


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize(
    "wrap",
    [
        lambda text: f"```json\n{text}\n```",
        lambda text: f"Here is the plan you asked for:\n\n{text}\n\nIt runs three steps.",
        lambda text: text.replace('"step:total"\n}', '"step:total",\n}').replace("}\n  ]", "},\n  ]"),
    ],
    ids=["fenced", "prose", "trailing-commas"],
)
async def test_json_wrapped_in_fences_or_prose_or_with_trailing_commas_is_read(
    provider: str, wrap: Callable[[str], str], fake: FakeLLMServer, planner_for: MakePlanner
) -> None:
    fake.enqueue(wrap(plan_text()))
    plan = await planner_for(provider).generate_plan("double n and add six", CONTEXT)
    assert plan.output == "step:total"
    assert len(fake.requests) == 1


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_an_invalid_plan_is_sent_back_with_the_validators_issues_and_corrected(
    provider: str, fake: FakeLLMServer, planner_for: MakePlanner
) -> None:
    bad = json.loads(plan_text())
    bad["steps"][2]["args"] = {"a": "step:twice", "c": "step:six"}  # unknown argument, missing b
    fake.enqueue(bad, PLAN)

    plan, report = await planner_for(provider).plan_with_report("double n and add six", CONTEXT)

    assert plan.steps[2].args == {"a": "step:twice", "b": "step:six"}
    assert report.attempts == 2 and len(report.calls) == 2
    second = fake.requests[1]
    feedback = second.last_user_text
    assert "rejected by the validator" in feedback
    assert "step 'total' args.b: missing required argument 'b' for tool 'add'" in feedback
    assert "tool 'add' has no argument 'c'" in feedback
    assert any(m["role"] == "assistant" and '"c": "step:six"' in m["content"] for m in second.messages)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_hallucinated_tool_never_runs_and_planning_fails_after_the_last_attempt(
    provider: str, fake: FakeLLMServer, planner_for: MakePlanner, calls: Counter[str]
) -> None:
    bad = json.loads(plan_text())
    bad["steps"][1]["tool"] = "tripler"
    fake.enqueue(bad, bad, bad)
    planner = planner_for(provider, max_attempts=3)

    with pytest.raises(PlanningError) as caught:
        await planner.run("double n and add six", CONTEXT)

    error = caught.value
    assert error.attempts == 3 and len(fake.requests) == 3
    assert [issue.code for issue in error.issues] == ["unknown_tool"]
    assert "tripler" in error.last_output
    assert "unknown tool 'tripler'" in str(error)
    assert calls["double"] <= 1 and calls["add"] == 0  # only `twice`, valid on its own, may have started


async def test_a_hallucinated_tool_is_repaired_when_the_model_corrects_it(
    fake: FakeLLMServer, planner_for: MakePlanner, calls: Counter[str]
) -> None:
    bad = json.loads(plan_text())
    bad["steps"][1]["tool"] = "dubble"
    fake.enqueue(bad, PLAN)

    done = await planner_for("openai").run("double n and add six", CONTEXT)

    assert done.result.ok and done.result.output == 16
    assert "did you mean 'double'" in fake.requests[1].last_user_text
    assert calls["add"] == 1


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_rate_limit_is_waited_out_and_the_plan_arrives(
    provider: str, fake: FakeLLMServer, planner_for: MakePlanner
) -> None:
    fake.enqueue(Failure(429, retry_after=0.01), PLAN)
    plan = await planner_for(provider).generate_plan("double n and add six", CONTEXT)
    assert len(plan.steps) == 3 and len(fake.requests) == 2


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_persistent_server_error_is_a_clear_planning_error_after_bounded_retries(
    provider: str, fake: FakeLLMServer, planner_for: MakePlanner
) -> None:
    fake.default = Failure(500)
    planner = planner_for(provider, max_retries=1)

    with pytest.raises(PlanningError, match="HTTP 500") as caught:
        await planner.generate_plan("double n and add six", CONTEXT)

    assert caught.value.attempts == 1
    assert len(fake.requests) == 2  # the first attempt and the client's one retry, nothing more


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_model_that_does_not_answer_in_time_is_a_clear_planning_error(
    provider: str, fake: FakeLLMServer, planner_for: MakePlanner
) -> None:
    fake.enqueue(Reply(plan_text(), delay_s=2.0))
    planner = planner_for(provider, timeout_s=0.2, max_retries=0)

    with pytest.raises(PlanningError, match="timed out"):
        await planner.generate_plan("double n and add six", CONTEXT)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_stream_cut_mid_plan_is_asked_again_and_finished_steps_are_reused(
    provider: str, fake: FakeLLMServer, planner_for: MakePlanner, calls: Counter[str]
) -> None:
    text = json.dumps(PLAN)  # compact, as the fake sends Anthropic's tool input whatever it is given
    cut_at = text.index('"id": "total"')  # the first two steps are complete, the third is not
    fake.enqueue(Reply(text, cut_after=cut_at // fake.chunk_chars), PLAN)
    events: list[Event] = []

    done = await planner_for(provider).run("double n and add six", CONTEXT, on_event=events.append)

    assert done.result.ok and done.result.output == 16
    assert len(fake.requests) == 2 and fake.requests[1].stream is False
    assert calls == Counter({"double": 2, "add": 1})  # twice and six ran once each: reused, not rerun
    assert list(done.result.steps["twice"].modes) == ["reused"]
    assert any(isinstance(e, RunNote) and e.data["kind"] == "fallback" for e in events)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_streamed_steps_start_before_the_model_has_finished_writing_the_plan(
    provider: str, planner_for: MakePlanner, tools: ToolRegistry
) -> None:
    text = json.dumps(PLAN)
    first_step_done = text.index('"id": "six"')  # by then `twice` is complete and may start
    with GatedServer(hold_at=first_step_done, tokens_per_s=10_000) as server:
        server.enqueue(Reply(text))
        events: list[Any] = []

        def watch(event: Event) -> None:
            events.append(event)
            if isinstance(event, StepStarted) and event.step_id == "twice":
                server.release()

        done = await planner_for(provider, server=server).run("double n and add six", CONTEXT, on_event=watch)

    assert server.released_in_time, "the stream was held mid-plan and no step started"
    assert done.result.ok and done.result.output == 16
    kinds = [e.data["kind"] if isinstance(e, RunNote) else e.type for e in events]
    assert kinds.index("step_started") < kinds.index("planner_call")  # a step started before the answer ended
    complete = next(e for e in events if isinstance(e, RunNote) and e.data["kind"] == "plan_complete")
    assert "twice" in complete.data["started_before_complete"]


class GatedServer(FakeLLMServer):
    """A fake server that holds a stream once `hold_at` characters are out, until :meth:`release` (or 5 s)."""

    def __init__(self, *, hold_at: int, **options: Any) -> None:
        super().__init__(api_key="sk-test-key", **options)
        self._hold_after_pieces = hold_at // self.chunk_chars + 1
        self._pieces = 0
        import threading

        self._gate = threading.Event()
        self.released_in_time = False

    def release(self) -> None:
        self._gate.set()

    def _wait(self, seconds: float) -> None:
        # Called between streamed pieces (with tokens_per_s set): count them, and hold once at the gate.
        self._pieces += 1
        if self._pieces == self._hold_after_pieces:
            self.released_in_time = self._gate.wait(5.0)
        super()._wait(seconds)


FAILING = {
    "goal": "half of twice n",
    "inputs": {"n": {"type": "integer"}},
    "steps": [
        {"id": "twice", "tool": "double", "args": {"x": "input:n"}},
        {"id": "half", "tool": "divide", "args": {"a": "step:twice", "b": 0}},
    ],
    "output": "step:half",
}
FIXED = {
    **FAILING,
    "steps": [FAILING["steps"][0], {"id": "half", "tool": "divide", "args": {"a": "step:twice", "b": 2}}],
}


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_failing_step_is_replanned_and_finished_steps_are_reused_not_rerun(
    provider: str, fake: FakeLLMServer, planner_for: MakePlanner, calls: Counter[str]
) -> None:
    fake.enqueue(FAILING, FIXED)
    events: list[Event] = []

    done = await planner_for(provider).run("half of twice n", CONTEXT, on_event=events.append)

    assert done.result.ok and done.result.output == 5
    assert calls == Counter({"double": 1, "divide": 2})
    assert done.planning.replans == 1 and done.planning.reused_steps == ["twice"]
    assert [e.data["kind"] for e in events if isinstance(e, RunNote) and e.data["kind"].startswith("replan")] == [
        "replan",
        "replan_ready",
    ]
    assert "division by zero" in fake.requests[1].last_user_text


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_library_hit_makes_no_model_call(
    provider: str, fake: FakeLLMServer, planner_for: MakePlanner, settings: Settings
) -> None:
    fake.enqueue(PLAN)
    planner = planner_for(provider, library=PlanLibrary(settings=settings, seeds=(), embedder=None))
    await planner.generate_plan("double n and add six", CONTEXT)
    before = len(fake.requests)

    plan, report = await planner.plan_with_report("Double n and add six.", CONTEXT)

    assert len(fake.requests) == before == 1
    assert report.source == "library" and report.calls == [] and len(plan.steps) == 3

from __future__ import annotations

import asyncio
import threading
from typing import Any

import anyio
import pytest

from orchestrator.context import Usage, report_count, report_mode, report_usage
from orchestrator.errors import InputError, ToolError
from orchestrator.executor import (
    ConcurrencyLimits,
    Event,
    RetryPolicy,
    StepFailed,
    StepFinished,
    StepRetried,
    StepSkipped,
    StepStarted,
    execute_plan,
)
from orchestrator.registry import ToolRegistry

pytestmark = pytest.mark.anyio
FAST_RETRY = RetryPolicy(base_delay_s=0.001, max_delay_s=0.002)


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)

    def of(self, kind: type[Event]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


def plan(*steps: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"goal": "test", "steps": list(steps), **extra}


async def test_independent_steps_run_at_the_same_time() -> None:
    reg = ToolRegistry()
    started = {"a": anyio.Event(), "b": anyio.Event()}

    @reg.tool
    async def meet(me: str, other: str) -> str:
        """Wait until the other step has started too."""
        started[me].set()
        await started[other].wait()
        return me

    with anyio.fail_after(5):  # run one after the other, and this would never finish
        result = await execute_plan(
            plan(
                {"id": "a", "tool": "meet", "args": {"me": "a", "other": "b"}},
                {"id": "b", "tool": "meet", "args": {"me": "b", "other": "a"}},
            ),
            registry=reg,
        )
    assert result.status == "succeeded"


async def test_a_step_starts_as_soon_as_its_own_dependencies_finish_with_no_level_barrier() -> None:
    reg = ToolRegistry()
    fast_child_started = anyio.Event()

    @reg.tool
    async def slow() -> str:
        """Finish only after the fast branch's child has started."""
        await fast_child_started.wait()
        return "slow"

    @reg.tool
    async def fast() -> str:
        """Return at once."""
        return "fast"

    @reg.tool
    async def child(value: str) -> str:
        """Signal that it started."""
        if value == "fast":
            fast_child_started.set()
        return value

    with anyio.fail_after(5):
        result = await execute_plan(
            plan(
                {"id": "a", "tool": "slow"},
                {"id": "b", "tool": "fast"},
                {"id": "a2", "tool": "child", "args": {"value": "step:a"}},
                {"id": "b2", "tool": "child", "args": {"value": "step:b"}},
            ),
            registry=reg,
        )
    assert result.status == "succeeded"
    assert result.steps["b2"].finished_s < result.steps["a"].finished_s  # type: ignore[operator]


async def test_retryable_errors_are_retried_with_backoff_then_succeed() -> None:
    reg = ToolRegistry()
    calls: list[int] = []

    @reg.tool
    async def flaky() -> int:
        """Fail twice, then work."""
        calls.append(1)
        if len(calls) < 3:
            raise ToolError("busy", retryable=True)
        return len(calls)

    rec = Recorder()
    result = await execute_plan(
        plan({"id": "f", "tool": "flaky", "retries": 2}), registry=reg, on_event=rec, retry=FAST_RETRY
    )
    assert result.steps["f"].status == "succeeded"
    assert result.steps["f"].attempts == 3 and result.steps["f"].output == 3
    assert [e.attempt for e in rec.of(StepRetried)] == [1, 2]


async def test_retries_are_bounded_and_non_retryable_errors_fail_at_once() -> None:
    reg = ToolRegistry()
    counts = {"busy": 0, "bad": 0}

    @reg.tool
    async def always(kind: str) -> None:
        """Always fail."""
        counts[kind] += 1
        raise ToolError(kind, retryable=kind == "busy")

    result = await execute_plan(
        plan(
            {"id": "busy", "tool": "always", "args": {"kind": "busy"}, "retries": 3},
            {"id": "bad", "tool": "always", "args": {"kind": "bad"}, "retries": 3},
        ),
        registry=reg,
        retry=FAST_RETRY,
    )
    assert counts == {"busy": 4, "bad": 1}
    assert result.steps["busy"].status == result.steps["bad"].status == "failed"
    assert result.steps["busy"].error == "busy"


async def test_a_step_that_runs_past_its_timeout_fails_and_is_retried() -> None:
    reg = ToolRegistry()
    attempts: list[int] = []

    @reg.tool
    async def hang() -> None:
        """Never finish."""
        attempts.append(1)
        await anyio.sleep_forever()

    rec = Recorder()
    with anyio.fail_after(5):
        result = await execute_plan(
            plan({"id": "h", "tool": "hang", "timeout_s": 0.05, "retries": 1}),
            registry=reg,
            on_event=rec,
            retry=FAST_RETRY,
        )
    step = result.steps["h"]
    assert step.status == "failed" and step.error_type == "ToolTimeout"
    assert "timed out after 0.05s" in (step.error or "")
    assert len(attempts) == 2 and len(rec.of(StepRetried)) == 1


async def test_a_failed_step_skips_its_dependents_while_independent_branches_finish() -> None:
    reg = ToolRegistry()

    @reg.tool
    async def ok(x: int = 0) -> int:
        """Succeed."""
        return x + 1

    @reg.tool
    async def boom() -> int:
        """Fail."""
        raise ValueError("exploded")

    rec = Recorder()
    result = await execute_plan(
        plan(
            {"id": "bad", "tool": "boom"},
            {"id": "child", "tool": "ok", "args": {"x": "step:bad"}},
            {"id": "grandchild", "tool": "ok", "args": {"x": "step:child"}},
            {"id": "other", "tool": "ok"},
            {"id": "other2", "tool": "ok", "args": {"x": "step:other"}},
            output={"o": "step:other2"},
        ),
        registry=reg,
        on_event=rec,
    )
    assert result.status == "partial"
    assert result.steps["bad"].status == "failed" and result.steps["bad"].error == "exploded"
    assert result.steps["child"].status == "skipped" and result.steps["child"].error == "dependency 'bad' failed"
    assert result.steps["grandchild"].error == "dependency 'child' skipped"
    assert result.steps["other2"].output == 2 and result.output == {"o": 2}
    assert {e.step_id for e in rec.of(StepSkipped)} == {"child", "grandchild"}
    assert {e.step_id for e in rec.of(StepStarted)} == {"bad", "other", "other2"}


async def test_on_error_fail_stops_the_run_and_cancels_running_steps() -> None:
    reg = ToolRegistry()
    cancelled = anyio.Event()
    running = anyio.Event()

    @reg.tool
    async def long() -> None:
        """Run until cancelled."""
        running.set()
        try:
            await anyio.sleep_forever()
        except BaseException:
            cancelled.set()
            raise

    @reg.tool
    async def fail_later() -> None:
        """Fail once the long step is running."""
        await running.wait()
        raise ToolError("fatal")

    @reg.tool
    async def after() -> None:
        """Never reached."""

    before = asyncio.all_tasks()
    with anyio.fail_after(5):
        result = await execute_plan(
            plan(
                {"id": "long", "tool": "long"},
                {"id": "f", "tool": "fail_later", "on_error": "fail"},
                {"id": "next", "tool": "after", "depends_on": ["long"]},
            ),
            registry=reg,
        )
    assert cancelled.is_set()
    assert result.status == "failed" and "step 'f' failed: fatal" in (result.error or "")
    assert result.steps["long"].status == "cancelled"
    assert result.steps["next"].status == "skipped"
    assert asyncio.all_tasks() <= before


async def test_cancelling_the_run_cancels_every_running_step_and_leaves_nothing_behind() -> None:
    reg = ToolRegistry()
    both_running = [anyio.Event(), anyio.Event()]
    unwound: list[int] = []

    @reg.tool
    async def block(i: int) -> None:
        """Block until cancelled."""
        both_running[i].set()
        try:
            await anyio.sleep_forever()
        finally:
            unwound.append(i)

    before = asyncio.all_tasks()
    task = asyncio.create_task(
        execute_plan(
            plan({"id": "a", "tool": "block", "args": {"i": 0}}, {"id": "b", "tool": "block", "args": {"i": 1}}),
            registry=reg,
        )
    )
    with anyio.fail_after(5):
        for e in both_running:
            await e.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert sorted(unwound) == [0, 1]
    assert asyncio.all_tasks() <= before


async def test_for_each_maps_in_parallel_and_keeps_input_order() -> None:
    reg = ToolRegistry()
    gate = anyio.Event()
    started: list[str] = []

    @reg.tool
    def split(text: str) -> list[dict[str, str]]:
        """Split words."""
        return [{"word": w} for w in text.split()]

    @reg.tool
    async def shout(word: str) -> str:
        """Upper-case, once every element has started."""
        started.append(word)
        if len(started) == 3:
            gate.set()
        await gate.wait()
        return word.upper()

    with anyio.fail_after(5):
        result = await execute_plan(
            plan(
                {"id": "s", "tool": "split", "args": {"text": "input:text"}},
                {"id": "up", "tool": "shout", "for_each": "step:s", "args": {"word": "item:word"}},
                inputs={"text": {"type": "string"}},
                output="step:up",
            ),
            {"text": "a bb ccc"},
            registry=reg,
        )
    assert result.output == ["A", "BB", "CCC"]


async def test_for_each_element_failure_fails_the_step_naming_the_element() -> None:
    reg = ToolRegistry()

    @reg.tool
    async def inv(x: float) -> float:
        """Invert."""
        if x == 0:
            raise ToolError("division by zero")
        return 1 / x

    result = await execute_plan(
        plan({"id": "i", "tool": "inv", "for_each": [1, 0, 2], "args": {"x": "item"}}), registry=reg
    )
    assert result.steps["i"].status == "failed"
    assert result.steps["i"].error == "item 1: division by zero"


async def test_concurrency_limits_per_tool_and_kind_are_respected() -> None:
    reg = ToolRegistry()
    live = {"now": 0, "max": 0}

    @reg.tool(kind="small_model")
    async def model(x: int) -> int:
        """Count concurrent calls."""
        live["now"] += 1
        live["max"] = max(live["max"], live["now"])
        await anyio.sleep(0.001)
        live["now"] -= 1
        return x

    p = plan({"id": "m", "tool": "model", "for_each": list(range(20)), "args": {"x": "item"}})
    await execute_plan(p, registry=reg, limits=ConcurrencyLimits(per_kind={"small_model": 3}))
    assert live["max"] == 3
    live["max"] = 0
    await execute_plan(p, registry=reg, limits=ConcurrencyLimits(per_kind={}, per_tool={"model": 2}))
    assert live["max"] == 2


async def test_sync_tools_run_off_the_event_loop() -> None:
    reg = ToolRegistry()
    released = threading.Event()

    @reg.tool
    def blocking() -> str:
        """Block a thread until the async step releases it."""
        if not released.wait(timeout=5):
            raise ToolError("never released")
        return "done"

    @reg.tool
    async def release() -> None:
        """Release the blocking tool."""
        released.set()

    result = await execute_plan(plan({"id": "b", "tool": "blocking"}, {"id": "r", "tool": "release"}), registry=reg)
    assert result.steps["b"].output == "done"


async def test_worker_mode_usage_and_counts_reach_events_and_results() -> None:
    reg = ToolRegistry()

    @reg.tool(kind="small_model")
    def classify(text: str) -> str:
        """Pretend to call a model."""
        report_mode("ollama:phi3")
        report_usage(Usage(calls=1, input_tokens=10, output_tokens=2, cost_usd=0.001))
        report_count("tier:llm")
        return "ok"

    rec = Recorder()
    result = await execute_plan(
        plan({"id": "c", "tool": "classify", "for_each": ["a", "b"], "args": {"text": "item"}}),
        registry=reg,
        on_event=rec,
    )
    step = result.steps["c"]
    assert step.modes == ("ollama:phi3",) and step.counts == {"tier:llm": 2}
    assert step.usage == Usage(calls=2, input_tokens=20, output_tokens=4, cost_usd=0.002)
    assert result.usage.calls == 2
    [finished] = rec.of(StepFinished)
    assert finished.modes == ("ollama:phi3",) and finished.items == 2


async def test_inputs_are_checked_before_anything_runs() -> None:
    reg = ToolRegistry()

    @reg.tool
    async def echo(x: str) -> str:
        """Echo."""
        return x

    p = plan({"id": "e", "tool": "echo", "args": {"x": "input:x"}}, inputs={"x": {"type": "string"}})
    with pytest.raises(InputError, match="missing input 'x'"):
        await execute_plan(p, registry=reg)
    with pytest.raises(InputError, match="undeclared input y"):
        await execute_plan(p, {"x": "1", "y": "2"}, registry=reg)


async def test_completed_steps_are_reused_and_not_run_again() -> None:
    reg = ToolRegistry()
    ran: list[str] = []

    @reg.tool
    async def mark(name: str, before: int = 0) -> int:
        """Record the call."""
        ran.append(name)
        return before + 1

    rec = Recorder()
    result = await execute_plan(
        plan(
            {"id": "a", "tool": "mark", "args": {"name": "a"}},
            {"id": "b", "tool": "mark", "args": {"name": "b", "before": "step:a"}},
        ),
        registry=reg,
        completed={"a": 41},
        on_event=rec,
    )
    assert ran == ["b"] and result.steps["b"].output == 42
    assert result.steps["a"].modes == ("reused",)
    assert not rec.of(StepFailed)

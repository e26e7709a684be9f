from __future__ import annotations

import asyncio
from typing import Any

import anyio
import pytest

from orchestrator.errors import PlanValidationError
from orchestrator.executor import Event, StepStarted
from orchestrator.executor.streaming import StreamingRun
from orchestrator.registry import ToolRegistry

pytestmark = pytest.mark.anyio


def make_registry() -> tuple[ToolRegistry, dict[str, anyio.Event]]:
    reg = ToolRegistry()
    started: dict[str, anyio.Event] = {}

    @reg.tool(read_only=True)
    async def echo(value: Any = None, tag: str = "") -> Any:
        """Echo the value, signalling that the step started."""
        started.setdefault(tag, anyio.Event()).set()
        return value

    return reg, started


STEPS = [
    {"id": "a", "tool": "echo", "args": {"value": "input:x", "tag": "a"}},
    {"id": "b", "tool": "echo", "args": {"value": "step:a", "tag": "b"}},
    {"id": "c", "tool": "echo", "args": {"value": "{{step:b}}!", "tag": "c"}},
]


async def test_a_step_starts_before_the_rest_of_the_plan_has_arrived() -> None:
    reg, started = make_registry()
    events: list[Event] = []
    with anyio.fail_after(5):
        async with StreamingRun(reg, {"x": "hi"}, on_event=events.append) as run:
            run.add_step(STEPS[0])
            started.setdefault("a", anyio.Event())
            await started["a"].wait()  # a runs while b and c are not written yet
            assert not any(isinstance(e, StepStarted) and e.step_id == "b" for e in events)
            run.add_step(STEPS[1])
            run.add_step(STEPS[2])
            result = await run.finish(
                {"goal": "g", "inputs": {"x": {"type": "string"}}, "steps": STEPS, "output": "step:c"}
            )
    assert result.status == "succeeded" and result.output == "hi!"


async def test_a_step_referring_to_a_later_step_waits_for_the_whole_plan() -> None:
    reg, _ = make_registry()
    steps = [
        {"id": "late", "tool": "echo", "args": {"value": "step:early"}},
        {"id": "early", "tool": "echo", "args": {"value": 1}},
    ]
    async with StreamingRun(reg) as run:
        for step in steps:
            run.add_step(step)
        result = await run.finish({"steps": steps, "output": "step:late"})
    assert result.output == 1


async def test_an_invalid_step_is_refused_when_it_arrives() -> None:
    reg, _ = make_registry()
    async with StreamingRun(reg) as run:
        with pytest.raises(PlanValidationError, match="unknown tool 'ecco'"):
            run.add_step({"id": "a", "tool": "ecco"})
        result = await run.abort("planner gave up")
    assert result.status == "failed"


async def test_a_dangling_reference_found_at_the_end_stops_the_run_cleanly() -> None:
    reg = ToolRegistry()
    running = anyio.Event()
    cancelled = anyio.Event()

    @reg.tool(read_only=True)
    async def forever() -> None:
        """Run until cancelled."""
        running.set()
        try:
            await anyio.sleep_forever()
        finally:
            cancelled.set()

    @reg.tool(read_only=True)
    async def echo(value: Any = None) -> Any:
        """Echo."""
        return value

    steps = [{"id": "f", "tool": "forever"}, {"id": "d", "tool": "echo", "args": {"value": "step:ghost"}}]
    before = asyncio.all_tasks()
    with anyio.fail_after(5):
        async with StreamingRun(reg) as run:
            run.add_step(steps[0])
            run.add_step(steps[1])
            await running.wait()
            with pytest.raises(PlanValidationError, match="unknown step 'ghost'"):
                await run.finish({"steps": steps})
    assert cancelled.is_set()
    assert asyncio.all_tasks() <= before


async def test_a_cycle_found_at_the_end_stops_the_run() -> None:
    reg, _ = make_registry()
    steps = [
        {"id": "a", "tool": "echo", "args": {"value": "step:b"}},
        {"id": "b", "tool": "echo", "args": {"value": "step:a"}},
    ]
    async with StreamingRun(reg) as run:
        for step in steps:
            run.add_step(step)
        with pytest.raises(PlanValidationError, match="cycle"):
            await run.finish({"steps": steps})


async def test_a_final_plan_that_differs_from_what_was_streamed_is_refused() -> None:
    reg, _ = make_registry()
    async with StreamingRun(reg) as run:
        run.add_step({"id": "a", "tool": "echo", "args": {"value": 1}})
        with pytest.raises(PlanValidationError, match="streamed and started"):
            await run.finish({"steps": [{"id": "a", "tool": "echo", "args": {"value": 2}}]})


async def test_a_step_that_is_not_read_only_is_held_until_the_whole_plan_validates() -> None:
    reg, started = make_registry()
    wrote: list[Any] = []

    @reg.tool  # not annotated: assumed to write
    def write(value: Any = None) -> Any:
        """Write the value somewhere."""
        wrote.append(value)
        return value

    steps = [
        {"id": "a", "tool": "echo", "args": {"value": 1, "tag": "a"}},
        {"id": "w", "tool": "write", "args": {"value": "step:a"}},
        {"id": "after", "tool": "echo", "args": {"value": "step:w", "tag": "after"}},
    ]
    with anyio.fail_after(5):
        async with StreamingRun(reg) as run:
            assert run.add_step(steps[0]) == "scheduled"
            assert run.add_step(steps[1]) == "held"
            assert run.add_step(steps[2]) == "waiting"  # it needs the held step
            await started.setdefault("a", anyio.Event()).wait()
            await anyio.sleep(0.05)
            assert wrote == [] and "after" not in started and run.held_steps == ["w"]
            result = await run.finish({"steps": steps, "output": "step:after"})
    assert result.ok and result.output == 1 and wrote == [1]


async def test_a_held_step_never_runs_when_the_plan_is_abandoned() -> None:
    reg, _ = make_registry()
    wrote: list[Any] = []

    @reg.tool
    def write(value: Any = None) -> Any:
        """Write the value somewhere."""
        wrote.append(value)
        return value

    async with StreamingRun(reg) as run:
        run.add_step({"id": "a", "tool": "echo", "args": {"value": 1}})
        run.add_step({"id": "w", "tool": "write", "args": {"value": "step:a"}})
        result = await run.abort("the answer was invalid")
    assert wrote == [] and "w" not in result.steps

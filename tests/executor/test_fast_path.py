"""execute_plan's fast path (plan.fast + executor.fast) gives exactly what the general path gives.

The general path is taken by handing execute_plan a compiled plan (validate_plan's), which the fast path
never takes; the fast one by handing it the plan's dict. Random plans, valid and not, run both ways.
"""

from __future__ import annotations

import asyncio
import contextvars
from typing import Annotated, Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import Field
from typing_extensions import TypedDict

from orchestrator.bench.scheduler import chain, fanout, layered, real_plan, real_registry
from orchestrator.context import report_mode
from orchestrator.errors import PlanValidationError, ToolError
from orchestrator.executor import ConcurrencyLimits, RunResult, execute_plan
from orchestrator.executor.fast import INLINE
from orchestrator.executor.fast import stats as fast_stats
from orchestrator.plan.fast import compile_fast
from orchestrator.plan.validate import check_plan, validate_plan
from orchestrator.registry import ToolRegistry


class Reading(TypedDict):
    value: int
    n: int


def registry() -> ToolRegistry:
    reg = ToolRegistry()

    @reg.tool
    async def combine(n: int, values: list[int]) -> Reading:
        """Add up; fail on a multiple of 7."""
        if n % 7 == 6:
            raise ToolError(f"no sevens ({n})")
        if n % 5 == 4:
            report_mode("keyword")
        return {"value": sum(values) + n, "n": n}

    @reg.tool
    async def loose(n: int, values: list[Any] | None = None) -> dict[str, Any]:
        """Untyped output: `value` is there only for even n (a missing field fails at run time)."""
        return {"value": n} if n % 2 == 0 else {"other": n}

    @reg.tool
    async def strict(n: Annotated[int, Field(ge=0)], label: str = "x") -> Reading:
        """A constrained argument: no type guard, Pydantic checks every call."""
        return {"value": n, "n": len(label)}

    @reg.tool
    def blocking(n: int) -> int:
        """A synchronous tool (runs in a thread)."""
        return n * 2

    return reg


def outcome(result: RunResult) -> Any:
    """Everything a run returns except its id and timings."""
    steps = {
        sid: (s.tool, s.kind, s.status, s.output, s.error, s.error_type, s.attempts, s.modes, s.usage, dict(s.counts))
        for sid, s in result.steps.items()
    }
    return result.status, result.goal, result.output, result.error, result.usage, list(steps.items())


async def both(plan: dict[str, Any], reg: ToolRegistry) -> tuple[Any, Any, bool]:
    """(fast outcome, general outcome, whether the fast path ran); an outcome is a run's, or its issues."""
    before = fast_stats.runs
    try:
        fast: Any = outcome(await execute_plan(plan, registry=reg))
    except PlanValidationError as exc:
        fast = [issue.model_dump() for issue in exc.issues]
    took = fast_stats.runs > before
    try:
        general: Any = outcome(await execute_plan(validate_plan(plan, reg), registry=reg))
    except PlanValidationError as exc:
        general = [issue.model_dump() for issue in exc.issues]
    assert fast_stats.runs == before + took  # the compiled plan went the general way
    return fast, general, took


# --- the benchmark's plans ------------------------------------------------------------------------------


@pytest.mark.parametrize("deps", [chain(60), fanout(40), layered(6, 8)], ids=["chain", "fanout", "layered"])
def test_benchmark_shaped_plans_take_the_fast_path_and_agree(deps: dict[str, list[str]]) -> None:
    plan = real_plan(deps)
    fast, general, took = asyncio.run(both(plan, real_registry()))
    assert took
    assert fast == general
    assert fast[0] == "succeeded"


# --- random plans, valid and not ------------------------------------------------------------------------

TOOLS = ["combine", "combine", "combine", "loose", "strict", "blocking"]
GOOD_FIELDS = {"combine": [".value", ".n"], "strict": [".value", ".n"], "loose": [".value"], "blocking": [""]}
ODD_FIELDS = ["", ".missing", "[0]", ".value.x", ".n"]
ODD_LITERALS = st.sampled_from([-1, True, "4", 2.5, 2**70, float("nan"), None, "step:", "step", "input", "a\x00b"])


@st.composite
def plans(draw: st.DrawFn) -> dict[str, Any]:
    """Plans the fast path takes (about half), plans only the general path takes, and invalid ones: each
    plan is either tidy or has a few odd things about it (an unknown tool, a bad literal or path, a cycle,
    a duplicate id, a retry, a bad description, an unknown argument, a mixed list, a bad output)."""
    n = draw(st.integers(1, 9))
    odd = draw(st.booleans())

    def oddly() -> bool:
        return odd and draw(st.integers(0, 6)) == 0

    ids = [f"s{i}" for i in range(n)]
    if oddly() and n > 1:
        ids[draw(st.integers(1, n - 1))] = ids[0]
    tools = [draw(st.sampled_from(TOOLS)) for _ in range(n)]
    steps: list[dict[str, Any]] = []
    for i in range(n):
        tool = "nope" if oddly() else tools[i]
        # earlier steps (a DAG in plan order); when odd, now and then any step (a cycle, a forward reference)
        top = n - 1 if oddly() else i - 1
        parents = draw(st.lists(st.integers(0, top), max_size=3)) if top >= 0 else []
        refs = [
            f"step:{ids[p]}{draw(st.sampled_from(ODD_FIELDS if oddly() else GOOD_FIELDS[tools[p]]))}" for p in parents
        ]
        args: dict[str, Any] = {"n": draw(ODD_LITERALS) if oddly() else draw(st.integers(0, 30))}
        if tool in ("combine", "loose"):
            args["values"] = refs if refs or not oddly() else [draw(st.integers(0, 3))]
        elif refs and tool == "strict":
            args["n"] = refs[0]
        step: dict[str, Any] = {"id": ids[i], "tool": tool, "args": args}
        if i and draw(st.integers(0, 4)) == 0:
            step["depends_on"] = [ids[draw(st.integers(0, i - 1))]]
        if draw(st.integers(0, 4)) == 0:
            step["description"] = "a step"
        if oddly():
            extra = draw(st.integers(0, 4))
            if extra == 0:
                step["retries"] = 1
            elif extra == 1:
                step["description"] = draw(st.sampled_from(["bad \x00", "\ud800", 3]))
            elif extra == 2:
                args["extra"] = 1
            elif extra == 3:
                args["values"] = [1, f"step:{ids[0]}.value"]
            else:
                step["depends_on"] = [ids[draw(st.integers(0, n - 1))]]
        steps.append(step)
    plan: dict[str, Any] = {"goal": "random", "steps": steps}
    if draw(st.booleans()):
        outputs = [f"step:{ids[-1]}", f"step:{ids[0]}.value"] + (["step:zz", "input:x", "{{step:s0}}"] if odd else [])
        plan["output"] = draw(st.sampled_from(outputs))
    return plan


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=plans())
def test_random_plans_give_the_same_result_or_the_same_issues_either_way(plan: dict[str, Any]) -> None:
    reg = registry()
    fast, general, took = asyncio.run(both(plan, reg))
    assert fast == general
    compiled = compile_fast(plan, reg)
    if compiled is not None:  # the fast validator accepts only what the full one accepts
        assert check_plan(plan, reg)[1] == []
        assert took


# --- what takes the fast path, and what does not ------------------------------------------------------------


def small_plan(**step: Any) -> dict[str, Any]:
    first = {"id": "a", "tool": "combine", "args": {"n": 1, "values": []}}
    return {"steps": [first, {"id": "b", "tool": "combine", "args": {"n": 2, "values": ["step:a.value"]}, **step}]}


@pytest.mark.parametrize(
    "plan",
    [
        small_plan(retries=1),
        small_plan(timeout_s=5),
        small_plan(on_error="fail"),
        small_plan(for_each=[1, 2]),
        small_plan(args={"n": 2, "values": ["{{step:a.value}}"]}),
        small_plan(args={"n": 2, "values": ["step:a.value", 3]}),
        {
            "inputs": {"x": {"type": "integer", "default": 3}},
            "steps": [{"id": "a", "tool": "strict", "args": {"n": "input:x"}}],
        },
        {"steps": [{"id": "a", "tool": "loose", "args": {"n": 1, "values": [{"nested": [1]}]}}]},
        {"steps": [{"id": "a", "tool": "loose", "args": {"n": 1, "values": ["step"]}}]},
        {"steps": [{"id": "a", "tool": "strict", "args": {"n": 1, "label": "input"}}]},
        small_plan(args={"n": 2, "values": ["step:a." + "v" * 100_000]}),
        small_plan(args={"n": 2, "values": ["step:a.value", "step:a." + "v" * 100_000]}),
    ],
    ids=[
        "retries",
        "timeout",
        "on_error",
        "for_each",
        "template",
        "mixed list",
        "input",
        "nested literal",
        "malformed reference",
        "malformed input",
        "long reference",
        "long reference in a list",
    ],  # fmt: skip
)
def test_unusual_plans_take_the_general_path(plan: dict[str, Any]) -> None:
    reg = registry()
    assert compile_fast(plan, reg) is None
    fast, general, took = asyncio.run(both(plan, reg))
    assert fast == general and not took


@pytest.mark.parametrize(
    ("value", "converted"),
    [(3, True), (True, True), ("4", True), (2.0, True), (2.5, False), (None, False), ([1], False)],
    ids=repr,
)
def test_a_list_argument_given_outputs_of_other_types_at_run_time_agrees(value: Any, converted: bool) -> None:
    """An untyped output's field, read into a list[int] argument: exact ints pass the inline check of the
    list guard, anything else goes through Pydantic (converted or refused), on both paths alike."""
    reg = registry()

    @reg.tool
    async def untyped(n: int) -> dict[str, Any]:
        """Give `value`, whatever it is."""
        return {"value": value}

    steps = [
        {"id": "a", "tool": "untyped", "args": {"n": 1}},
        {"id": "b", "tool": "combine", "args": {"n": 1, "values": ["step:a.value", "step:a.value"]}},
    ]
    plan = {"goal": "types at run time", "steps": steps, "output": "step:b"}
    fast, general, took = asyncio.run(both(plan, reg))
    assert took and fast == general
    assert fast[0] == ("succeeded" if converted else "partial")  # Pydantic's lax mode, or its error


def test_a_listener_a_limit_or_resumed_steps_take_the_general_path() -> None:
    reg = registry()
    plan = small_plan()
    events: list[Any] = []

    async def run_all() -> None:
        await execute_plan(plan, registry=reg, on_event=events.append)
        await execute_plan(plan, registry=reg, limits=ConcurrencyLimits(per_tool={"combine": 1}))
        await execute_plan(plan, registry=reg, completed={"a": {"value": 1, "n": 1}})

    before = fast_stats.runs
    asyncio.run(run_all())
    assert fast_stats.runs == before
    assert events  # the events were sent
    asyncio.run(execute_plan(plan, registry=reg))
    assert fast_stats.runs == before + 1


# --- running -----------------------------------------------------------------------------------------------


def test_a_chain_runs_at_most_inline_plus_one_steps_per_task_so_the_loop_gets_its_turn() -> None:
    reg = ToolRegistry()
    tasks: list[asyncio.Task[Any] | None] = []

    @reg.tool
    async def combine(n: int, values: list[int]) -> Reading:
        """Note the task running this step."""
        tasks.append(asyncio.current_task())
        return {"value": n, "n": n}

    n = 100
    result = asyncio.run(execute_plan(real_plan(chain(n)), registry=reg))
    assert result.ok and len(tasks) == n
    runs = [len(list(group)) for group in _runs(tasks)]
    assert max(runs) == INLINE + 1  # continued in one task, then a new task
    assert len(runs) == -(-n // (INLINE + 1))


def _runs(items: list[Any]) -> list[list[Any]]:
    groups: list[list[Any]] = []
    for item in items:
        if groups and groups[-1][-1] is item:
            groups[-1].append(item)
        else:
            groups.append([item])
    return groups


def test_a_context_variable_a_step_sets_reaches_its_dependents_not_its_siblings() -> None:
    """What tasks give: a dependent sees its parent's context; parallel branches do not see each other's."""
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="")
    reg = ToolRegistry()

    @reg.tool
    async def mark(n: int, values: list[str]) -> dict[str, str]:
        """Set the variable, after reading it."""
        seen = var.get()
        var.set(f"{seen}/{n}")
        await asyncio.sleep(0)
        return {"value": seen}

    steps = [
        {"id": "root", "tool": "mark", "args": {"n": 0, "values": []}},
        *({"id": f"b{i}", "tool": "mark", "args": {"n": i, "values": ["step:root.value"]}} for i in range(1, 4)),
        *({"id": f"c{i}", "tool": "mark", "args": {"n": 10 + i, "values": [f"step:b{i}.value"]}} for i in range(1, 4)),
    ]
    plan = {"steps": steps}
    fast, general, took = asyncio.run(both(plan, reg))
    assert took and fast == general
    result = asyncio.run(execute_plan(plan, registry=reg))
    assert {sid: s.output for sid, s in result.steps.items()} == {
        "root": {"value": ""},
        "b1": {"value": "/0"},
        "b2": {"value": "/0"},
        "b3": {"value": "/0"},
        "c1": {"value": "/0/1"},
        "c2": {"value": "/0/2"},
        "c3": {"value": "/0/3"},
    }


def test_cancelling_the_run_cancels_every_step_and_leaves_nothing_running() -> None:
    reg = ToolRegistry()
    started = 0

    @reg.tool
    async def combine(n: int, values: list[int]) -> Reading:
        """Wait a long time (all but the source)."""
        nonlocal started
        if n > 0:
            started += 1
            await asyncio.sleep(60)
        return {"value": n, "n": n}

    async def main() -> set[asyncio.Task[Any]]:
        before = asyncio.all_tasks()
        run = asyncio.ensure_future(execute_plan(real_plan(fanout(20)), registry=reg))
        while started < 20:
            await asyncio.sleep(0.01)
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
        return asyncio.all_tasks() - before - {asyncio.current_task()}  # type: ignore[operator]

    assert asyncio.run(asyncio.wait_for(main(), 30)) == set()


def test_a_model_written_plans_bounds_leave_it_to_the_general_path() -> None:
    from orchestrator.plan.limits import Limits, ModelPlanLimits

    plan = small_plan()
    assert compile_fast(plan, registry()) is not None
    assert compile_fast(plan, registry(), limits=ModelPlanLimits()) is None
    assert compile_fast(plan, registry(), limits=Limits(max_model_calls=5)) is None

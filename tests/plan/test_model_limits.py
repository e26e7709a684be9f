"""A plan a model wrote is held to its own, tighter limits; each refusal names the limit and its setting."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from orchestrator.executor import execute_plan
from orchestrator.plan import check_plan, validate_plan
from orchestrator.plan.limits import ModelPlanLimits
from orchestrator.registry import ToolRegistry
from orchestrator.settings import Settings

pytestmark = pytest.mark.anyio


@pytest.fixture
def calls() -> Counter[str]:
    return Counter()


@pytest.fixture
def tools(calls: Counter[str]) -> ToolRegistry:
    registry = ToolRegistry()

    @registry.tool
    async def count(n: int) -> list[int]:
        """A list of n numbers."""
        calls["count"] += 1
        return list(range(n))

    @registry.tool
    async def square(x: int) -> int:
        """Square."""
        calls["square"] += 1
        return x * x

    @registry.tool(kind="small_model")
    async def label(text: str) -> str:
        """A small model's label."""
        calls["label"] += 1
        return "ok"

    return registry


def steps(n: int, tool: str = "square") -> dict[str, Any]:
    key = "x" if tool == "square" else "text"
    return {"steps": [{"id": f"s{i}", "tool": tool, "args": {key: i if tool == "square" else "t"}} for i in range(n)]}


def test_a_model_plan_over_the_step_limit_is_refused_naming_the_setting(tools: ToolRegistry) -> None:
    plan = steps(201)
    assert check_plan(plan, tools)[0] is not None  # a plan file may have that many
    compiled, [issue] = check_plan(plan, tools, limits=ModelPlanLimits())
    assert compiled is None and issue.code == "too_large"
    assert "201 steps" in issue.message and "at most 200" in issue.message and "MODEL_PLAN_MAX_STEPS" in issue.message


def test_model_using_steps_are_bounded(tools: ToolRegistry) -> None:
    compiled, [issue] = check_plan(steps(21, "label"), tools, limits=ModelPlanLimits())
    assert compiled is None and issue.code == "too_many_model_steps"
    assert "21 steps use a model" in issue.message and "MODEL_PLAN_MAX_MODEL_STEPS" in issue.message
    assert check_plan(steps(20, "label"), tools, limits=ModelPlanLimits())[0] is not None


def test_a_literal_fan_out_is_bounded_per_step_and_per_run(tools: ToolRegistry) -> None:
    limits = ModelPlanLimits(max_for_each=5, max_for_each_total=8)
    wide = {"steps": [{"id": "w", "tool": "square", "for_each": list(range(6)), "args": {"x": "item"}}]}
    _, [issue] = check_plan(wide, tools, limits=limits)
    assert (issue.code, issue.step_id, issue.field) == ("too_large", "w", "for_each")
    assert "MODEL_PLAN_MAX_FOR_EACH " in issue.message + " "
    two = {
        "steps": [
            {"id": f"w{i}", "tool": "square", "for_each": list(range(5)), "args": {"x": "item"}} for i in range(2)
        ]
    }
    _, [issue] = check_plan(two, tools, limits=limits)
    assert "10 elements in all" in issue.message and "MODEL_PLAN_MAX_FOR_EACH_TOTAL" in issue.message


async def test_a_fan_out_known_only_at_run_time_is_refused_before_any_element_runs(
    tools: ToolRegistry, calls: Counter[str]
) -> None:
    plan = {
        "steps": [
            {"id": "list", "tool": "count", "args": {"n": 7}},
            {"id": "each", "tool": "square", "for_each": "step:list", "args": {"x": "item"}},
            {"id": "other", "tool": "square", "args": {"x": 2}},
        ]
    }
    compiled = validate_plan(plan, tools, limits=ModelPlanLimits(max_for_each=5))
    result = await execute_plan(compiled, registry=tools)
    each = result.steps["each"]
    assert each.status == "failed" and "for_each over 7 elements" in (each.error or "")
    assert "MODEL_PLAN_MAX_FOR_EACH" in (each.error or "")
    assert calls["square"] == 1  # only the independent step: no element of the refused fan-out ran
    assert result.steps["other"].status == "succeeded"


async def test_model_calls_in_a_run_are_bounded(tools: ToolRegistry, calls: Counter[str]) -> None:
    plan = {
        "steps": [
            {"id": "list", "tool": "count", "args": {"n": 3}},
            {"id": "each", "tool": "label", "for_each": "step:list", "args": {"text": "{{item}}"}},
            {"id": "one", "tool": "label", "args": {"text": "x"}, "depends_on": ["each"]},
        ]
    }
    compiled = validate_plan(plan, tools, limits=ModelPlanLimits(max_model_calls=3))
    result = await execute_plan(compiled, registry=tools)
    assert result.steps["each"].status == "succeeded"
    assert result.steps["one"].status == "failed" and "MODEL_PLAN_MAX_MODEL_CALLS" in (result.steps["one"].error or "")
    assert calls["label"] == 3
    # A plan file is not bounded this way.
    calls.clear()
    assert (await execute_plan(plan, registry=tools)).ok and calls["label"] == 4


def test_the_limits_come_from_the_settings() -> None:
    settings = Settings.from_env(
        {"MODEL_PLAN_MAX_STEPS": "7", "MODEL_PLAN_MAX_MODEL_CALLS": "9", "MODEL_PLAN_MAX_FOR_EACH": "3"}, dotenv=None
    )
    limits = ModelPlanLimits.from_settings(settings)
    assert (limits.max_steps, limits.max_model_calls, limits.max_for_each) == (7, 9, 3)
    assert ModelPlanLimits.from_settings(Settings.from_env({}, dotenv=None)) == ModelPlanLimits()

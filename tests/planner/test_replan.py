"""Which finished steps a revised plan may reuse."""

from __future__ import annotations

import json
from typing import Any

import pytest

from orchestrator.executor import execute_plan
from orchestrator.plan.model import Plan
from orchestrator.plan.validate import validate_plan
from orchestrator.planner import reusable_outputs
from orchestrator.registry import ToolRegistry

from .conftest import CONTEXT, PLAN

pytestmark = pytest.mark.anyio


def revise(change: dict[str, Any]) -> dict[str, Any]:
    plan = json.loads(json.dumps(PLAN))
    for step in plan["steps"]:
        if step["id"] in change:
            step.update(change[step["id"]])
    return plan


@pytest.mark.parametrize(
    ("change", "reused"),
    [
        ({}, ["twice", "six", "total"]),
        ({"six": {"args": {"x": 4}}}, ["twice"]),  # total depends on the changed six
        ({"twice": {"description": "double the input"}}, ["twice", "six", "total"]),  # a description is not a change
        ({"total": {"retries": 2}}, ["twice", "six"]),
    ],
)
async def test_a_finished_step_is_reused_only_when_it_and_everything_it_needs_are_unchanged(
    change: dict[str, Any], reused: list[str], tools: ToolRegistry
) -> None:
    result = await execute_plan(PLAN, CONTEXT, registry=tools)
    new = validate_plan(revise(change), tools)
    ran = {s.id: s for s in Plan.model_validate(PLAN).steps}

    completed = reusable_outputs(new, ran, result, old_inputs=CONTEXT, new_inputs=CONTEXT)

    assert sorted(completed) == sorted(reused)
    assert all(completed[sid] == result.steps[sid].output for sid in completed)


async def test_a_step_reading_an_input_whose_value_changed_is_not_reused(tools: ToolRegistry) -> None:
    result = await execute_plan(PLAN, CONTEXT, registry=tools)
    new = validate_plan(PLAN, tools)
    ran = {s.id: s for s in Plan.model_validate(PLAN).steps}

    completed = reusable_outputs(new, ran, result, old_inputs=CONTEXT, new_inputs={"n": 6})

    assert sorted(completed) == ["six"]

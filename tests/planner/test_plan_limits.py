"""The planner validates what the model wrote with the model-plan limits, not the plan-file ones."""

from __future__ import annotations

import json

import pytest

from orchestrator.errors import PlanningError
from orchestrator.planner import LargePlanner
from orchestrator.planner.testing import ScriptedChatModel
from orchestrator.registry import ToolRegistry
from orchestrator.settings import Settings

from .conftest import CONTEXT, PLAN

pytestmark = pytest.mark.anyio


async def test_a_model_plan_over_the_step_limit_is_sent_back_and_never_run(
    tools: ToolRegistry, settings: Settings
) -> None:
    tight = settings.model_copy(update={"model_plan_max_steps": 2})
    model = ScriptedChatModel(json.dumps(PLAN), json.dumps(PLAN), model="gpt-4o", provider="openai")
    planner = LargePlanner(chat_model=model, registry=tools, settings=tight, library=False, max_attempts=2)
    with pytest.raises(PlanningError) as caught:
        await planner.run("double n and add six", CONTEXT, stream=False)
    [issue] = caught.value.issues
    assert issue.code == "too_large" and "MODEL_PLAN_MAX_STEPS" in issue.message
    assert "3 steps" in issue.message and "at most 2" in issue.message
    # The refusal went back to the model as feedback (the repair round), within the attempts.
    assert len(model.calls) == 2 and "MODEL_PLAN_MAX_STEPS" in model.calls[1][-1].content


async def test_the_same_plan_passes_under_the_default_limits(tools: ToolRegistry, settings: Settings) -> None:
    model = ScriptedChatModel(json.dumps(PLAN), model="gpt-4o", provider="openai")
    planner = LargePlanner(chat_model=model, registry=tools, settings=settings, library=False)
    planned = await planner.run("double n and add six", CONTEXT, stream=False)
    assert planned.result.ok and planned.result.output == 16

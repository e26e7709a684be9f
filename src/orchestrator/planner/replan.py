"""Replanning: tell the model what ran and what failed, and keep the outputs of steps that need not run again.

A revised plan reuses a finished step's output when the step is in the new plan with the same id and the
same definition, every step it depends on is reused too, and the inputs it reads have the same values.
Those outputs go to the executor as ``completed=``: the steps are not run again.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from orchestrator.errors import PlanningError
from orchestrator.executor.events import RunResult
from orchestrator.executor.inputs import prepare_inputs
from orchestrator.plan.model import Plan, Step
from orchestrator.plan.refs import compile_value, iter_refs
from orchestrator.plan.validate import CompiledPlan
from orchestrator.planner._prompts import describe_inputs, replan_prompt
from orchestrator.planner.protocol import PlannerCore
from orchestrator.planner.report import Session
from orchestrator.providers.base import Message

SUMMARY_CHARS = 600
"""How much of each completed step's output the model sees when replanning."""


def step_signature(step: Step | Mapping[str, Any]) -> dict[str, Any]:
    """A step's definition, normalised so that two spellings of the same step compare equal."""
    model = step if isinstance(step, Step) else Step.model_validate(step)
    return model.model_dump(mode="json", exclude={"description"})


def reusable_outputs(
    new: CompiledPlan,
    ran: Mapping[str, Step | Mapping[str, Any]],
    result: RunResult,
    *,
    old_inputs: Mapping[str, Any],
    new_inputs: Mapping[str, Any],
) -> dict[str, Any]:
    """Outputs of steps in `result` that the `new` plan can reuse (see the module docstring).

    Args:
        new: the revised plan, validated.
        ran: the definitions of the steps that ran, by id.
        result: the run that produced their outputs.
        old_inputs: the input values that run used.
        new_inputs: the input values the revised plan will run with.
    """
    reusable: dict[str, Any] = {}
    decided: dict[str, bool] = {}

    def ok(sid: str, trail: frozenset[str]) -> bool:
        if sid in decided:
            return decided[sid]
        if sid in trail:  # a cycle cannot reach here from a validated plan; be safe anyway
            return False
        cs = new.steps[sid]
        before = result.steps.get(sid)
        old = ran.get(sid)
        good = (
            before is not None
            and before.status == "succeeded"
            and old is not None
            and _same(old, cs.step)
            and all(ok(dep, trail | {sid}) for dep in cs.deps if dep in new.steps)
            and all(old_inputs.get(name) == new_inputs.get(name) for name in _input_names(cs.step))
        )
        decided[sid] = good
        if good and before is not None:
            reusable[sid] = before.output
        return good

    for sid in new.steps:
        ok(sid, frozenset())
    return reusable


def _same(old: Step | Mapping[str, Any], new: Step) -> bool:
    try:
        return step_signature(old) == step_signature(new)
    except ValueError:
        return False


def dependencies(step: Step | Mapping[str, Any]) -> list[str]:
    """The steps a step (a Step, or its raw JSON) depends on: those it references, then its ``depends_on``."""
    args: Any
    for_each: Any
    depends_on: Any
    if isinstance(step, Step):
        args, for_each, depends_on = step.args, step.for_each, step.depends_on
    else:
        args, for_each, depends_on = step.get("args"), step.get("for_each"), step.get("depends_on")
    names: list[str] = []
    for value in (args, for_each):
        for ref, _ in iter_refs(compile_value(value)):
            if ref.kind == "step" and ref.name not in names:
                names.append(ref.name)
    if isinstance(depends_on, list):
        names.extend(str(d) for d in depends_on if str(d) not in names)
    return names


def _input_names(step: Step) -> set[str]:
    names: set[str] = set()
    for value in (step.args, step.for_each):
        for ref, _ in iter_refs(compile_value(value)):
            if ref.kind == "input":
                names.add(ref.name)
    return names


def summarise(value: Any, limit: int = SUMMARY_CHARS) -> str:
    """A value as compact JSON, cut to `limit` characters."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text):,} characters in all)"


def replan_message(
    plan: Plan,
    feedback: str | None,
    result: RunResult | None,
    context: Mapping[str, Any] | None,
) -> str:
    """The user message asking for a revised plan: the plan, what failed and why, what is done, the feedback."""
    failed_lines: list[str] = []
    completed_lines: list[str] = []
    if result is not None:
        for step in result.steps.values():
            if step.status == "failed":
                failed_lines.append(f"- step `{step.id}` (tool `{step.tool}`) failed: {step.error}")
            elif step.status in ("skipped", "cancelled"):
                failed_lines.append(f"- step `{step.id}` did not run ({step.status}: {step.error})")
            elif step.status == "succeeded":
                completed_lines.append(f"- `{step.id}` (tool `{step.tool}`): {summarise(step.output)}")
    reasons = []
    if failed_lines:
        reasons.append("Some steps failed after their retries.")
    if feedback:
        reasons.append(f"The user's feedback: {feedback.strip()}")
    failed = "What went wrong:\n\n" + "\n".join(failed_lines) if failed_lines else "No step failed."
    plan_json = json.dumps(plan.model_dump(mode="json", exclude_defaults=True), indent=2, ensure_ascii=False)
    if context is None:
        inputs = "\n".join(f"- `{name}` ({spec.type})" for name, spec in plan.inputs.items()) or "(none)"
    else:
        inputs = describe_inputs(context)
    return replan_prompt(
        reason=" ".join(reasons) or "Revise it.",
        plan=plan_json,
        failed=failed,
        completed="\n".join(completed_lines) or "(none)",
        inputs=inputs,
    )


async def refine(
    planner: PlannerCore,
    session: Session,
    plan: Plan,
    feedback: str | None,
    result: RunResult | None,
    context: Mapping[str, Any] | None,
) -> CompiledPlan:
    """Ask the planner's model for a revised plan (through the re-ask loop)."""
    messages = [planner.system_message(), Message.user(replan_message(plan, feedback, result, context))]
    return await planner.generate(session, messages, context, purpose="replan")


async def replan_loop(
    planner: PlannerCore, compiled: CompiledPlan, result: RunResult, context: Mapping[str, Any], session: Session
) -> tuple[CompiledPlan, RunResult]:
    """While steps failed (after their retries), revise the plan and rerun it reusing finished steps; bounded."""
    choice = await planner.resolve()
    replans = 0
    while result.failed_steps() and replans < planner.max_replans and choice.provider != "library":
        replans += 1
        failed = result.failed_steps()[0]
        session.note(
            f"planner: step {failed.id!r} failed ({failed.error}); asking for a revised plan "
            f"(replan {replans} of {planner.max_replans})",
            "replan",
            step_id=failed.id,
            error=failed.error,
            replan=replans,
        )
        try:
            revised = await refine(planner, session, compiled.plan, None, result, context)
        except PlanningError as exc:
            session.note(f"planner: replanning failed: {exc}", "replan_failed", replan=replans)
            break
        completed = reusable_outputs(
            revised,
            {step.id: step for step in compiled.plan.steps},
            result,
            old_inputs=prepare_inputs(compiled.plan.inputs, context),
            new_inputs=prepare_inputs(revised.plan.inputs, context),
        )
        session.report.reused_steps.extend(s for s in completed if s not in session.report.reused_steps)
        session.note(
            f"planner: revised plan ready ({len(revised.steps)} steps); reusing "
            f"{', '.join(repr(s) for s in completed) or 'no finished steps'}",
            "replan_ready",
            replan=replans,
            reused=list(completed),
        )
        session.announce(revised, completed)
        result = await planner.execute(revised, context, session, completed)
        compiled = revised
    session.report.replans = replans
    return compiled, result


__all__ = [
    "dependencies",
    "refine",
    "replan_loop",
    "replan_message",
    "reusable_outputs",
    "step_signature",
    "summarise",
]

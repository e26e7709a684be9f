"""Run plans: validate, bind inputs, schedule steps as a DAG, stream events, return a RunResult.

Layer *execute* (and its *results*: :mod:`~orchestrator.executor.events`): below the planner, above the
toolbox it takes its default registry from. It calls tools only through the registry, never a worker by name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from orchestrator.executor.engine import run_compiled
from orchestrator.executor.events import (
    Event,
    EventHandler,
    RunFinished,
    RunNote,
    RunResult,
    RunStarted,
    StepCancelled,
    StepFailed,
    StepFinished,
    StepResult,
    StepRetried,
    StepSkipped,
    StepStarted,
)
from orchestrator.executor.fast import run_fast
from orchestrator.executor.hooks import current_step_hook
from orchestrator.executor.inputs import parse_input_pairs, prepare_inputs
from orchestrator.executor.policy import ConcurrencyLimits, RetryPolicy
from orchestrator.executor.streaming import StreamingRun
from orchestrator.files import allow_folders, current_access, run_access, use_access
from orchestrator.ids import new_run_id
from orchestrator.plan.fast import compile_fast
from orchestrator.plan.model import Plan
from orchestrator.plan.validate import CompiledPlan, load_plan, validate_plan
from orchestrator.registry import ToolRegistry
from orchestrator.run_scope import run_scope
from orchestrator.toolbox import default_registry


async def execute_plan(
    plan: Plan | Mapping[str, Any] | CompiledPlan | str | Path,
    inputs: Mapping[str, Any] | None = None,
    *,
    registry: ToolRegistry | None = None,
    on_event: EventHandler | Iterable[EventHandler] | None = None,
    limits: ConcurrencyLimits | None = None,
    retry: RetryPolicy | None = None,
    run_id: str | None = None,
    completed: Mapping[str, Any] | None = None,
) -> RunResult:
    """Validate a plan and run it.

    A plan given as a dict, of the usual shape (see :mod:`orchestrator.plan.fast`), with no event handler,
    no completed steps, no run-store hook and no concurrency limit on its tools, is validated and run on the
    fast path (:mod:`orchestrator.executor.fast`): the same checks, the same result, less work per step.

    Args:
        plan: a Plan, its JSON data, a compiled plan, or the path of a plan file.
        inputs: values for the plan's declared inputs.
        registry: the tools to run with (default: built-ins plus installed plugins).
        on_event: called with every event (started, finished, failed, skipped, retried, ...).
        limits: concurrency limits per worker kind and per tool.
        retry: backoff policy for retryable errors (each step's `retries` bounds the attempts).
        run_id: an id for the run (default: a new time-sortable id).
        completed: outputs of steps already done (they are reused, not run again).

    Returns:
        The run result: each step's status, output, error and timing, and the plan output.

    Raises:
        PlanValidationError: the plan is invalid; nothing was run.
        InputError: an input is missing, undeclared or of the wrong type; nothing was run.
    """
    registry = registry if registry is not None else default_registry()
    if type(plan) is dict and on_event is None and not completed and current_step_hook() is None:
        limits = limits or ConcurrencyLimits()
        fast = compile_fast(plan, registry, accept=lambda tool: limits.unlimited(tool.spec))
        if fast is not None:  # the usual shape: its fast path (else the general one says what is wrong)
            values = prepare_inputs(fast.inputs, inputs)
            with use_access(current_access() or run_access(dict(inputs or {}))):
                async with run_scope():
                    return await run_fast(fast, values, run_id or new_run_id())
    trusted: list[Path] = []
    if isinstance(plan, str | Path):
        compiled = load_plan(plan, registry)
        trusted.append(Path(plan).resolve().parent)  # its relative defaults point next to it
    else:
        compiled = validate_plan(plan, registry)
    values = prepare_inputs(compiled.inputs, inputs)
    # Files: confined to the folders of the inputs the caller gave (not the plan's defaults), see orchestrator.files.
    with allow_folders(*trusted), use_access(current_access() or run_access(dict(inputs or {}))):
        result, _ = await run_compiled(
            compiled,
            values,
            on_event=on_event,
            limits=limits,
            retry=retry,
            run_id=run_id,
            completed=completed,
            keep_events=False,
        )
    return result


__all__ = [
    "ConcurrencyLimits",
    "Event",
    "EventHandler",
    "RetryPolicy",
    "RunFinished",
    "RunNote",
    "RunResult",
    "RunStarted",
    "StepCancelled",
    "StepFailed",
    "StepFinished",
    "StepResult",
    "StepRetried",
    "StepSkipped",
    "StepStarted",
    "StreamingRun",
    "execute_plan",
    "parse_input_pairs",
    "prepare_inputs",
    "run_compiled",
]

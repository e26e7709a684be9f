"""Run a plan while it is still being written: steps start as they arrive (as LLMCompiler does).

A planner that streams its answer hands each step to :meth:`StreamingRun.add_step` as soon as the
step's JSON object is complete. The step is validated on its own against the steps seen so far and
scheduled at once: it starts the moment its dependencies have finished, while the model is still
writing the rest. A step that refers to a step not written yet waits until the end. When the whole
plan has arrived, :meth:`StreamingRun.finish` validates all of it; a cycle or dangling reference found
only then stops the run cleanly (running steps cancelled, nothing left running).

    async with StreamingRun(registry, inputs) as run:
        for step in steps_as_they_arrive:
            run.add_step(step)
        result = await run.finish(whole_plan)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any

import anyio

from orchestrator.errors import PlanValidationError
from orchestrator.executor.engine import _Run, _wait
from orchestrator.executor.events import EventHandler, RunResult, as_handlers
from orchestrator.executor.inputs import prepare_inputs
from orchestrator.executor.policy import ConcurrencyLimits, RetryPolicy
from orchestrator.ids import new_run_id
from orchestrator.plan.issues import PlanIssue
from orchestrator.plan.limits import DEFAULT_LIMITS, Limits
from orchestrator.plan.validate import check_plan
from orchestrator.registry import ToolRegistry
from orchestrator.run_scope import RunScope, current_scope, enter_scope

# Issues a later part of the plan may still resolve: a step not written yet, an input the final plan declares.
_FORWARD = {"unknown_step", "unknown_input"}


class StreamingRun:
    """Run a plan whose steps arrive one at a time; each starts once its dependencies are done."""

    def __init__(
        self,
        registry: ToolRegistry,
        inputs: Mapping[str, Any] | None = None,
        *,
        goal: str = "",
        on_event: EventHandler | Iterable[EventHandler] | None = None,
        limits: ConcurrencyLimits | None = None,
        retry: RetryPolicy | None = None,
        run_id: str | None = None,
        completed: Mapping[str, Any] | None = None,
        plan_limits: Limits = DEFAULT_LIMITS,
    ):
        self.registry = registry
        self.plan_limits = plan_limits  # a model writes the plan: ModelPlanLimits
        self.inputs = dict(inputs or {})
        self.goal = goal
        self._handlers = as_handlers(on_event)
        self._limits = limits or ConcurrencyLimits()
        self._retry = retry or RetryPolicy()
        self._run_id = run_id or new_run_id()
        self._completed = dict(completed or {})
        self._run: _Run | None = None
        # Run-wide state (budget, small-model worker): the caller's scope, else our own, closed at the end.
        outer = current_scope()
        self._scope = outer if outer is not None else RunScope()
        self._owns_scope = outer is None
        self._raw: list[Mapping[str, Any]] = []  # steps accepted so far, in arrival order
        self._deferred: list[str] = []  # steps waiting for a step not written yet
        self._finished = False

    @property
    def run_id(self) -> str:
        return self._run_id

    def _ensure_started(self) -> _Run:
        if self._run is None:
            self._run = _Run(
                self.inputs,
                goal=self.goal,
                handlers=self._handlers,
                limits=self._limits,
                retry=self._retry,
                run_id=self._run_id,
                completed=self._completed,
            )
            self._run.open = True
            self._run.limit(self.plan_limits)
            with enter_scope(self._scope):
                self._run.start()
        return self._run

    async def __aenter__(self) -> StreamingRun:
        self._ensure_started()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is not None and not self._finished:
            await self.abort(f"stopped: {type(exc).__name__}: {exc}")

    def _prefix_plan(self, steps: list[Mapping[str, Any]]) -> dict[str, Any]:
        return {"goal": self.goal, "inputs": {k: {"type": "any"} for k in self.inputs}, "steps": steps}

    @property
    def step_ids(self) -> list[str]:
        """The ids of the steps accepted so far, in arrival order."""
        return [str(raw["id"]) for raw in self._raw]

    def add_step(self, raw: Mapping[str, Any]) -> None:
        """Validate one step against the steps seen so far and schedule it.

        Raises:
            PlanValidationError: the step can never be valid (unknown tool, bad arguments, bad field...).
        """
        if self._finished:
            raise RuntimeError("add_step after finish()")
        run = self._ensure_started()
        deferred = set(self._deferred)
        scheduled = [r for r in self._raw if r.get("id") not in deferred]
        compiled, issues = check_plan(self._prefix_plan([*scheduled, raw]), self.registry, limits=self.plan_limits)
        step_id = raw.get("id") if isinstance(raw.get("id"), str) else f"#{len(scheduled)}"
        if compiled is None:
            # A reference to a step not scheduled yet, or to an input not given, is not an error yet.
            own = [i for i in issues if i.code not in _FORWARD]
            if own:
                raise PlanValidationError(own, source=f"streamed step {step_id!r}")
            # Only references to steps not written yet: keep it, schedule it once the plan is whole.
            self._raw.append(raw)
            self._deferred.append(str(step_id))
            return
        self._raw.append(raw)
        with enter_scope(self._scope):  # steps launched from here share the run's scope
            run.add(compiled.steps[str(step_id)])

    async def finish(self, plan: Mapping[str, Any]) -> RunResult:
        """The whole plan has arrived: validate all of it, then wait for every step.

        Raises:
            PlanValidationError: the whole plan is invalid; running steps were cancelled first.
        """
        run = self._ensure_started()
        self._finished = True
        compiled, issues = check_plan(plan, self.registry, limits=self.plan_limits)
        if compiled is not None:
            issues = self._mismatches(compiled.steps.keys(), plan)
        if compiled is None or issues:
            await self.abort("the finished plan is invalid")
            raise PlanValidationError(issues, source="streamed plan")
        try:
            values = prepare_inputs(compiled.plan.inputs, self.inputs)
        except Exception:
            await self.abort("the plan's inputs do not match the values given")
            raise
        run.inputs = values
        run.goal = compiled.plan.goal or run.goal
        run.output = compiled.output
        accepted = set(self.step_ids) - set(self._deferred)
        with enter_scope(self._scope):
            for sid, cs in compiled.steps.items():
                if sid not in accepted:
                    run.add(cs)
        run.close()
        try:
            return await _wait(run)
        finally:
            await self._close_scope()

    def _mismatches(self, final_ids: Iterable[str], plan: Mapping[str, Any]) -> list[PlanIssue]:
        """Steps already running must be the same steps in the final plan."""
        final = {s.get("id"): s for s in plan.get("steps", []) if isinstance(s, Mapping)}
        out = []
        for raw in self._raw:
            sid = raw.get("id")
            if sid not in final or dict(final[sid]) != dict(raw):
                out.append(
                    PlanIssue(
                        code="stream_mismatch",
                        message="this step was streamed and started, but the final plan differs or omits it",
                        step_id=str(sid),
                    )
                )
        return out

    async def abort(self, reason: str) -> RunResult:
        """Stop: cancel every running step and return the result so far (status failed)."""
        run = self._ensure_started()
        self._finished = True
        run.stop(reason)
        run.close()
        try:
            return await _wait(run)
        finally:
            await self._close_scope()

    async def _close_scope(self) -> None:
        if self._owns_scope:
            with anyio.CancelScope(shield=True):
                await self._scope.aclose()

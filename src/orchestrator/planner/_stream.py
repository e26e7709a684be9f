"""Streaming execution: run each step of a plan the moment the model has finished writing it.

The model's answer streams in; :class:`~orchestrator.planner.reader.StepExtractor` cuts out each complete
step object and :class:`~orchestrator.executor.streaming.StreamingRun` validates it alone and schedules it,
so it starts as soon as its dependencies are done, while the model is still writing. At the end the whole
plan is validated (cycles, dangling references, inputs). Then:

- valid: :meth:`StreamingRun.finish` runs the rest and returns the result;
- invalid, or the stream broke mid-plan: the run is aborted (running steps cancelled, nothing left
  running), the re-ask loop repairs the plan without streaming, and the repaired plan runs with the
  outputs of finished steps whose definitions did not change (``completed=``). Garbage never runs: a
  step starts only after passing validation on its own, and the rest only after the whole plan passes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import anyio

from orchestrator.errors import ModelError, PlanningError, PlanValidationError
from orchestrator.executor.events import Event, RunResult, StepFailed, StepFinished, StepSkipped, StepStarted
from orchestrator.executor.inputs import prepare_inputs
from orchestrator.executor.streaming import StreamingRun
from orchestrator.plan.issues import PlanIssue
from orchestrator.plan.validate import CompiledPlan
from orchestrator.planner._prompts import repair_prompt
from orchestrator.planner.protocol import PlannerCore
from orchestrator.planner.reader import StepExtractor
from orchestrator.planner.replan import dependencies, reusable_outputs, step_signature
from orchestrator.planner.report import Session
from orchestrator.providers import Completion, Message


class _Stream:
    """The state of one streamed plan: steps accepted, running and started, issues found on the way."""

    def __init__(self, planner: PlannerCore, session: Session) -> None:
        self.planner = planner
        self.run: StreamingRun | None = None
        self.session = session
        self.extractor = StepExtractor()
        self.accepted: dict[str, Mapping[str, Any]] = {}
        self.started: set[str] = set()
        self.running: set[str] = set()
        self.stopping = False
        self._changed: anyio.Event | None = None

    def on_event(self, event: Event) -> None:
        if isinstance(event, StepStarted):
            self.started.add(event.step_id)
            self.running.add(event.step_id)
            return
        if isinstance(event, StepFailed) and self.accepted.get(event.step_id, {}).get("on_error") == "fail":
            self.stopping = True  # the run cancels its other steps, which then report nothing
        if isinstance(event, StepFinished | StepFailed | StepSkipped):
            self.running.discard(event.step_id)
            if self._changed is not None:
                self._changed.set()

    async def settle(self, step_ids: set[str]) -> None:
        """Wait until none of `step_ids` is running (or the run is stopping)."""
        while not self.stopping and self.running & step_ids:
            self._changed = anyio.Event()
            await self._changed.wait()

    def on_delta(self, piece: str) -> None:
        for raw in self.extractor.feed(piece):
            self.schedule(raw)

    def schedule(self, raw: Mapping[str, Any]) -> None:
        sid = str(raw.get("id"))
        tool = str(raw.get("tool"))
        assert self.run is not None
        try:
            self.run.add_step(raw)
        except PlanValidationError as exc:
            # Held back: the whole plan is checked at the end, and a bad step is repaired, never run.
            first = exc.issues[0].render() if exc.issues else "invalid"
            self.session.note(f"planner: streamed step {sid!r} held back: {first}", "step_held", step_id=sid)
            return
        self.accepted[sid] = raw
        kind = self.planner.registry.get(tool).spec.kind.value if tool in self.planner.registry else ""
        self.session.note(
            f"planner: step {sid!r} ({tool}) written; scheduled",
            "step_planned",
            step_id=sid,
            tool=tool,
            tool_kind=kind,
            deps=dependencies(raw),
        )


async def stream_and_run(
    planner: PlannerCore, request: str, context: Mapping[str, Any], session: Session
) -> tuple[CompiledPlan, RunResult]:
    """Stream the plan for `request`, running steps as they arrive; repair and rerun if it goes wrong."""
    messages = planner.first_messages(request, context)
    completion: Completion | None = None
    failure: ModelError | None = None
    state = _Stream(planner, session)
    run = state.run = StreamingRun(
        planner.registry,
        context,
        goal=request,
        on_event=[*session.handlers, state.on_event],
        limits=planner.limits,
        retry=planner.retry,
        run_id=session.run_id,
        plan_limits=planner.plan_limits,
    )
    async with run:
        try:
            completion = await planner.call(session, messages, purpose="plan", attempt=1, on_delta=state.on_delta)
        except ModelError as exc:
            if not state.extractor.text:
                raise PlanningError(f"planning failed: {exc}", attempts=1) from exc
            failure = exc
        if completion is not None:
            data, compiled, issues = planner.check(completion.text, context, truncated=completion.truncated)
            if compiled is not None:
                session.report.attempts = 1
                session.note(
                    f"planner: plan complete ({len(compiled.steps)} steps; {len(state.started)} already started)",
                    "plan_complete",
                    steps=len(compiled.steps),
                    started_before_complete=sorted(state.started),
                )
                try:
                    return compiled, await run.finish(data)
                except PlanValidationError as exc:  # the executor disagrees: rerun the plan from scratch
                    session.note(f"planner: the streamed run stopped: {exc}", "fallback")
                    return compiled, await planner.execute(compiled, context, session)
        # The steps already started passed validation on their own: they run on while the plan is repaired.
        compiled = await _repair(planner, session, messages, context, state, completion, issues if completion else [])
        await state.settle({sid for sid in state.running if _unchanged(state.accepted.get(sid), compiled, sid)})
        reason = f"the stream broke ({failure})" if failure is not None else "the streamed plan was invalid"
        partial = await run.abort(f"{reason}; the repaired plan takes over")
    new_inputs = prepare_inputs(compiled.plan.inputs, context)
    completed = reusable_outputs(compiled, state.accepted, partial, old_inputs=context, new_inputs=new_inputs)
    session.report.reused_steps.extend(completed)
    if completed:
        session.note(f"planner: reusing finished steps {', '.join(map(repr, completed))}", "reuse", reused=[*completed])
    session.announce(compiled, completed)
    return compiled, await planner.execute(compiled, context, session, completed)


async def _repair(
    planner: PlannerCore,
    session: Session,
    messages: list[Message],
    context: Mapping[str, Any],
    state: _Stream,
    completion: Completion | None,
    issues: list[PlanIssue],
) -> CompiledPlan:
    if completion is None:
        session.note(
            f"planner: the plan stream broke after {len(state.extractor.text):,} characters; asking again "
            f"without streaming ({len(state.started)} step(s) started meanwhile)",
            "fallback",
        )
        return await planner.generate(session, messages, context, attempt=1, last_output=state.extractor.text)
    session.rejected(1, issues)
    repair = [
        *messages,
        Message.assistant(completion.text or "(empty answer)"),
        Message.user(repair_prompt(issues, truncated=completion.truncated)),
    ]
    return await planner.generate(session, repair, context, attempt=1, last_output=completion.text, last_issues=issues)


def _unchanged(raw: Mapping[str, Any] | None, compiled: CompiledPlan, sid: str) -> bool:
    if raw is None or sid not in compiled.steps:
        return False
    try:
        return step_signature(raw) == step_signature(compiled.steps[sid].step)
    except ValueError:
        return False

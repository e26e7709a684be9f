"""The scheduler: run a compiled plan as a DAG, each step starting the moment its dependencies finish.

There is no level-by-level barrier: when a step finishes it decrements its dependents' counters and
launches those that reach zero, from its own task. The hot path is kept lean (no Pydantic, no locks;
semaphores only for tools or kinds that have a limit), because `orchestrator bench` holds it to a
plain asyncio ready-queue scheduler.

Failure semantics:
- a failed step (after its retries) skips every step that depends on it, with the reason;
  independent branches run on (`on_error: continue`, the default);
- `on_error: fail` stops the run: running steps are cancelled and awaited, nothing is left running;
- cancelling the caller (Ctrl-C) cancels every running step and awaits them before re-raising.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from time import perf_counter
from typing import Any

from orchestrator.context import StepContext, Usage, step_reporter
from orchestrator.errors import ToolError, ToolTimeout, is_retryable
from orchestrator.executor.events import (
    Event,
    EventHandler,
    RunFinished,
    RunResult,
    RunStarted,
    RunStatus,
    StepCancelled,
    StepFailed,
    StepFinished,
    StepResult,
    StepRetried,
    StepSkipped,
    StepStarted,
    as_handlers,
)
from orchestrator.executor.hooks import current_step_hook
from orchestrator.executor.policy import ConcurrencyLimits, Limiters, RetryPolicy
from orchestrator.files import current_access, run_access, use_access
from orchestrator.ids import new_run_id
from orchestrator.plan.limits import DEFAULT_LIMITS, MODEL_KINDS, Limits
from orchestrator.plan.refs import Env, Literal_, Node, ResolveError, resolve, resolve_in
from orchestrator.plan.validate import CompiledPlan, CompiledStep
from orchestrator.registry import FunctionTool
from orchestrator.run_scope import run_scope

logger = logging.getLogger(__name__)


def _absorb(rec: StepResult, ctx: StepContext) -> None:
    """Copy what a tool reported in one attempt (worker modes, usage, counts) into its step's result."""
    for mode in ctx.modes or ():
        rec.add_mode(mode)
    if ctx.usage is not None:
        rec.add_usage(ctx.usage)
    for key, n in (ctx.notes or {}).items():
        rec.add_count(key, n)


class _Run:
    """The state of one execution."""

    def __init__(
        self,
        inputs: Mapping[str, Any],
        *,
        goal: str,
        handlers: tuple[EventHandler, ...],
        limits: ConcurrencyLimits | Limiters,
        retry: RetryPolicy,
        run_id: str,
        completed: Mapping[str, Any],
        keep_events: bool = True,
    ):
        self.goal = goal
        self.hook = hook = current_step_hook()  # the run store, when one records this run
        if hook is not None:
            handlers = (*handlers, hook.on_event)
        # Events are built only when someone looks: a handler, or a caller that wants the list back.
        self.record = keep_events or bool(handlers)
        self.inputs = inputs
        self.handlers = handlers
        self.retry = retry
        self.run_id = run_id
        # Limiters may be shared by several runs (a batch), so that limits hold across documents.
        self.limiters = limits if isinstance(limits, Limiters) else Limiters(limits)
        self.sems: dict[str, tuple[asyncio.Semaphore, ...]] = {}
        self.steps: dict[str, CompiledStep] = {}
        self.dependents: dict[str, Sequence[str]] = {}
        self.output: Node = Literal_(None)
        self.outputs: dict[str, Any] = dict(completed)
        self.records: dict[str, StepResult] = {}  # updated in place; they are the run result's steps
        self.remaining: dict[str, int] = {}
        self.blocked: dict[str, str] = {}  # step -> the first dependency that did not succeed
        self.tasks: set[asyncio.Task[None]] = set()
        self.discard = self.tasks.discard  # bound once: every step's task removes itself when done
        self.unsettled = 0
        self.open = False  # True while more steps may still be added (streaming)
        self.events: list[Event] = []
        self.stop_reason: str | None = None
        self.t0 = perf_counter()
        self.started_at = datetime.now(UTC)
        self.loop = asyncio.get_running_loop()
        self.create_task = self.loop.create_task
        self.done: asyncio.Future[None] = self.loop.create_future()
        self.reused = set(completed)
        self.plan_limits: Limits = DEFAULT_LIMITS
        self.model_calls_left: int | None = None  # None: unbounded (a plan file)
        self.for_each_left: int | None = None

    def load(self, compiled: CompiledPlan) -> None:
        """Take a whole compiled plan at once (the usual, non-streaming path)."""
        self.steps = dict(compiled.steps)
        self.dependents = dict(compiled.dependents)
        self.limit(compiled.limits)
        self.output = compiled.output
        self.records = {sid: StepResult(sid, cs.tool_name, cs.kind, "pending") for sid, cs in compiled.steps.items()}
        self.remaining = {sid: len(cs.deps) for sid, cs in compiled.steps.items()}
        self.unsettled = len(compiled.steps)
        self.reused &= set(compiled.steps)

    def limit(self, limits: Limits) -> None:
        """Hold the run to a plan's run-time limits (a model-written plan's: model calls, for_each fan-out)."""
        self.plan_limits = limits
        self.model_calls_left = limits.max_model_calls
        self.for_each_left = limits.max_for_each_total

    def count_model_call(self, cs: CompiledStep) -> None:
        """Count one call of a model-kind tool against the run's bound; refuse it when the bound is spent."""
        if self.model_calls_left is None or cs.kind not in MODEL_KINDS:
            return
        if self.model_calls_left <= 0:
            limit = self.plan_limits.max_model_calls or 0
            raise ToolError(self.plan_limits.refusal("no model calls are left in this run", limit, "max_model_calls"))
        self.model_calls_left -= 1

    def check_fan_out(self, cs: CompiledStep, n: int) -> None:
        """Refuse a for_each over more elements than one step, or the rest of the run, may have."""
        limits = self.plan_limits
        if limits.max_for_each is not None and n > limits.max_for_each:
            raise ToolError(limits.refusal(f"for_each over {n:,} elements", limits.max_for_each, "max_for_each"))
        if self.for_each_left is not None:
            if n > self.for_each_left:
                total = limits.max_for_each_total or 0
                what = f"for_each over {n:,} elements, with {self.for_each_left:,} left in this run"
                raise ToolError(limits.refusal(what, total, "max_for_each_total"))
            self.for_each_left -= n

    def add(self, cs: CompiledStep) -> None:
        """Add one step to a running plan; it starts as soon as its dependencies have succeeded."""
        sid = cs.id
        self.steps[sid] = cs
        self.records[sid] = StepResult(sid, cs.tool_name, cs.kind, "pending")
        self.unsettled += 1
        self.dependents.setdefault(sid, ())
        waiting = 0
        for dep in cs.deps:
            rec = self.records.get(dep)
            if rec is not None and rec.status != "pending":  # already settled
                if rec.status != "succeeded":
                    self.blocked.setdefault(sid, dep)
            else:
                waiting += 1
                self.dependents[dep] = (*self.dependents.get(dep, ()), sid)
        self.remaining[sid] = waiting
        if self.stop_reason is not None:
            return
        if sid in self.reused:
            self.records[sid].status = "succeeded"
            self.records[sid].modes = ("reused",)
            self.settle(sid)
        elif waiting == 0:
            if sid in self.blocked:
                cause = self.blocked[sid]
                self.skip(sid, f"dependency {cause!r} {self.records[cause].status}")
                self.settle(sid)
            else:
                self.launch(sid)

    def close(self) -> None:
        """No more steps will be added."""
        self.open = False
        if self.unsettled == 0 and not self.done.done():
            self.done.set_result(None)

    # --- events -----------------------------------------------------------------------------------------

    def now(self) -> float:
        return perf_counter() - self.t0

    def emit(self, event: Event) -> None:
        if self.record:
            self.events.append(event)
            if self.handlers:
                self.notify(event)

    def notify(self, event: Event) -> None:
        for handler in self.handlers:
            try:
                handler(event)
            except Exception:  # an observer must never break the run
                logger.exception("event handler failed on %s", event.type)

    # --- scheduling -------------------------------------------------------------------------------------

    def start(self) -> None:
        self.emit(RunStarted(self.run_id, 0.0, self.goal, len(self.steps)))
        for sid in self.reused:
            rec = self.records[sid]
            rec.status = "succeeded"
            rec.modes = ("reused",)
            rec.output = self.outputs.get(sid)
        for sid, count in self.remaining.items():
            if count == 0 and sid not in self.reused:
                self.launch(sid)
        for sid in self.reused:
            self.settle(sid)
        if self.unsettled == 0 and not self.open and not self.done.done():
            self.done.set_result(None)

    def launch(self, sid: str) -> None:
        task = self.create_task(self.run_step(self.steps[sid]))
        self.tasks.add(task)
        task.add_done_callback(self.discard)

    def settle(self, sid: str) -> None:
        """Mark a step as over and release (or skip) its dependents."""
        records, remaining, blocked, dependents = self.records, self.remaining, self.blocked, self.dependents
        reused, steps, tasks, create_task, discard = self.reused, self.steps, self.tasks, self.create_task, self.discard
        work: list[str] | None = None  # skipped steps still to settle; allocated only when there are some
        current = sid
        while True:
            self.unsettled -= 1
            failed = records[current].status != "succeeded"
            for child in dependents[current]:
                if failed and child not in blocked:
                    blocked[child] = current
                remaining[child] -= 1
                if remaining[child] != 0 or self.stop_reason is not None or (reused and child in reused):
                    continue
                if child in blocked:
                    cause = blocked[child]
                    self.skip(child, f"dependency {cause!r} {records[cause].status}")
                    if work is None:
                        work = []
                    work.append(child)
                else:  # launch(child), inlined: this loop is the scheduler's hot path
                    task = create_task(self.run_step(steps[child]))
                    tasks.add(task)
                    task.add_done_callback(discard)
            if not work:
                break
            current = work.pop()
        if self.unsettled == 0 and not self.open and not self.done.done():
            self.done.set_result(None)

    def skip(self, sid: str, reason: str) -> None:
        rec = self.records[sid]
        rec.status = "skipped"
        rec.error = reason
        self.emit(StepSkipped(self.run_id, self.now(), sid, reason))

    def stop(self, reason: str) -> None:
        """Stop the run (on_error: fail): cancel every running step; pending ones are skipped at the end."""
        if self.stop_reason is not None:
            return
        self.stop_reason = reason
        current = asyncio.current_task()
        for task in list(self.tasks):
            if task is not current:
                task.cancel()
        if not self.done.done():
            self.done.set_result(None)

    # --- one step ---------------------------------------------------------------------------------------

    def env(self, item: Any = None) -> Env:
        return (self.outputs, self.inputs, item)

    async def run_step(self, cs: CompiledStep) -> None:
        sid = cs.id
        rec = self.records[sid]
        rec.started_s = started = perf_counter() - self.t0
        if self.record:
            event: Event = StepStarted(self.run_id, started, sid, cs.tool_name, cs.kind)
            self.events.append(event)
            if self.handlers:
                self.notify(event)
        items: int | None = None
        try:
            sems = self.sems.get(cs.tool_name)
            if sems is None:
                sems = self.sems[cs.tool_name] = self.limiters.for_tool(cs.tool.spec)
            tool = cs.tool
            direct = cs.direct
            hit = None if self.hook is None else self.hook.lookup(cs, self.outputs, self.inputs)
            if hit is not None:  # a recorded result of a deterministic tool
                output = hit[0]
                rec.add_mode("cached")
            elif direct is not None and not sems and self.model_calls_left is None:
                # The common case (see `orchestrator bench`): a simple step (one attempt, no for_each, no
                # timeout) whose arguments validation proved, called through exact type guards instead of
                # Pydantic (FunctionTool.direct_call). The tool reports straight into the step's result; each
                # step runs in its own task with its own copy of the context, so the variable needs no reset.
                rec.attempts = 1
                step_reporter.set(rec)
                # No local holds the arguments while the tool runs: a wide fan-out keeps less alive at once.
                output = tool.dump(await direct(_resolve_args(cs, self.outputs, self.inputs)))  # type: ignore[attr-defined]
            elif cs.simple and not sems and type(tool) is FunctionTool and not tool.takes_context:
                rec.attempts = 1
                step_reporter.set(rec)
                if self.model_calls_left is not None:
                    self.count_model_call(cs)
                output = tool.dump(await tool.start(_resolve_args(cs, self.outputs, self.inputs)))
            elif cs.for_each is None:
                output = await self.attempts(cs, rec, None, None)
            else:
                elements = resolve(cs.for_each, (self.outputs, self.inputs, None))
                if not isinstance(elements, list):
                    raise ToolError(f"for_each gave {type(elements).__name__}, not a list")
                items = len(elements)
                self.check_fan_out(cs, items)
                output = await self.map(cs, rec, elements)
        except asyncio.CancelledError:
            rec.status = "cancelled"
            rec.finished_s = perf_counter() - self.t0
            rec.duration_s = rec.finished_s - started
            rec.error = self.stop_reason or "cancelled"
            self.emit(StepCancelled(self.run_id, rec.finished_s, sid, rec.error))
            raise
        except Exception as exc:
            self.fail(cs, rec, exc)
            return
        self.outputs[sid] = rec.output = output
        rec.status = "succeeded"
        rec.finished_s = finished = perf_counter() - self.t0
        rec.duration_s = duration = finished - started
        if self.record:
            event = StepFinished(self.run_id, finished, sid, rec.attempts, duration, rec.modes, rec.usage, items)
            self.events.append(event)
            if self.handlers:
                self.notify(event)
        if self.hook is not None:
            self.keep(cs, rec)
        self.settle(sid)

    def keep(self, cs: CompiledStep, rec: StepResult) -> None:
        """Hand a settled step to the hook; if it cannot keep it, stop the run (the work could not be resumed)."""
        assert self.hook is not None
        try:
            self.hook.record(cs, rec)
        except Exception as exc:
            logger.error("stopping the run: %s", exc)
            self.stop(f"run store: {exc}")

    def fail(self, cs: CompiledStep, rec: StepResult, exc: Exception) -> None:
        rec.status = "failed"
        rec.finished_s = self.now()
        rec.error = describe_error(exc)
        rec.error_type = type(exc).__name__
        started = rec.started_s or rec.finished_s
        rec.duration_s = rec.finished_s - started
        self.emit(
            StepFailed(
                self.run_id,
                rec.finished_s,
                cs.id,
                rec.attempts,
                rec.finished_s - started,
                rec.error,
                rec.error_type,
                is_retryable(exc),
            )
        )
        if self.hook is not None:
            self.keep(cs, rec)
        if cs.on_error == "fail":
            self.stop(f"step {cs.id!r} failed: {rec.error}")
        self.settle(cs.id)

    async def map(self, cs: CompiledStep, rec: StepResult, elements: list[Any]) -> list[Any]:
        results: list[Any] = [None] * len(elements)

        async def one(index: int, element: Any) -> None:
            try:
                results[index] = await self.attempts(cs, rec, element, index)
            except Exception as exc:
                raise _ItemFailed(index, exc) from exc

        try:
            async with asyncio.TaskGroup() as group:
                for index, element in enumerate(elements):
                    group.create_task(one(index, element))
        except* _ItemFailed as failures:
            first = min(failures.exceptions, key=lambda e: e.index if isinstance(e, _ItemFailed) else 0)
            assert isinstance(first, _ItemFailed)
            raise first.error from None
        return results

    async def attempts(self, cs: CompiledStep, rec: StepResult, item: Any, index: int | None) -> Any:
        """Run one call of the step's tool (one for_each element), retrying what is retryable."""
        tool = cs.tool
        sems = self.limiters.for_tool(tool.spec)
        timeout_s = cs.timeout_s
        retries = cs.retries
        attempt = 0
        while True:
            attempt += 1
            if attempt > rec.attempts:
                rec.attempts = attempt
            ctx = StepContext(self.run_id, cs.id, attempt)
            token = step_reporter.set(ctx)
            try:
                args = _resolve_args(cs, self.outputs, self.inputs, item)
                self.count_model_call(cs)
                if not sems and timeout_s is None:
                    result = await tool.invoke(args)
                else:
                    for sem in sems:
                        await sem.acquire()
                    try:
                        call = tool.invoke(args)
                        result = await (call if timeout_s is None else _with_timeout(call, timeout_s))
                    finally:
                        for sem in sems[::-1]:
                            sem.release()
            except Exception as exc:
                if attempt > retries or not is_retryable(exc) or self.stop_reason is not None:
                    if index is not None:
                        exc.add_note(f"item {index}")
                    raise
                delay = self.retry.delay(attempt)
                self.emit(StepRetried(self.run_id, self.now(), cs.id, attempt, describe_error(exc), delay, index))
            else:
                if ctx.modes is not None or ctx.usage is not None or ctx.notes is not None:
                    _absorb(rec, ctx)
                return result
            finally:
                step_reporter.reset(token)
            await asyncio.sleep(delay)

    # --- the end ----------------------------------------------------------------------------------------

    def result(self, status: RunStatus | None = None) -> RunResult:
        now = self.now()
        total = Usage()
        succeeded = 0
        for rec in self.records.values():
            if rec.status == "pending":
                rec.status = "skipped"
                rec.error = self.stop_reason or "not run"
            if rec.status == "succeeded":
                succeeded += 1
            if rec.usage is not None:
                total = total + rec.usage
        if status is None:
            if self.stop_reason is not None or (self.records and succeeded == 0):
                status = "failed"  # stopped, or nothing succeeded: not "partial"
            else:
                status = "succeeded" if succeeded == len(self.records) else "partial"
        output = None
        try:
            output = resolve(self.output, self.env())
        except (ResolveError, KeyError):
            pass
        self.emit(RunFinished(self.run_id, now, status, now, total if not total.is_zero else None))
        # model_construct: the step results were built and checked as the run went; validating them again is waste.
        return RunResult.model_construct(
            run_id=self.run_id,
            goal=self.goal,
            status=status,
            output=output,
            started_at=self.started_at,
            duration_s=now,
            steps=self.records,
            usage=total,
            error=self.stop_reason,
        )


def _resolve_args(cs: CompiledStep, outputs: dict[str, Any], inputs: Mapping[str, Any], item: Any = None) -> Any:
    if type(cs.args) is Literal_:
        return cs.args.value
    try:
        return resolve_in(cs.args, outputs, inputs, item)
    except (ResolveError, KeyError) as exc:
        raise ToolError(f"cannot resolve arguments: {exc}") from exc


async def _with_timeout(call: Coroutine[Any, Any, Any], timeout_s: float) -> Any:
    try:
        async with asyncio.timeout(timeout_s) as scope:
            return await call
    except TimeoutError:
        if scope.expired():
            raise ToolTimeout(f"timed out after {timeout_s:g}s") from None
        raise


class _ItemFailed(Exception):
    def __init__(self, index: int, error: Exception):
        super().__init__(f"item {index}: {error}")
        self.index = index
        self.error = error


def describe_error(exc: BaseException) -> str:
    """A failure in one line for a step result: the message (or the type), after any notes added to it."""
    text = str(exc) or type(exc).__name__
    notes = getattr(exc, "__notes__", None)
    if notes:
        text = f"{', '.join(notes)}: {text}"
    return text


async def run_compiled(
    compiled: CompiledPlan,
    inputs: Mapping[str, Any],
    *,
    on_event: EventHandler | Iterable[EventHandler] | None = None,
    limits: ConcurrencyLimits | Limiters | None = None,
    retry: RetryPolicy | None = None,
    run_id: str | None = None,
    completed: Mapping[str, Any] | None = None,
    keep_events: bool = True,
) -> tuple[RunResult, list[Event]]:
    """Run a validated plan; returns the result and every event emitted (none with ``keep_events=False``
    and no handler: building them is then skipped).

    `completed` maps step ids to outputs already known (a resumed or replanned run): those steps are not
    run again, and their dependents start at once.
    """
    run = _Run(
        inputs,
        goal=compiled.goal,
        handlers=as_handlers(on_event),
        limits=limits or ConcurrencyLimits(),
        retry=retry or RetryPolicy(),
        run_id=run_id or new_run_id(),
        completed=completed or {},
        keep_events=keep_events,
    )
    run.load(compiled)
    # Files: the steps read only under the run's roots (see orchestrator.files); the plan's own defaults
    # do not widen them. An access already in force (a streamed run's) stands.
    specs = compiled.inputs
    given = {k: v for k, v in inputs.items() if k not in specs or v != specs[k].default}
    # Run-wide state (model budget, small-model worker): the enclosing batch's, else this run's own.
    with use_access(current_access() or run_access(given)):
        async with run_scope():
            run.start()
            result = await _wait(run)
    return result, run.events


async def _wait(run: _Run) -> RunResult:
    """Wait for a run to settle; on cancellation, cancel every running step and await them first."""
    try:
        await run.done
    except asyncio.CancelledError:
        run.stop_reason = run.stop_reason or "cancelled"
        for task in list(run.tasks):
            task.cancel()
        await asyncio.gather(*run.tasks, return_exceptions=True)
        run.result("cancelled")
        raise
    if run.tasks:
        # Stopped early: wait for the cancelled steps to unwind so nothing is left running.
        await asyncio.gather(*run.tasks, return_exceptions=True)
    return run.result()

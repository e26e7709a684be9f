"""The scheduler's fast path: a plan of the usual shape (see :mod:`orchestrator.plan.fast`), run from its flat form.

:func:`execute_plan` takes it when nothing asks for more than running the steps: no event handler, no run
store hook, no resumed steps, no concurrency limit on the plan's tools, and a plan of the shape
:func:`~orchestrator.plan.fast.compile_fast` compiles. Every step is then one attempt of a function tool
without a timeout and with ``on_error: continue``; it is run exactly as the general scheduler
(:mod:`orchestrator.executor.engine`) runs such a step, in a task of its own started the moment its last
dependency succeeds, through the same call (``FunctionTool.direct_call`` or Pydantic) and the same
``dump``, reporting into its :class:`StepResult`. What the run returns is the same :class:`RunResult`:
statuses, outputs, errors, skip reasons, the plan output (``tests/executor/test_fast_run.py`` runs plans
both ways and compares). What is left out is what the shape rules out: retries, timeouts, semaphores,
``for_each``, events, the hook.

Steps are numbers (their place in the plan), outputs a list, arguments resolved straight into the
keyword arguments from the compiled references: per step a task, a coroutine, its result record and its
output, as the plain asyncio floor of ``orchestrator bench`` has.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Mapping
from datetime import UTC, datetime
from functools import partial
from time import perf_counter
from typing import Any, cast

from orchestrator.context import Usage, step_reporter
from orchestrator.errors import ToolError
from orchestrator.executor.engine import describe_error
from orchestrator.executor.events import RunResult, RunStatus, StepResult
from orchestrator.plan.fast import FIELDS, LITERAL, READY, REF, ArgSpec, FastPlan
from orchestrator.plan.refs import ResolveError, follow, resolve_in
from orchestrator.registry import REFUSED

__all__ = ["INLINE", "FastRun", "run_fast", "stats"]

INLINE = 16
"""At most this many steps run one after the other in one task before a ready dependent gets a task of its own
(and the event loop its turn), when the steps' tools do not wait on anything."""


class _Stats:
    """How many runs took the fast path (tests and ``orchestrator bench`` check that it is taken)."""

    __slots__ = ("runs",)

    def __init__(self) -> None:
        self.runs = 0


stats = _Stats()


class FastRun:
    """The state of one run of a :class:`FastPlan`."""

    __slots__ = (
        "blocked",
        "create_task",
        "done",
        "failures",
        "inputs",
        "outputs",
        "plan",
        "records",
        "remaining",
        "running",
        "t0",
        "unsettled",
    )

    def __init__(self, plan: FastPlan, inputs: Mapping[str, Any]):
        n = len(plan)
        self.plan = plan
        self.inputs = inputs
        self.outputs: list[Any] = [None] * n
        self.records: list[StepResult | None] = [None] * n
        self.remaining = plan.waits.copy()
        self.blocked: dict[int, int] = {}  # step -> the first dependency that did not succeed
        self.unsettled = n
        self.failures = 0  # steps that failed
        # The running steps' tasks (the loop holds tasks only weakly); each step removes its own when it ends.
        self.running: dict[int, asyncio.Task[None]] = {}
        loop = asyncio.get_running_loop()
        # What loop.create_task does when the loop has no task factory, without its checks (the loop runs us)
        self.create_task: Callable[[Coroutine[Any, Any, None]], asyncio.Task[None]] = (
            partial(asyncio.Task, loop=loop) if loop.get_task_factory() is None else loop.create_task
        )
        self.done: asyncio.Future[None] = loop.create_future()
        self.t0 = perf_counter()

    def start(self) -> None:
        for number, count in enumerate(self.plan.waits):
            if count == 0:
                self.launch(number)

    def launch(self, number: int) -> None:
        self.running[number] = self.create_task(self.run(number))

    async def run(self, number: int) -> None:
        """Run a step as the general scheduler runs a single-attempt step of a function tool. Then, when no
        other step of the run is running or about to start (a chain), the dependent it made ready runs next
        in this same task rather than a new one: at most INLINE steps in a row, so the loop gets its turn.
        That is the order tasks would give (the dependent would be the next step to start, its siblings
        after it), and the dependent sees the context a task would have copied (its parent's, as it ends).
        """
        first = number
        plan, t0 = self.plan, self.t0
        tools, ids, specs, dependents = plan.tools, plan.ids, plan.specs, plan.dependents
        records, outputs, remaining, running = self.records, self.outputs, self.remaining, self.running
        left = INLINE
        while True:
            tool = tools[number]
            records[number] = rec = StepResult(ids[number], tool.name, tool.kind, "pending")
            rec.started_s = started = perf_counter() - t0
            rec.attempts = 1
            step_reporter.set(rec)  # the tool reports into its result
            try:
                guards = tool.guards
                kwargs = None if guards is None else self.guarded(specs[number], guards)
                if kwargs is not None:
                    output = tool.dump(await tool.fn(**kwargs))
                else:
                    output = tool.dump(await tool.start(self.arguments(specs[number])))
            except asyncio.CancelledError:
                rec.status = "cancelled"
                rec.finished_s = perf_counter() - t0
                rec.duration_s = rec.finished_s - started
                rec.error = "cancelled"
                del running[first]
                raise
            except Exception as exc:
                self.failures += 1
                rec.status = "failed"
                rec.finished_s = perf_counter() - t0
                rec.error = describe_error(exc)
                rec.error_type = type(exc).__name__
                rec.duration_s = rec.finished_s - started
                following = self.settle(number, True, False)
            else:
                outputs[number] = rec.output = output
                rec.status = "succeeded"
                rec.finished_s = finished = perf_counter() - t0
                rec.duration_s = finished - started
                keep = left > 0 and len(running) == 1
                if self.blocked:  # a step failed: settle skips the steps it blocks
                    following = self.settle(number, False, keep)
                else:  # settle(number, False, keep), inlined: nothing is blocked, this is the hot path
                    following = None
                    self.unsettled -= 1
                    for child in dependents[number]:
                        remaining[child] -= 1
                        if remaining[child] != 0:
                            continue
                        if keep and following is None:
                            following = child
                        else:
                            running[child] = self.create_task(self.run(child))
                    if self.unsettled == 0 and not self.done.done():
                        self.done.set_result(None)
            if following is None:
                break
            number = following
            left -= 1
        del running[first]

    def arguments(self, spec: list[ArgSpec]) -> dict[str, Any]:
        """The step's arguments, its references resolved from the outputs of the steps they name."""
        outputs = self.outputs
        args: dict[str, Any] = {}
        for name, kind, value in spec:
            if kind <= LITERAL:
                args[name] = value
            elif kind == FIELDS:
                targets, field = value
                try:
                    args[name] = [outputs[target][field] for target in targets]
                except Exception:  # not a dict with that field: said as the general scheduler says it
                    args[name] = [self.lookup(target, (field,)) for target in targets]
            elif kind == REF:
                args[name] = self.lookup(*value)
            else:
                args[name] = [self.lookup(target, path) for target, path in value]
        return args

    def guarded(
        self, spec: list[ArgSpec], guards: tuple[tuple[Callable[[Any], Any], type | None], ...]
    ) -> dict[str, Any] | None:
        """The step's keyword arguments, each resolved and passed through its guard; None when a guard refuses
        a value (the call then goes through Pydantic, which says what is wrong or converts it)."""
        outputs = self.outputs
        kwargs: dict[str, Any] = {}
        for (name, kind, value), (guard, element) in zip(spec, guards):  # noqa: B905  # one guard per argument
            if kind == READY:  # validation proved the guard would pass it as it is
                kwargs[name] = value
                continue
            if kind == FIELDS:
                targets, field = value
                resolved = []
                try:
                    for target in targets:  # a loop, not a comprehension: for short lists, the cheaper
                        resolved.append(outputs[target][field])  # noqa: PERF401
                except Exception:  # not a dict with that field: said as the general scheduler says it
                    resolved = [self.lookup(target, (field,)) for target in targets]
                if element is not None:  # the guard of list[element], inline: it would pass a copy of this
                    for item in resolved:  # list, made here, when every element is exactly an `element`
                        if type(item) is not element:
                            return None
                    kwargs[name] = resolved
                    continue
            elif kind == LITERAL:
                resolved = value
            elif kind == REF:
                resolved = self.lookup(*value)
            else:
                resolved = [self.lookup(target, path) for target, path in value]
            checked = guard(resolved)
            if checked is REFUSED:
                return None
            kwargs[name] = checked
        return kwargs

    def lookup(self, target: int, path: tuple[Any, ...]) -> Any:
        """What a reference points at (a ToolError saying why, when it cannot be followed)."""
        out = self.outputs[target]
        if not path:
            return out
        if len(path) == 1 and type(out) is dict and path[0] in out:
            return out[path[0]]
        try:
            return follow(out, path, origin=f"step:{self.plan.ids[target]}")
        except ResolveError as exc:
            raise ToolError(f"cannot resolve arguments: {exc}") from exc

    def settle(self, number: int, failed: bool, keep: bool = False) -> int | None:
        """Mark a step as over and start (or skip) the dependents it was the last wait of. With `keep`, the
        first of them is not started but returned: the caller runs it next, in its own task."""
        dependents, remaining, blocked = self.plan.dependents, self.remaining, self.blocked
        create_task, running = self.create_task, self.running
        kept: int | None = None
        work: list[int] | None = None  # skipped steps still to settle
        current = number
        while True:
            self.unsettled -= 1
            for child in dependents[current]:
                if failed and child not in blocked:
                    blocked[child] = current
                remaining[child] -= 1
                if remaining[child] != 0:
                    continue
                if child in blocked:
                    self.skip(child)
                    if work is None:
                        work = []
                    work.append(child)
                elif keep and kept is None:
                    kept = child
                else:  # launch(child), inlined: this loop is the hot path
                    running[child] = create_task(self.run(child))
            if not work:
                break
            current = work.pop()
            failed = True
        if self.unsettled == 0 and not self.done.done():
            self.done.set_result(None)
        return kept

    def skip(self, number: int) -> None:
        plan = self.plan
        cause = self.blocked[number]
        tool = plan.tools[number]
        status = self.records[cause].status  # type: ignore[union-attr]  # a settled step has its record
        self.records[number] = StepResult(
            plan.ids[number], tool.name, tool.kind, "skipped", error=f"dependency {plan.ids[cause]!r} {status}"
        )

    def result(self, run_id: str, started_at: datetime) -> RunResult:
        plan = self.plan
        total = Usage()
        if self.unsettled == 0 and self.failures == 0:  # every step ran and succeeded: the usual run
            # (a step is skipped or left pending only when another failed, or the run was cancelled)
            steps = cast(dict[str, StepResult], dict(zip(plan.ids, self.records, strict=True)))
            for done in steps.values():
                if done.usage is not None:
                    total = total + done.usage
            outputs = dict(zip(plan.ids, self.outputs, strict=True))
            return self.returned(run_id, started_at, "succeeded", outputs, steps, total)
        succeeded = 0
        steps = {}
        outputs = {}
        for sid, rec, out in zip(plan.ids, self.records, self.outputs):  # noqa: B905  # one of each per step
            if rec is None:  # never reached (the run was cancelled)
                tool = plan.tools[len(steps)]
                rec = StepResult(sid, tool.name, tool.kind, "skipped", error="not run")
            elif rec.status == "pending":
                rec.status, rec.error = "skipped", "not run"
            if rec.status == "succeeded":
                succeeded += 1
                outputs[sid] = out
            if rec.usage is not None:
                total = total + rec.usage
            steps[sid] = rec
        status: RunStatus
        if succeeded == 0:
            status = "failed"
        else:
            status = "succeeded" if succeeded == len(steps) else "partial"
        return self.returned(run_id, started_at, status, outputs, steps, total)

    def returned(
        self,
        run_id: str,
        started_at: datetime,
        status: RunStatus,
        outputs: dict[str, Any],
        steps: dict[str, StepResult],
        total: Usage,
    ) -> RunResult:
        plan = self.plan
        output = None
        try:
            output = resolve_in(plan.output, outputs, self.inputs, None)
        except (ResolveError, KeyError):
            pass
        return RunResult.model_construct(
            run_id=run_id,
            goal=plan.goal,
            status=status,
            output=output,
            started_at=started_at,
            duration_s=perf_counter() - self.t0,
            steps=steps,
            usage=total,
            error=None,
        )


async def run_fast(plan: FastPlan, inputs: Mapping[str, Any], run_id: str) -> RunResult:
    """Run a plan compiled by :func:`~orchestrator.plan.fast.compile_fast` (the caller has bound its inputs,
    file access and run scope). Cancelling the caller cancels every running step and awaits them first."""
    stats.runs += 1
    started_at = datetime.now(UTC)
    run = FastRun(plan, inputs)
    run.start()
    try:
        await run.done
    except asyncio.CancelledError:
        tasks = list(run.running.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    return run.result(run_id, started_at)

"""What runs on the Ray workers: document actors (whole documents of a batch) and step actors (one tool call).

Both are async actors: many calls share one event loop, so I/O-bound work (model calls, MCP) overlaps
without a CPU per call, and sync tools run in the actor's threads. Each actor keeps one tool registry and
one :class:`~orchestrator.run_scope.RunScope` for its whole life, so models, OCR engines and the
small-model worker load once per actor, not once per document. Every call runs under the driver's
settings (shipped with the actor), so a cluster gives the same answers as this process.

A tool's failure comes back as data (:class:`StepReply`), never as a pickled exception: the driver turns
it into a :class:`~orchestrator.errors.ToolError` with the same text and retryability.
"""

from __future__ import annotations

import os
import resource
import socket
from collections.abc import Mapping, Sequence
from typing import Any, cast

import ray

from orchestrator.batch import run_document
from orchestrator.budget import Budget
from orchestrator.cluster.remote import StepReply
from orchestrator.context import StepContext, step_reporter
from orchestrator.errors import is_retryable
from orchestrator.executor.hooks import use_step_hook
from orchestrator.executor.policy import ConcurrencyLimits, Limiters, RetryPolicy
from orchestrator.registry import ToolRegistry
from orchestrator.run_scope import RunScope, enter_scope
from orchestrator.settings import Settings, use_settings
from orchestrator.store import RunStore, StepRecorder

__all__ = ["DocumentActor", "StepActor", "StepReply", "replay", "worker_id"]


def worker_id() -> str:
    """``host:pid`` of this process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def peak_rss_bytes() -> int:
    """This process's peak resident memory (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _registry() -> ToolRegistry:
    from orchestrator.toolbox import default_registry

    return default_registry()


class _Base:
    def __init__(self, settings: Settings, budget_usd: float | None) -> None:
        self.settings = settings
        with use_settings(settings):
            self.registry = _registry()
        self.scope = RunScope(Budget(budget_usd) if budget_usd is not None else None)

    def ready(self) -> str:
        return worker_id()

    def peak_rss(self) -> int:
        return peak_rss_bytes()

    async def close(self) -> None:
        """Close what the actor's scope holds (HTTP clients, model workers) before it is killed."""
        with use_settings(self.settings):
            await self.scope.aclose()


class _StepActor(_Base):
    """Runs single tool calls (a step of ``run``/``ask``, or a step that asked for resources)."""

    async def call(self, tool_name: str, args: Mapping[str, Any], run_id: str, step_id: str, attempt: int) -> StepReply:
        ctx = StepContext(run_id, step_id, attempt)
        with use_settings(self.settings), enter_scope(self.scope):
            token = step_reporter.set(ctx)
            try:
                output = await self.registry.get(tool_name).invoke(args)
            except Exception as exc:
                notes = getattr(exc, "__notes__", None)
                text = str(exc) or type(exc).__name__
                return StepReply(
                    error=f"{', '.join(notes)}: {text}" if notes else text,
                    error_type=type(exc).__name__,
                    retryable=is_retryable(exc),
                )
            finally:
                step_reporter.reset(token)
        return StepReply(output=output, modes=ctx.modes or [], usage=ctx.usage, counts=ctx.notes or {})


class _CollectingStore:
    """Stands in for the run store on a worker: keeps what a StepRecorder writes, for the driver to record.

    The driver owns the store (one SQLite file); the worker records each document's steps and events into
    this, and they travel back with the document's result (:meth:`_DocumentActor.run`). Tool-cache lookups
    miss here (the driver fills the cache from what comes back).
    """

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def record_step(self, step: Any, events: Sequence[Any] = (), *, cache: bool = False) -> None:
        self.calls.append(("step", step, list(events), cache))

    def record_events(self, run_id: str, events: Sequence[Any]) -> None:
        self.calls.append(("events", run_id, list(events)))

    def cached_output(self, tool: str, version: str, key: str) -> None:
        return None


def replay(store: Any, calls: Sequence[tuple[Any, ...]]) -> None:
    """Write into the real run store what a worker's recorder collected (in order, each step whole)."""
    for call in calls:
        if call[0] == "step":
            store.record_step(call[1], call[2], cache=call[3])
        else:
            store.record_events(call[1], call[2])


class _DocumentActor(_Base):
    """Runs whole documents of a batch: the plan is validated here once, then run per document."""

    def __init__(
        self,
        plan: Mapping[str, Any],
        input_name: str,
        inputs: Mapping[str, Any],
        settings: Settings,
        budget_usd: float | None,
        remote_steps: Mapping[str, Any],
        limits: ConcurrencyLimits | None,
        retry: RetryPolicy | None,
        recording: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(settings, budget_usd)
        self.recording = dict(recording) if recording is not None else None
        from orchestrator.cluster.remote import with_remote_steps
        from orchestrator.plan.validate import validate_plan

        with use_settings(settings):
            compiled = validate_plan(plan, self.registry)
        self.compiled = with_remote_steps(compiled, remote_steps)
        self.input_name = input_name
        self.inputs = dict(inputs)
        self.limits = limits or ConcurrencyLimits()
        self.retry = retry
        self.limiters: Limiters | None = None  # made inside the actor's event loop
        self.id = worker_id()

    async def run(self, document: str, completed: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """One document: its batch line, and (when the batch is recorded) what to write into the run store."""
        if self.limiters is None:
            self.limiters = Limiters(self.limits)
        hook: StepRecorder | None = None
        collector = _CollectingStore()
        if self.recording is not None:
            rec = self.recording
            hook = StepRecorder(
                cast(RunStore, collector),
                rec["run_id"],
                document,
                session=rec["session"],
                tool_cache=rec["tool_cache"],
                tools=rec["tools"],
            )
        with use_settings(self.settings), enter_scope(self.scope), use_step_hook(hook):
            record = await run_document(
                self.compiled, document, self.input_name, self.inputs, self.limiters, self.retry, completed
            )
        record.worker = self.id
        return {"record": record.model_dump(mode="json"), "store": collector.calls}

    def pid(self) -> int:
        return os.getpid()


# Options (CPUs, resources, concurrency, restarts) are given per actor by the executor.
StepActor = ray.remote(_StepActor)
DocumentActor = ray.remote(_DocumentActor)

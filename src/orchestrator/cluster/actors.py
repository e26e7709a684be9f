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
from collections.abc import Mapping
from typing import Any

import ray
from pydantic import BaseModel, Field

from orchestrator.batch import run_document
from orchestrator.budget import Budget
from orchestrator.context import StepContext, Usage, _current
from orchestrator.errors import is_retryable
from orchestrator.executor.policy import ConcurrencyLimits, Limiters, RetryPolicy
from orchestrator.registry import ToolRegistry
from orchestrator.run_scope import RunScope, enter_scope
from orchestrator.settings import Settings, use_settings

__all__ = ["DocumentActor", "StepActor", "StepReply", "worker_id"]


def worker_id() -> str:
    """``host:pid`` of this process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def peak_rss_bytes() -> int:
    """This process's peak resident memory (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _registry() -> ToolRegistry:
    from orchestrator.registry import default_registry

    return default_registry()


class StepReply(BaseModel):
    """One remote tool call's answer: its output or its error, and what the tool reported."""

    output: Any = None
    error: str | None = None
    error_type: str | None = None
    retryable: bool = False
    modes: list[str] = Field(default_factory=list)
    usage: Usage | None = None
    counts: dict[str, int] = Field(default_factory=dict)


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
        tool = self.registry.get(tool_name)
        ctx = StepContext(run_id, step_id, attempt)
        with use_settings(self.settings), enter_scope(self.scope):
            token = _current.set(ctx)
            try:
                output = await tool.invoke(args)
            except Exception as exc:
                notes = getattr(exc, "__notes__", None)
                text = str(exc) or type(exc).__name__
                return StepReply(
                    error=f"{', '.join(notes)}: {text}" if notes else text,
                    error_type=type(exc).__name__,
                    retryable=is_retryable(exc),
                )
            finally:
                _current.reset(token)
        return StepReply(output=output, modes=ctx.modes or [], usage=ctx.usage, counts=ctx.notes or {})


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
    ) -> None:
        super().__init__(settings, budget_usd)
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

    async def run(self, document: str) -> dict[str, Any]:
        if self.limiters is None:
            self.limiters = Limiters(self.limits)
        with use_settings(self.settings), enter_scope(self.scope):
            record = await run_document(
                self.compiled, document, self.input_name, self.inputs, self.limiters, self.retry
            )
        record.worker = self.id
        return record.model_dump(mode="json")

    def pid(self) -> int:
        return os.getpid()


# Options (CPUs, resources, concurrency, restarts) are given per actor by the executor.
StepActor = ray.remote(_StepActor)
DocumentActor = ray.remote(_DocumentActor)

"""Running on more than one machine: ``--executor local|ray``.

``local`` runs everything in this process (:class:`orchestrator.batch.LocalExecutor`). ``ray`` runs on a Ray
cluster (``RAY_ADDRESS``), or on a local Ray instance it starts (:class:`RayExecutor`):

- a batch's documents go to *document actors*, async Ray actors holding one CPU each: a whole document
  runs inside one of them, its I/O-bound steps (model calls, MCP) overlapping in the actor's event loop so
  they do not each hold a CPU, its CPU work on the actor's CPU; models and OCR engines load once per actor;
- ``run`` and ``ask`` keep the scheduler on the driver and send each step to a *step actor*: I/O-bound kinds
  to an async actor that reserves no CPU, the others to actors with one CPU each;
- a step declaring ``"resources"`` (``{"GPU": 1}``, a custom resource) runs on a step actor created with
  exactly those resources, so only where they exist;
- a worker that dies mid-document has its documents run again on another one (``RAY_DOCUMENT_RETRIES``);
- Ctrl-C cancels the remote calls and kills every actor this run created.

Ray is imported only when ``--executor ray`` is asked for; without it the error says how to install it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Literal

from orchestrator.errors import InputError

if TYPE_CHECKING:
    from orchestrator.batch import BatchExecutor
    from orchestrator.executor.events import Event, EventHandler, RunResult
    from orchestrator.plan.validate import CompiledPlan

__all__ = ["EXECUTORS", "ExecutorName", "RayExecutor", "check_executor", "open_executor", "run_plan"]

ExecutorName = Literal["local", "ray"]
EXECUTORS: tuple[str, ...] = ("local", "ray")


def check_executor(name: str) -> ExecutorName:
    """The executor's name, or an error naming the choices."""
    if name == "local":
        return "local"
    if name == "ray":
        return "ray"
    raise InputError(f"--executor {name!r}: choose one of {', '.join(EXECUTORS)}")


@asynccontextmanager
async def open_executor(name: str) -> AsyncIterator[BatchExecutor]:
    """The executor called `name`, connected for the block (``ray``: every actor it made is gone after)."""
    if check_executor(name) == "local":
        from orchestrator.batch import LocalExecutor

        yield LocalExecutor()
        return
    from orchestrator.cluster.ray_executor import RayExecutor

    async with RayExecutor() as cluster:
        yield cluster


async def run_plan(
    compiled: CompiledPlan,
    inputs: Mapping[str, Any],
    executor: str,
    *,
    on_event: EventHandler | None = None,
    run_id: str | None = None,
    completed: Mapping[str, Any] | None = None,
) -> tuple[RunResult, list[Event]]:
    """Run one plan: in this process, or with the scheduler here and every step on the Ray cluster (then the
    run store's step hook, the events and the live table work here exactly as in process)."""
    from orchestrator.executor.engine import run_compiled

    if check_executor(executor) == "local":
        return await run_compiled(compiled, inputs, on_event=on_event, run_id=run_id, completed=completed)
    from orchestrator.cluster.ray_executor import RayExecutor

    async with RayExecutor() as cluster:
        remote = cluster.remote_plan(compiled)
        return await run_compiled(remote, inputs, on_event=on_event, run_id=run_id, completed=completed)


def __getattr__(name: str) -> Any:
    if name == "RayExecutor":
        from orchestrator.cluster.ray_executor import RayExecutor

        return RayExecutor
    raise AttributeError(name)

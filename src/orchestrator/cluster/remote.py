"""Tools that run on a step actor: same spec and checks as the real tool, the call goes to the cluster.

:class:`RemoteTool` wraps a registry tool; its :meth:`~RemoteTool.invoke` sends the arguments to a step
actor and reports back the worker modes, usage and counts the tool reported there, so the step's result
is the same as in process. A worker that dies during the call is asked again (a restarted or another
actor), at most ``retries`` times; then the step fails with a retryable error, so the step's own
``retries`` still apply. Cancelling the caller (Ctrl-C, ``on_error: fail``) cancels the remote call.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import ray
from pydantic import BaseModel, Field
from ray.actor import ActorHandle
from ray.exceptions import RayActorError

from orchestrator.context import Usage, current_step, report_count, report_mode, report_usage
from orchestrator.errors import ToolError
from orchestrator.plan.validate import CompiledPlan
from orchestrator.registry import Tool, ToolSpec

__all__ = ["RemoteTool", "StepReply", "resource_key", "with_remote_steps"]

ActorPicker = Callable[[], Any]


class StepReply(BaseModel):
    """One remote tool call's answer: its output or its error, and what the tool reported."""

    output: Any = None
    error: str | None = None
    error_type: str | None = None
    retryable: bool = False
    modes: list[str] = Field(default_factory=list)
    usage: Usage | None = None
    counts: dict[str, int] = Field(default_factory=dict)


def resource_key(resources: Mapping[str, float]) -> str:
    """A stable name for a set of resources (``GPU=1,custom=2``)."""
    return ",".join(f"{name}={amount:g}" for name, amount in sorted(resources.items()))


class RemoteTool:
    """A registry tool whose calls run on Ray step actors."""

    def __init__(self, tool: Tool, actors: Sequence[Any] | ActorPicker, *, retries: int = 2) -> None:
        self._tool = tool
        self._pick: ActorPicker = _round_robin(list(actors)) if isinstance(actors, Sequence) else actors
        self._retries = retries

    @property
    def spec(self) -> ToolSpec:
        return self._tool.spec

    def check_value(self, arg: str, value: Any) -> str | None:
        return self._tool.check_value(arg, value)

    def __repr__(self) -> str:
        return f"RemoteTool({self._tool.spec.name!r})"

    async def invoke(self, args: Mapping[str, Any]) -> Any:
        ctx = current_step()
        run_id, step_id, attempt = (ctx.run_id, ctx.step_id, ctx.attempt) if ctx is not None else ("", "", 1)
        lost = 0
        while True:
            actor = self._pick()
            ref = actor.call.remote(self.spec.name, dict(args), run_id, step_id, attempt)
            try:
                reply: StepReply = await asyncio.wrap_future(ref.future())
                break
            except asyncio.CancelledError:
                ray.cancel(ref)
                raise
            except RayActorError as exc:
                lost += 1
                if lost > self._retries:
                    raise ToolError(
                        f"the Ray worker running {self.spec.name!r} died {lost} times: {exc}", retryable=True
                    ) from None
        for mode in reply.modes:
            report_mode(mode)
        if reply.usage is not None:
            report_usage(reply.usage)
        for name, n in reply.counts.items():
            report_count(name, n)
        if reply.error is not None:
            raise ToolError(reply.error, retryable=reply.retryable, details={"remote_type": reply.error_type})
        return reply.output


def _round_robin(actors: list[Any]) -> ActorPicker:
    position = 0

    def pick() -> Any:
        nonlocal position
        position = (position + 1) % len(actors)
        return actors[position]

    return pick


def with_remote_steps(compiled: CompiledPlan, remote_steps: Mapping[str, Any], *, retries: int = 2) -> CompiledPlan:
    """The plan with the named steps' tools running on the given actors (step id -> actor or picker)."""
    if not remote_steps:
        return compiled
    steps = dict(compiled.steps)
    for step_id, actors in remote_steps.items():
        cs = steps[step_id]
        target = [actors] if isinstance(actors, ActorHandle) else actors
        remote = RemoteTool(cs.tool, target, retries=retries)
        steps[step_id] = dataclasses.replace(cs, tool=remote, direct=None)  # never the local direct call
    return dataclasses.replace(compiled, steps=steps)

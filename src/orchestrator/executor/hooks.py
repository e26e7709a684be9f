"""The step hook: what the executor asks and tells a run store around each step.

A hook is found in a context variable rather than passed down, so every way of running a plan (``run``,
``batch``, a streamed ``ask``, a replanned run) sees the one its caller set with :func:`use_step_hook`;
asyncio copies the context into each task, so a batch sets one hook per document task. Without a hook
the executor pays one attribute check per step.

The executor calls, for each step:

- :meth:`StepHook.lookup` before running it: a recorded result to reuse (``(output,)``) or None to run it;
- :meth:`StepHook.record` once it succeeded or failed, with its whole result. If ``record`` raises, the
  run stops (running steps are cancelled) with the error as its reason: going on would do work that could
  not be resumed;
- :meth:`StepHook.on_event` with every event, like any ``on_event`` handler.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from orchestrator.executor.events import Event, StepResult
    from orchestrator.plan.validate import CompiledStep


class StepHook(Protocol):
    """What the executor consults around every step (see the module docstring)."""

    def lookup(self, step: CompiledStep, outputs: Mapping[str, Any], inputs: Mapping[str, Any]) -> tuple[Any] | None:
        """A recorded output for this step, as a 1-tuple (the output may be None), or None to run the step."""
        ...

    def record(self, step: CompiledStep, result: StepResult) -> None:
        """Keep a step that succeeded or failed (its output, timings, attempts, modes, usage)."""
        ...

    def on_event(self, event: Event) -> None:
        """Every event of the run, in order."""
        ...


_hook: ContextVar[StepHook | None] = ContextVar("orchestrator_step_hook", default=None)


def current_step_hook() -> StepHook | None:
    """The hook set for the code running now, or None."""
    return _hook.get()


@contextmanager
def use_step_hook(hook: StepHook | None) -> Iterator[StepHook | None]:
    """Make `hook` the one runs started inside the block consult (None: no hook)."""
    token = _hook.set(hook)
    try:
        yield hook
    finally:
        _hook.reset(token)


__all__ = ["StepHook", "current_step_hook", "use_step_hook"]

"""Run-wide state: what every step of one run (or every document of one batch) shares.

A :class:`RunScope` holds the run's model :class:`~orchestrator.budget.Budget` and the resources tools
keep for the length of the run (e.g. one :class:`~orchestrator.small_model_worker.SmallModelWorker`, with
its HTTP client, cache and circuit breaker, instead of one per call). The executor opens a scope around
every run (``run_compiled``) and ``orchestrator batch`` around the whole batch; a scope opened inside
another one is the outer one, so the documents of a batch share one budget and one worker.

The scope travels in a context variable: asyncio copies the context into every task it creates, so the
steps of a run see it, while the :class:`RunScope` object itself is shared. When the scope ends its
resources are closed (``aclose``), shielded from cancellation so that Ctrl-C leaves no client open.

Outside any scope :func:`current_scope` is None: a tool then makes (and closes) what it needs per call.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Hashable, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from typing import Any, Protocol, TypeVar

import anyio

from orchestrator.budget import Budget

__all__ = ["RunScope", "current_budget", "current_scope", "enter_scope", "run_scope"]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")


class _Closeable(Protocol):
    async def aclose(self) -> None: ...


class RunScope:
    """The state one run (or batch) shares: its budget and its long-lived resources."""

    __slots__ = ("_budget", "_resources")

    def __init__(self, budget: Budget | None = None) -> None:
        """Start a scope.

        Args:
            budget: The run's budget; None makes one from ``budget_usd`` in the settings on first use.
        """
        self._budget = budget
        self._resources: dict[Hashable, Any] = {}

    @property
    def budget(self) -> Budget:
        """The run's budget (made from the settings in force on first use)."""
        if self._budget is None:
            from orchestrator.settings import current_settings

            self._budget = Budget(current_settings().budget_usd)
        return self._budget

    def with_budget(self, budget: Budget) -> RunScope:
        """This scope with another budget: the same resources (closed with this scope, never with the view).
        The MCP server runs each call of a remote run under that run's remaining budget this way."""
        view = RunScope(budget)
        view._resources = self._resources
        return view

    def resource(self, key: Hashable, factory: Callable[[], _T]) -> _T:
        """The resource stored under `key`, made by `factory` the first time; closed with the scope."""
        if key not in self._resources:
            self._resources[key] = factory()
        value: _T = self._resources[key]
        return value

    async def aclose(self) -> None:
        """Close every resource that has an ``aclose`` (errors are logged, never raised)."""
        resources, self._resources = list(self._resources.values()), {}
        for resource in resources:
            close = getattr(resource, "aclose", None)
            if close is None:
                continue
            try:
                await close()
            except Exception:
                logger.warning("closing %r at the end of the run failed", resource, exc_info=True)


_current: ContextVar[RunScope | None] = ContextVar("orchestrator_run_scope", default=None)


def current_scope() -> RunScope | None:
    """The scope of the run this code runs in, or None outside any run."""
    return _current.get()


def current_budget() -> Budget | None:
    """The budget of the current run (see :class:`RunScope`), or None outside any run."""
    scope = _current.get()
    return scope.budget if scope is not None else None


@contextmanager
def enter_scope(scope: RunScope) -> Iterator[RunScope]:
    """Make `scope` current for the block (tasks created inside inherit it); does not close it."""
    token = _current.set(scope)
    try:
        yield scope
    finally:
        _current.reset(token)


@asynccontextmanager
async def run_scope(budget: Budget | None = None) -> AsyncIterator[RunScope]:
    """A scope for the block: the enclosing one if there is one (and no `budget` is given), else a new one,
    closed when the block ends."""
    outer = _current.get()
    if outer is not None and budget is None:
        yield outer
        return
    scope = RunScope(budget)
    token = _current.set(scope)
    try:
        yield scope
    finally:
        _current.reset(token)
        with anyio.CancelScope(shield=True):
            await scope.aclose()

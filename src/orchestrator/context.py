"""What a running tool can tell the executor about itself: which worker mode answered, and what it cost.

A tool never needs the executor to work (it stays a plain, testable function). When it runs inside a
plan it may call :func:`report_mode` and :func:`report_usage`; the executor copies what was reported into
the step's events and result. Outside a run both calls do nothing.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Protocol

from pydantic import BaseModel, ConfigDict


class Usage(BaseModel):
    """Model usage, summed over calls: tokens, calls and cost in US dollars."""

    model_config = ConfigDict(frozen=True)

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            calls=self.calls + other.calls,
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cost_usd=self.cost_usd + other.cost_usd,
        )

    @property
    def is_zero(self) -> bool:
        return self.calls == 0 and self.input_tokens == 0 and self.output_tokens == 0 and self.cost_usd == 0.0


class StepContext:
    """Per-attempt scratchpad the executor reads after a tool returns (a plain class: one per step attempt)."""

    __slots__ = ("attempt", "modes", "notes", "run_id", "step_id", "usage")

    def __init__(self, run_id: str, step_id: str, attempt: int = 1):
        self.run_id = run_id
        self.step_id = step_id
        self.attempt = attempt
        self.modes: list[str] | None = None
        self.usage: Usage | None = None
        self.notes: dict[str, int] | None = None

    def add_mode(self, mode: str) -> None:
        if self.modes is None:
            self.modes = [mode]
        elif mode not in self.modes:
            self.modes.append(mode)

    def add_usage(self, usage: Usage) -> None:
        self.usage = usage if self.usage is None else self.usage + usage

    def add_count(self, name: str, n: int) -> None:
        if self.notes is None:
            self.notes = {}
        self.notes[name] = self.notes.get(name, 0) + n


class Reporter(Protocol):
    """Where reports go: a StepContext (one attempt of a step), or a step's result directly when the step
    has a single attempt (the executor's fast path, which then allocates no StepContext)."""

    def add_mode(self, mode: str) -> None: ...

    def add_usage(self, usage: Usage) -> None: ...

    def add_count(self, name: str, n: int) -> None: ...


step_reporter: ContextVar[Reporter | None] = ContextVar("orchestrator_step", default=None)
"""Where the step running in this task reports (set by the executors and by the MCP server around a tool call;
None outside a step). Tools use :func:`report_mode` / :func:`report_usage` rather than this."""


def current_step() -> StepContext | None:
    """The context of the step attempt running in this task (for tools that take a StepContext), or None."""
    ctx = step_reporter.get()
    return ctx if isinstance(ctx, StepContext) else None


def report_mode(mode: str) -> None:
    """Record which worker mode produced (part of) this step's result, e.g. ``keyword`` or ``ollama:phi3``."""
    sink = step_reporter.get()
    if sink is not None:
        sink.add_mode(mode)


def report_usage(usage: Usage) -> None:
    """Add model usage (tokens, calls, cost) to this step's account."""
    sink = step_reporter.get()
    if sink is not None:
        sink.add_usage(usage)


def report_count(name: str, n: int = 1) -> None:
    """Count something about this step, e.g. how many items each cascade tier answered."""
    sink = step_reporter.get()
    if sink is not None:
        sink.add_count(name, n)

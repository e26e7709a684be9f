"""What a running tool can tell the executor about itself: which worker mode answered, and what it cost.

A tool never needs the executor to work (it stays a plain, testable function). When it runs inside a
plan it may call :func:`report_mode` and :func:`report_usage`; the executor copies what was reported into
the step's events and result. Outside a run both calls do nothing.
"""

from __future__ import annotations

from contextvars import ContextVar

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

    def add_usage(self, usage: Usage) -> None:
        self.usage = usage if self.usage is None else self.usage + usage


_current: ContextVar[StepContext | None] = ContextVar("orchestrator_step", default=None)


def current_step() -> StepContext | None:
    """The context of the step attempt running in this task, or None outside a run."""
    return _current.get()


def report_mode(mode: str) -> None:
    """Record which worker mode produced (part of) this step's result, e.g. ``keyword`` or ``ollama:phi3``."""
    ctx = _current.get()
    if ctx is None:
        return
    if ctx.modes is None:
        ctx.modes = [mode]
    elif mode not in ctx.modes:
        ctx.modes.append(mode)


def report_usage(usage: Usage) -> None:
    """Add model usage (tokens, calls, cost) to this step's account."""
    ctx = _current.get()
    if ctx is not None:
        ctx.add_usage(usage)


def report_count(name: str, n: int = 1) -> None:
    """Count something about this step, e.g. how many items each cascade tier answered."""
    ctx = _current.get()
    if ctx is not None:
        if ctx.notes is None:
            ctx.notes = {}
        ctx.notes[name] = ctx.notes.get(name, 0) + n

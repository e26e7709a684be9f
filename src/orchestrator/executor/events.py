"""The typed event stream of a run, and the run result built from it.

Events are small slotted dataclasses, treated as immutable (not `frozen=True`: a frozen dataclass's
`__init__` costs several times more, and two are built per step on the hot path); the run result is a
Pydantic model (what `orchestrator run --json` prints). `t` is seconds since the run started.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field

from orchestrator.context import Usage


@dataclass(slots=True)
class Event:
    type: ClassVar[str] = "event"
    run_id: str
    t: float

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["type"] = self.type
        return data


@dataclass(slots=True)
class RunStarted(Event):
    type: ClassVar[str] = "run_started"
    goal: str
    steps: int


@dataclass(slots=True)
class StepStarted(Event):
    type: ClassVar[str] = "step_started"
    step_id: str
    tool: str
    kind: str


@dataclass(slots=True)
class StepRetried(Event):
    type: ClassVar[str] = "step_retried"
    step_id: str
    attempt: int
    error: str
    delay_s: float
    item_index: int | None = None


@dataclass(slots=True)
class StepFinished(Event):
    type: ClassVar[str] = "step_finished"
    step_id: str
    attempts: int
    duration_s: float
    modes: tuple[str, ...] = ()
    usage: Usage | None = None
    items: int | None = None


@dataclass(slots=True)
class StepFailed(Event):
    type: ClassVar[str] = "step_failed"
    step_id: str
    attempts: int
    duration_s: float
    error: str
    error_type: str
    retryable: bool


@dataclass(slots=True)
class StepSkipped(Event):
    type: ClassVar[str] = "step_skipped"
    step_id: str
    reason: str


@dataclass(slots=True)
class StepCancelled(Event):
    type: ClassVar[str] = "step_cancelled"
    step_id: str
    reason: str


@dataclass(slots=True)
class RunFinished(Event):
    type: ClassVar[str] = "run_finished"
    status: str
    duration_s: float
    usage: Usage | None = None


@dataclass(slots=True)
class RunNote(Event):
    """Something worth telling the user that is not about one step (e.g. which planner was chosen)."""

    type: ClassVar[str] = "note"
    message: str
    data: dict[str, Any] = field(default_factory=dict)


EventHandler = Callable[[Event], None]


def as_handlers(on_event: EventHandler | Iterable[EventHandler] | None) -> tuple[EventHandler, ...]:
    """An `on_event` argument (one handler, several, or None) as a tuple of handlers."""
    if on_event is None:
        return ()
    if callable(on_event):
        return (on_event,)
    return tuple(on_event)


class _NoCounts(dict[str, int]):
    """The shared, read-only empty `counts`: most steps count nothing, and a dict per step costs an
    allocation on the scheduler's hot path. The executor replaces it (never mutates it) when a tool counts."""

    def _refuse(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("StepResult.counts is read-only here; assign a new dict instead")

    __setitem__ = __delitem__ = update = setdefault = pop = popitem = clear = _refuse  # type: ignore[assignment]


_NO_COUNTS: Mapping[str, int] = _NoCounts()

StepStatus = Literal["succeeded", "failed", "skipped", "cancelled", "pending"]
RunStatus = Literal["succeeded", "partial", "failed", "cancelled"]


@dataclass(slots=True)
class StepResult:
    """How one step went. A slotted dataclass (built once per step); Pydantic validates and dumps it
    as part of :class:`RunResult`. Times are seconds after the run started."""

    id: str
    tool: str
    kind: str
    status: StepStatus
    output: Any = None
    error: str | None = None
    error_type: str | None = None
    started_s: float | None = None
    finished_s: float | None = None
    duration_s: float | None = None
    attempts: int = 0
    modes: tuple[str, ...] = ()  # which worker modes answered
    usage: Usage | None = None
    counts: Mapping[str, int] = field(default_factory=lambda: _NO_COUNTS)  # e.g. items per cascade tier

    # A single-attempt step reports straight into its result (see orchestrator.context.Reporter).
    def add_mode(self, mode: str) -> None:
        if mode not in self.modes:
            self.modes = (*self.modes, mode)

    def add_usage(self, usage: Usage) -> None:
        self.usage = usage if self.usage is None else self.usage + usage

    def add_count(self, name: str, n: int) -> None:
        counts = dict(self.counts)
        counts[name] = counts.get(name, 0) + n
        self.counts = counts


class RunResult(BaseModel):
    """Everything about a run: each step's status, output, error and timing, and the plan output."""

    run_id: str
    goal: str = ""
    status: RunStatus
    output: Any = None
    started_at: datetime
    duration_s: float
    steps: dict[str, StepResult]
    usage: Usage = Field(default_factory=Usage)
    error: str | None = Field(default=None, description="why the run stopped, when it did")

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"

    def failed_steps(self) -> list[StepResult]:
        return [s for s in self.steps.values() if s.status == "failed"]

"""What planning cost and how it went: one record per model call, the totals, and the planner's notes.

Every planner call becomes a :class:`~orchestrator.executor.events.RunNote` in the event stream,
``data={"kind": "planner_call", "purpose", "provider", "model", "input_tokens", "output_tokens",
"latency_s", "cost_usd", "attempt"}``. Other notes have their own ``kind``: ``provider`` (which planner
and why), ``library`` (a stored plan was reused), ``rejected`` (the validator's issues, sent back),
``step_planned`` (a streamed step was scheduled), ``plan_complete``, ``fallback`` and ``replan``.

How a run carries the planner's usage: :attr:`PlannedRun.result` is the executor's
:class:`~orchestrator.executor.events.RunResult` with the planner's usage **added** to ``usage`` (so
``result.usage`` is what the whole request cost), while :attr:`PlannedRun.planning` keeps the planner's
part apart (``planning.usage``, ``planning.calls``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from time import perf_counter
from typing import Any

from orchestrator.context import Usage
from orchestrator.executor.events import EventHandler, RunNote, RunResult
from orchestrator.ids import new_run_id
from orchestrator.plan.issues import PlanIssue
from orchestrator.plan.model import Plan
from orchestrator.plan.validate import CompiledPlan
from orchestrator.providers.base import Completion

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PlannerCall:
    """One call of the planner model."""

    purpose: str
    provider: str
    model: str
    input_tokens: int
    output_tokens: int
    latency_s: float
    cost_usd: float
    attempt: int
    streamed: bool = False

    def describe(self) -> str:
        """``planner call (plan): openai gpt-4o, 1,234 in / 456 out tokens, 3.21 s, $0.0076``."""
        return (
            f"planner call ({self.purpose}): {self.provider} {self.model}, {self.input_tokens:,} in / "
            f"{self.output_tokens:,} out tokens, {self.latency_s:.2f} s, ${self.cost_usd:.4f}"
        )


@dataclass
class PlanningReport:
    """How a plan was made.

    Attributes:
        source: ``model``, ``library`` (exact match) or ``library-similar``.
        provider: the planner provider used (``library`` when no model was asked).
        model: the model id (None for the library).
        choice_reason: why that provider was chosen.
        calls: every model call, in order.
        attempts: model answers needed for the first valid plan (0 from the library).
        replans: how many times the plan was revised after a failure.
        refusals: answers in which the model declined the request (a second one ends planning).
        reused_steps: step ids whose outputs were reused instead of run again.
        streamed_steps: steps that started while an answer streamed that then proved invalid (id -> tool,
            status); only read-only tools start that early.
        notes: every note emitted, in order.
    """

    source: str = "model"
    provider: str = ""
    model: str | None = None
    choice_reason: str = ""
    calls: list[PlannerCall] = field(default_factory=list)
    attempts: int = 0
    replans: int = 0
    refusals: int = 0
    reused_steps: list[str] = field(default_factory=list)
    streamed_steps: dict[str, dict[str, str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def usage(self) -> Usage:
        """Tokens, calls and cost of the planner calls."""
        total = Usage()
        for call in self.calls:
            total = total + Usage(
                calls=1, input_tokens=call.input_tokens, output_tokens=call.output_tokens, cost_usd=call.cost_usd
            )
        return total

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "source": self.source,
            "provider": self.provider,
            "model": self.model,
            "choice_reason": self.choice_reason,
            "attempts": self.attempts,
            "replans": self.replans,
            "refusals": self.refusals,
            "reused_steps": list(self.reused_steps),
            "streamed_steps": {sid: dict(info) for sid, info in self.streamed_steps.items()},
            "usage": self.usage.model_dump(),
            "calls": [call.__dict__ for call in self.calls],
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class PlannedRun:
    """A request planned and run: the final plan, the run result (planner usage included), the report."""

    plan: Plan
    result: RunResult
    planning: PlanningReport

    @property
    def ok(self) -> bool:
        """Whether every step succeeded."""
        return self.result.ok


class Session:
    """Notes and usage for one planning request, sent to the event handlers as RunNote events."""

    def __init__(self, handlers: Iterable[EventHandler] = (), *, run_id: str | None = None) -> None:
        self.run_id = run_id or new_run_id()
        self.handlers: tuple[EventHandler, ...] = tuple(handlers)
        self.report = PlanningReport()
        self._t0 = perf_counter()

    def note(self, message: str, kind: str, **data: Any) -> None:
        """Emit one planner note."""
        self.report.notes.append(message)
        logger.info("%s", message)
        event = RunNote(self.run_id, perf_counter() - self._t0, message, {"kind": kind, **data})
        for handler in self.handlers:
            try:
                handler(event)
            except Exception:  # an observer must never break planning
                logger.exception("event handler failed on a planner note")

    def record(self, completion: Completion, *, purpose: str, attempt: int, streamed: bool = False) -> PlannerCall:
        """Account for one model call and emit its note."""
        call = PlannerCall(
            purpose=purpose,
            provider=completion.provider,
            model=completion.model,
            input_tokens=completion.usage.input_tokens,
            output_tokens=completion.usage.output_tokens,
            latency_s=round(completion.latency_s, 4),
            cost_usd=completion.usage.cost_usd,
            attempt=attempt,
            streamed=streamed,
        )
        self.report.calls.append(call)
        self.note(call.describe(), "planner_call", **call.__dict__)
        return call

    def announce(self, compiled: CompiledPlan, reused: Iterable[str] = ()) -> None:
        """A ``step_planned`` note per step of a plan known before it runs (streamed steps are noted on arrival)."""
        done = set(reused)
        for sid, cs in compiled.steps.items():
            self.note(
                f"planner: step {sid!r} ({cs.tool_name}) planned" + ("; its output is reused" if sid in done else ""),
                "step_planned",
                step_id=sid,
                tool=cs.tool_name,
                tool_kind=cs.kind,
                deps=list(cs.deps),
                reused=sid in done,
            )

    def rejected(self, attempt: int, issues: Sequence[PlanIssue]) -> None:
        """Note that an answer was rejected, and why (the issues go back to the model)."""
        count = len(issues)
        self.note(
            f"planner: answer {attempt} rejected ({count} problem{'s' if count != 1 else ''}: "
            f"{issues[0].render() if issues else '?'}); sending the problems back",
            "rejected",
            attempt=attempt,
            issues=[issue.render() for issue in issues],
        )

    def with_usage(self, result: RunResult) -> RunResult:
        """The run result with the planner's usage added to its usage."""
        usage = self.report.usage
        if usage.is_zero:
            return result
        return result.model_copy(update={"usage": result.usage + usage})

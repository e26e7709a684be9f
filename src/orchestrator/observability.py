"""Show a run to people: a live step table rendered from the event stream, and a readable summary."""

from __future__ import annotations

import json
import logging
from types import TracebackType
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.pretty import Pretty
from rich.table import Table
from rich.text import Text

from orchestrator.executor.events import (
    Event,
    RunNote,
    RunResult,
    StepCancelled,
    StepFailed,
    StepFinished,
    StepRetried,
    StepSkipped,
    StepStarted,
)
from orchestrator.plan.validate import CompiledPlan

_STYLE = {
    "pending": ("·", "dim"),
    "running": ("▶", "yellow"),
    "succeeded": ("✓", "green"),
    "failed": ("✗", "red"),
    "skipped": ("↷", "magenta"),
    "cancelled": ("■", "red"),
}


def configure_logging(verbose: bool = False) -> None:
    """Library modules only log; the CLI decides where logs go (stderr, so stdout stays clean)."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


class StepTable:
    """A live table of a plan's steps, fed with events."""

    def __init__(self, compiled: CompiledPlan, console: Console, *, title: str | None = None):
        self.compiled = compiled
        self.console = console
        self.title = title or compiled.plan.goal or "run"
        self.status = dict.fromkeys(compiled.steps, "pending")
        self.detail: dict[str, str] = dict.fromkeys(compiled.steps, "")
        self.notes: list[str] = []
        self._live = Live(self.render(), console=console, refresh_per_second=8, transient=False)

    def __enter__(self) -> StepTable:
        self._live.__enter__()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._live.update(self.render())
        self._live.__exit__(exc_type, exc, tb)

    def __call__(self, event: Event) -> None:
        self.track(event)
        self._live.update(self.render())

    def track(self, event: Event) -> None:
        """Update the table's state from an event, without drawing (e.g. for --json runs)."""
        if isinstance(event, StepStarted):
            self.status[event.step_id] = "running"
        elif isinstance(event, StepFinished):
            self.status[event.step_id] = "succeeded"
            extra = f" · {event.items} items" if event.items is not None else ""
            modes = f" · {', '.join(event.modes)}" if event.modes else ""
            cost = f" · ${event.usage.cost_usd:.4f}" if event.usage and event.usage.cost_usd else ""
            self.detail[event.step_id] = f"{event.duration_s:.2f}s{extra}{modes}{cost}"
        elif isinstance(event, StepFailed):
            self.status[event.step_id] = "failed"
            self.detail[event.step_id] = event.error
        elif isinstance(event, StepSkipped):
            self.status[event.step_id] = "skipped"
            self.detail[event.step_id] = event.reason
        elif isinstance(event, StepCancelled):
            self.status[event.step_id] = "cancelled"
            self.detail[event.step_id] = event.reason
        elif isinstance(event, StepRetried):
            self.detail[event.step_id] = f"retry {event.attempt} after: {event.error}"
        elif isinstance(event, RunNote):
            self.notes.append(event.message)

    def render(self) -> RenderableType:
        table = Table(title=self.title, title_justify="left", expand=False, show_edge=False)
        table.add_column("", width=1)
        table.add_column("step")
        table.add_column("tool")
        table.add_column("worker")
        table.add_column("after")
        table.add_column("detail", overflow="fold", max_width=70)
        for sid, cs in self.compiled.steps.items():
            symbol, style = _STYLE[self.status[sid]]
            table.add_row(
                Text(symbol, style=style),
                sid,
                cs.tool.spec.name,
                cs.tool.spec.kind.value,
                ", ".join(cs.deps) or "-",
                Text(self.detail[sid], style="red" if self.status[sid] == "failed" else ""),
            )
        if not self.notes:
            return table
        return Group(*(Text(f"· {n}", style="cyan") for n in self.notes), table)


def describe_interrupted(table: StepTable) -> str:
    """One line for a run stopped by Ctrl-C: what finished, what was cancelled, what never started."""
    by_status: dict[str, list[str]] = {}
    for sid, status in table.status.items():
        by_status.setdefault(status, []).append(sid)
    parts = [f"{len(by_status.get('succeeded', []))} finished"]
    for status in ("cancelled", "failed", "skipped", "pending"):
        ids = by_status.get(status)
        if ids:
            label = "not started" if status == "pending" else status
            parts.append(f"{len(ids)} {label} ({', '.join(ids[:6])}{', ...' if len(ids) > 6 else ''})")
    return "interrupted: " + "; ".join(parts) + ". Nothing is left running."


def render_output(result: RunResult, console: Console) -> None:
    """Print a run's outcome for people: status line, problems, then the plan output."""
    counts: dict[str, int] = {}
    for step in result.steps.values():
        counts[step.status] = counts.get(step.status, 0) + 1
    parts = [f"{n} {status}" for status, n in counts.items()]
    style = {"succeeded": "green", "partial": "yellow"}.get(result.status, "red")
    cost = f", ${result.usage.cost_usd:.4f}" if result.usage.cost_usd else ""
    console.print(
        Text(f"run {result.status}", style=f"bold {style}"),
        Text(f"in {result.duration_s:.2f}s ({', '.join(parts)}{cost})"),
    )
    for step in result.steps.values():
        if step.status in ("failed", "skipped", "cancelled") and step.error:
            console.print(Text(f"  {step.id}: {step.status}: {step.error}", style="red"))
    if result.output is not None:
        console.print(Panel(_pretty(result.output), title="output", title_align="left"))


def _pretty(value: Any) -> RenderableType:
    if isinstance(value, str):
        return Text(value)
    try:
        json.dumps(value)
    except TypeError:
        return Pretty(value)
    return Pretty(value, expand_all=False, max_length=20, max_string=400)

"""Show a run to people: a live step table rendered from the event stream, and a readable summary."""

from __future__ import annotations

import json
from dataclasses import dataclass
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
from orchestrator.logs import configure_logging as configure_logging
from orchestrator.plan.validate import CompiledPlan

_STYLE = {
    "pending": ("·", "dim"),
    "running": ("▶", "yellow"),
    "succeeded": ("✓", "green"),
    "failed": ("✗", "red"),
    "skipped": ("↷", "magenta"),
    "cancelled": ("■", "red"),
}


@dataclass
class _Row:
    tool: str
    kind: str
    deps: str
    status: str = "pending"
    detail: str = ""


class StepTable:
    """A live table of a run's steps, fed with events.

    Rows come from a compiled plan given up front (:meth:`add_plan`) or appear as steps arrive: from the
    planner's ``step_planned`` notes while a streamed plan is being written, or from the step events
    themselves. Other notes (which planner and why, each call's cost, reuse, replans) are listed above.

    Args:
        console: where to draw (stderr keeps stdout clean for results).
        title: the table's title.
        live: redraw in place; off for logs and pipes (the table is printed once at the end).
        compiled: a plan whose steps to show at once, as pending.
    """

    def __init__(
        self, console: Console, *, title: str = "run", live: bool = True, compiled: CompiledPlan | None = None
    ):
        self.console = console
        self.title = title
        self.rows: dict[str, _Row] = {}
        self.notes: list[str] = []
        self._live: Live | None = None
        if compiled is not None:
            self.add_plan(compiled)
        if live:
            self._live = Live(self.render(), console=console, refresh_per_second=8, transient=False)

    @property
    def status(self) -> dict[str, str]:
        """Each step's status so far."""
        return {sid: row.status for sid, row in self.rows.items()}

    def __enter__(self) -> StepTable:
        if self._live is not None:
            self._live.__enter__()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._live is not None:
            self._live.update(self.render())
            self._live.__exit__(exc_type, exc, tb)
        else:
            self.console.print(self.render())

    def __call__(self, event: Event) -> None:
        if self.track(event) and self._live is not None:
            self._live.update(self.render())

    def add_plan(self, compiled: CompiledPlan) -> None:
        """Show every step of a plan known before it runs, as pending."""
        for sid, cs in compiled.steps.items():
            self._row(sid, cs.tool_name, cs.kind).deps = ", ".join(cs.deps) or "-"
        if self._live is not None:
            self._live.update(self.render())

    def track(self, event: Event) -> bool:
        """Update the state from an event without drawing; whether anything shown changed."""
        if isinstance(event, RunNote):
            self._note(event)
        elif isinstance(event, StepStarted):
            self._row(event.step_id, event.tool, event.kind).status = "running"
        elif isinstance(event, StepFinished):
            row = self._row(event.step_id)
            row.status = "succeeded"
            extra = f" · {event.items} items" if event.items is not None else ""
            modes = f" · {', '.join(event.modes)}" if event.modes else ""
            cost = f" · ${event.usage.cost_usd:.4f}" if event.usage and event.usage.cost_usd else ""
            row.detail = f"{event.duration_s:.2f}s{extra}{modes}{cost}"
        elif isinstance(event, StepFailed):
            row = self._row(event.step_id)
            row.status, row.detail = "failed", event.error
        elif isinstance(event, StepSkipped):
            row = self._row(event.step_id)
            row.status, row.detail = "skipped", event.reason
        elif isinstance(event, StepCancelled):
            row = self._row(event.step_id)
            row.status, row.detail = "cancelled", event.reason
        elif isinstance(event, StepRetried):
            self._row(event.step_id).detail = f"retry {event.attempt} after: {event.error}"
        else:
            return False
        return True

    def _note(self, event: RunNote) -> None:
        data = event.data
        if data.get("kind") == "step_planned":
            sid = str(data.get("step_id"))
            row = self._row(sid, str(data.get("tool", "")), str(data.get("tool_kind", "")))
            row.deps = ", ".join(str(d) for d in data.get("deps", [])) or "-"
            if data.get("reused"):
                row.status, row.detail = "succeeded", "reused"
            return
        self.notes.append(event.message)

    def _row(self, sid: str, tool: str = "", kind: str = "") -> _Row:
        row = self.rows.get(sid)
        if row is None:
            row = self.rows[sid] = _Row(tool, kind, "-")
        else:
            row.tool = row.tool or tool
            row.kind = row.kind or kind
        return row

    def render(self) -> RenderableType:
        """The notes, then the table."""
        table = Table(title=self.title, title_justify="left", expand=False, show_edge=False)
        table.add_column("", width=1)
        for name in ("step", "tool", "worker", "after"):
            table.add_column(name)
        table.add_column("detail", overflow="fold", max_width=70)
        for sid, row in self.rows.items():
            symbol, style = _STYLE.get(row.status, _STYLE["pending"])
            detail = Text(row.detail, style="red" if row.status == "failed" else "")
            table.add_row(Text(symbol, style=style), sid, row.tool, row.kind, row.deps, detail)
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

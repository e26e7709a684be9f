"""Show planning and running to people: a live step table that grows as the plan streams in, and a plan tree.

:class:`LiveSteps` is an event handler. Rows come from the planner's ``step_planned`` notes (a step was
written and scheduled) and from step events; planner notes (which provider and why, each call's tokens
and cost, reuse, replans) are listed above the table. It renders like
:class:`~orchestrator.observability.StepTable`, which needs the whole plan up front.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from orchestrator.executor.events import (
    Event,
    RunNote,
    StepFailed,
    StepFinished,
    StepRetried,
    StepSkipped,
    StepStarted,
)
from orchestrator.plan.model import Plan
from orchestrator.plan.validate import CompiledPlan
from orchestrator.planner.replan import dependencies
from orchestrator.registry import ToolRegistry

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


class LiveSteps:
    """A live table of steps that appear as the planner writes them, fed with events.

    Args:
        console: where to draw (stderr keeps stdout clean for results).
        title: the table's title.
        live: redraw in place (turn off for logs and pipes: rows are printed once at the end).
    """

    def __init__(self, console: Console, *, title: str = "plan", live: bool = True) -> None:
        self.console = console
        self.title = title
        self.rows: dict[str, _Row] = {}
        self.notes: list[str] = []
        self._live: Live | None = (
            Live(self.render(), console=console, refresh_per_second=8, transient=False) if live else None
        )

    def __enter__(self) -> LiveSteps:
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
        elif isinstance(event, StepRetried):
            self._row(event.step_id).detail = f"retry {event.attempt} after: {event.error}"
        else:
            return
        if self._live is not None:
            self._live.update(self.render())

    def add_plan(self, compiled: CompiledPlan) -> None:
        """Show every step of a plan known before it runs, as pending."""
        for sid, cs in compiled.steps.items():
            self._row(sid, cs.tool_name, cs.kind).deps = ", ".join(cs.deps) or "-"
        if self._live is not None:
            self._live.update(self.render())

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
        return Group(*(Text(f"· {n}", style="cyan") for n in self.notes), table)


def plan_tree(plan: Plan | CompiledPlan, registry: ToolRegistry | None = None) -> Tree:
    """The plan as a tree: inputs, then each step (tool, worker kind, dependencies), then the output."""
    compiled = plan if isinstance(plan, CompiledPlan) else None
    model = plan.plan if isinstance(plan, CompiledPlan) else plan
    tree = Tree(Text(model.goal or "plan", style="bold"))
    if model.inputs:
        inputs = tree.add(Text("inputs", style="cyan"))
        for name, spec in model.inputs.items():
            default = f" = {spec.default!r}" if spec.default is not None else ""
            inputs.add(f"{name}: {spec.type}{default}")
    steps = tree.add(Text(f"steps ({len(model.steps)})", style="cyan"))
    for step in model.steps:
        kind = ""
        if compiled is not None:
            kind = compiled.steps[step.id].kind
        elif registry is not None and step.tool in registry:
            kind = registry.get(step.tool).spec.kind.value
        deps = list(compiled.steps[step.id].deps) if compiled is not None else dependencies(step)
        label = Text.assemble(
            (step.id, "bold"),
            "  ",
            (step.tool, "green"),
            (f"  [{kind}]" if kind else "", "yellow"),
            (f"  after {', '.join(deps)}" if deps else "  (starts at once)", "dim"),
        )
        node = steps.add(label)
        if step.for_each is not None:
            node.add(Text(f"for each element of {step.for_each}", style="dim"))
    if model.output is not None:
        tree.add(Text(f"output: {model.output}", style="cyan"))
    return tree


__all__ = ["LiveSteps", "plan_tree"]

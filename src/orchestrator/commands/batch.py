"""`orchestrator batch`: one plan over many documents, with a progress bar."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from orchestrator.commands._common import McpConfigOpt, announce_small_model, run_async, stderr, use_mcp_config
from orchestrator.errors import InputError

if TYPE_CHECKING:  # loaded when the command runs, not for --help
    from rich.progress import Progress

    from orchestrator.plan.validate import CompiledPlan
    from orchestrator.registry import ToolRegistry


def register(app: typer.Typer) -> None:
    app.command()(batch)


def batch(
    plan: Annotated[str, typer.Argument(help="a plan file (JSON), or a request in plain language to plan once")],
    source: Annotated[str, typer.Argument(help="a folder, a glob (quote it) or a file")],
    input_name: Annotated[str, typer.Option("--input", help="the plan input each document's path is bound to")],
    out: Annotated[Path | None, typer.Option(help="write JSON lines here (default: stdout)")] = None,
    concurrency: Annotated[int, typer.Option(min=1, max=256, help="documents at a time")] = 4,
    set_inputs: Annotated[
        list[str] | None, typer.Option("--set", help="another plan input as NAME=VALUE (repeatable)")
    ] = None,
    resume: Annotated[bool, typer.Option(help="skip documents already written as succeeded in --out")] = False,
    mcp_config: McpConfigOpt = None,
) -> None:
    """Run one plan over every document (planned or loaded once), one JSON line per document."""
    from orchestrator.batch import find_documents, resume_set, run_batch
    from orchestrator.executor import parse_input_pairs
    from orchestrator.plan.validate import load_plan
    from orchestrator.toolbox import default_registry

    use_mcp_config(mcp_config)
    tools = default_registry()
    plan_file = Path(plan).is_file() or plan.endswith(".json")
    if plan_file:  # a broken plan file is reported before anything else
        compiled = load_plan(Path(plan), tools)
    documents = find_documents(source)
    if not documents:
        raise InputError(f"{source}: no documents found")
    if plan_file:
        extra = parse_input_pairs(set_inputs or [], compiled.plan.inputs)
    else:
        extra = parse_input_pairs(set_inputs or [], {})
        compiled = run_async(_plan_once(plan, {input_name: str(documents[0]), **extra}, tools))
    skip = resume_set(out, resume)
    announce_small_model()
    sink = out.open("a" if resume else "w", encoding="utf-8") if out is not None else sys.stdout
    try:
        with _progress() as progress:
            task = progress.add_task("documents", total=len(documents), completed=len(skip & set(map(str, documents))))

            def advance(record: Any) -> None:
                progress.advance(task)
                if record.status != "succeeded":
                    progress.console.print(f"[red]✗[/] {record.document}: {record.error}", markup=True, highlight=False)

            summary = run_async(
                run_batch(
                    compiled,
                    documents,
                    input_name,
                    inputs=extra,
                    concurrency=concurrency,
                    out=sink,
                    skip=skip,
                    on_document=advance,
                )
            )
    finally:
        if out is not None:
            sink.close()
    summary.out = str(out) if out else None
    stderr.print(
        f"{summary.succeeded} succeeded, {summary.failed} failed, {summary.skipped} already done "
        f"of {summary.total} in {summary.duration_s:.1f}s ({summary.docs_per_s:.2f} docs/s)"
        + (f", ${summary.usage.cost_usd:.4f}" if summary.usage.cost_usd else "")
        + (f"; results in {out}" if out else "")
    )
    raise typer.Exit(0 if summary.failed == 0 else 1)


async def _plan_once(request: str, context: dict[str, Any], tools: ToolRegistry) -> CompiledPlan:
    """Plan the whole batch with one planner call (none when the plan library knows the request)."""
    from orchestrator.plan.validate import validate_plan
    from orchestrator.planner import LargePlanner

    async with LargePlanner(registry=tools) as planner:
        planned, report = await planner.plan_with_report(request, context)
    cost = f", ${report.usage.cost_usd:.4f}" if report.usage.cost_usd else ""
    stderr.print(
        f"{report.choice_reason}; planned once for the whole batch ({len(report.calls)} model call(s){cost})",
        markup=False,
        highlight=False,
    )
    return validate_plan(planned, tools)


def _progress() -> Progress:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        Task,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class RateColumn(ProgressColumn):
        """Documents per second."""

        def render(self, task: Task) -> Text:
            speed = task.finished_speed or task.speed
            return Text("-- docs/s" if speed is None else f"{speed:.2f} docs/s", style="cyan")

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=stderr,
    )

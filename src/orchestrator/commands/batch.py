"""`orchestrator batch`: one plan over many documents, with a progress bar."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from orchestrator.commands._common import (
    ExecutorOpt,
    McpConfigOpt,
    announce_small_model,
    check_settings,
    run_async,
    stderr,
    use_mcp_config,
)
from orchestrator.commands._store import (
    NoStoreOpt,
    ReportOpt,
    finish_recording,
    mark_interrupted,
    plan_data,
    start_recording,
)
from orchestrator.errors import InputError

if TYPE_CHECKING:  # loaded when the command runs, not for --help
    from rich.progress import Progress

    from orchestrator.plan.validate import CompiledPlan
    from orchestrator.registry import ToolRegistry
    from orchestrator.store import StoreRun


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
    run_id: Annotated[
        str | None,
        typer.Option("--run-id", help="record under this run id; if it exists, continue that run", show_default=False),
    ] = None,
    no_store: NoStoreOpt = False,
    report: ReportOpt = None,
    executor: ExecutorOpt = "local",
) -> None:
    """Run one plan over every document (planned or loaded once), one JSON line per document."""
    from orchestrator.batch import DocumentSource, resume_set
    from orchestrator.cluster import check_executor
    from orchestrator.executor import parse_input_pairs
    from orchestrator.plan.validate import load_plan
    from orchestrator.toolbox import default_registry

    use_mcp_config(mcp_config)
    check_settings()
    check_executor(executor)

    if run_id is not None and no_store:
        raise InputError("--run-id needs the run store: drop --no-store")
    if run_id is not None and not no_store:
        from orchestrator.store import open_store

        store = open_store()
        existing = store.get_run(run_id)
        if existing is not None:
            stderr.print(f"run {run_id} exists: continuing it", markup=False)
            continue_batch(existing, store, report=report, executor=executor)
            return
    tools = default_registry()
    plan_file = Path(plan).is_file() or plan.endswith(".json")
    if plan_file:  # a broken plan file, or an input name it does not have, is reported before anything else
        compiled = load_plan(Path(plan), tools)
        check_input_name(compiled, input_name)
    documents = DocumentSource(source)  # read lazily: a cheap count for the progress bar, then one by one
    total = documents.count()
    if not total:
        raise InputError(f"{source}: no documents found")
    extra = parse_input_pairs(set_inputs or [], compiled.inputs if plan_file else {})
    recording = start_recording(
        no_store,
        kind="batch",
        request=plan,
        plan_data=plan_data(compiled.plan) if plan_file else None,
        inputs=extra,
        options={"input_name": input_name, "concurrency": concurrency, "out": str(out) if out else None},
        documents=(str(d) for d in documents),
        run_id=run_id,
    )
    if not plan_file:
        first = str(next(iter(documents)))
        compiled = _plan_recorded(plan, {input_name: first, **extra}, tools, recording)
        check_input_name(compiled, input_name)
    if recording is not None:
        from orchestrator.store import plan_tools

        recording.tools.update(plan_tools(compiled))
    skip = resume_set(out, resume)
    _execute(
        compiled,
        documents,
        total,
        input_name,
        extra,
        concurrency,
        out,
        skip,
        recording,
        report,
        append=resume,
        executor=executor,
        trusted=[Path(plan).resolve().parent] if plan_file else [],
    )


def continue_batch(run: Any, store: Any, *, report: Path | None, executor: str = "local") -> None:
    """Continue a recorded batch: its plan, documents, inputs and options come from the store."""
    from orchestrator.plan.validate import validate_plan
    from orchestrator.settings import current_settings
    from orchestrator.store import StoreRun, plan_tools
    from orchestrator.toolbox import default_registry

    if run.kind != "batch":
        raise InputError(f"run {run.id} is a {run.kind!r} run, not a batch: use `orchestrator resume {run.id}`")
    tools = default_registry()
    recording = StoreRun.resume(store, run, tool_cache=current_settings().store_tool_cache)
    docs = store.documents(run.id)
    options = run.options
    if run.plan_id is not None:
        compiled = validate_plan(store.load_plan(run.plan_id), tools)
    else:  # planning failed (the provider was down, say): plan it now, once
        first = {str(options.get("input_name")): docs[0].doc} if docs else {}
        compiled = _plan_recorded(run.request, {**first, **run.inputs}, tools, recording)
    recording.tools.update(plan_tools(compiled))
    done = {d.doc for d in docs if d.status == "succeeded"}
    out = Path(options["out"]) if options.get("out") else None
    if out is None:  # stdout: the documents finished before come first, then the rest as they finish
        for d in docs:
            if d.doc in done and d.result is not None:
                sys.stdout.write(json.dumps(d.result, ensure_ascii=False) + "\n")
    _execute(
        compiled,
        [Path(d.doc) for d in docs],
        len(docs),
        str(options.get("input_name")),
        dict(run.inputs),
        int(options.get("concurrency") or 4),
        out,
        done,
        recording,
        report,
        append=True,
        executor=executor,
        trusted=[Path(run.request).resolve().parent] if str(run.request).endswith(".json") else [],
    )


def _execute(
    compiled: CompiledPlan,
    documents: Iterable[Path],
    total: int,
    input_name: str,
    extra: dict[str, Any],
    concurrency: int,
    out: Path | None,
    skip: set[str],
    recording: StoreRun | None,
    report: Path | None,
    *,
    append: bool,
    executor: str = "local",
    trusted: Iterable[Path] = (),
) -> None:
    from orchestrator.batch import run_batch
    from orchestrator.cluster import open_executor
    from orchestrator.files import allow_folders

    announce_small_model()
    try:
        sink = out.open("a" if append else "w", encoding="utf-8") if out is not None else sys.stdout
    except OSError as exc:
        raise InputError(f"--out {out}: cannot write it ({exc.strerror})") from None
    try:
        with allow_folders(*trusted), _progress() as progress:
            task = progress.add_task("documents", total=total)

            def advance(record: Any) -> None:
                progress.advance(task)
                if record.status != "succeeded":
                    progress.console.print(f"[red]✗[/] {record.document}: {record.error}", markup=True, highlight=False)

            def skipped(document: str) -> None:
                progress.advance(task)

            async def go() -> Any:
                async with open_executor(executor) as backend:
                    return await run_batch(
                        compiled,
                        documents,
                        input_name,
                        inputs=extra,
                        concurrency=concurrency,
                        out=sink,
                        skip=skip,
                        on_document=advance,
                        on_skip=skipped,
                        executor=backend,
                        store_run=recording,
                    )

            summary = run_async(go())
    except KeyboardInterrupt:
        mark_interrupted(recording)
        raise
    finally:
        if out is not None:
            sink.close()
    summary.out = str(out) if out else None
    if recording is not None and out is not None:
        _rewrite_out(recording, out)
    stderr.print(
        f"{summary.succeeded} succeeded, {summary.failed} failed, {summary.skipped} already done "
        f"of {summary.total} in {summary.duration_s:.1f}s ({summary.docs_per_s:.2f} docs/s)"
        + (f", ${summary.usage.cost_usd:.4f}" if summary.usage.cost_usd else "")
        + (f"; {summary.retried} run again after a worker died" if summary.retried else "")
        + (f"; results in {out}" if out else ""),
        markup=False,
    )
    failed = summary.failed
    if recording is not None:
        from orchestrator.store import cost_ledger

        status = "succeeded" if failed == 0 else "partial"
        finish_recording(recording, status, None, report)
        ledger = cost_ledger(recording.store, recording.run_id)
        failed = ledger.documents - ledger.documents_succeeded
        stderr.print(f"run {recording.run_id}: {ledger.headline()}", markup=False, highlight=False)
    raise typer.Exit(0 if failed == 0 else 1)


def _rewrite_out(recording: StoreRun, out: Path) -> None:
    """Write --out again from the store: every document exactly once, in batch order (atomically), streamed
    from the store a row at a time (memory does not grow with the batch)."""
    tmp = out.with_name(out.name + ".tmp")
    try:
        with tmp.open("w", encoding="utf-8") as lines:
            for d in recording.store.iter_documents(recording.run_id):
                if d.result is not None:
                    lines.write(json.dumps(d.result, ensure_ascii=False) + "\n")
        os.replace(tmp, out)
    except OSError as exc:
        raise InputError(f"--out {out}: cannot write it ({exc.strerror})") from None


def _plan_recorded(
    request: str, context: dict[str, Any], tools: ToolRegistry, recording: StoreRun | None
) -> CompiledPlan:
    """Plan the batch once; its planner calls and its plan are recorded (a failure ends the run as failed)."""
    from orchestrator.errors import OrchestratorError

    on_note = recording.recorder("").on_note if recording is not None else None
    try:
        compiled = run_async(_plan_once(request, context, tools, on_note))
    except OrchestratorError as exc:
        if recording is not None:
            recording.store.finish_run(recording.run_id, "failed", f"planning failed: {exc}")
            stderr.print(f"run {recording.run_id} recorded as failed; continue it with: orchestrator resume "
                         f"{recording.run_id}", markup=False)  # fmt: skip
        raise
    if recording is not None:  # kept, so that continuing the batch does not plan it again
        recording.store.set_plan(recording.run_id, recording.store.save_plan(plan_data(compiled.plan)))
    return compiled


def check_input_name(compiled: CompiledPlan, input_name: str) -> None:
    """The plan must have the input each document is bound to (checked before the progress bar is drawn)."""
    if input_name not in compiled.inputs:
        declared = ", ".join(sorted(compiled.inputs)) or "none"
        raise InputError(f"--input {input_name}: the plan has no input of that name (declared: {declared})")


async def _plan_once(request: str, context: dict[str, Any], tools: ToolRegistry, on_note: Any = None) -> CompiledPlan:
    """Plan the whole batch with one planner call (none when the plan library knows the request)."""
    from orchestrator.plan.validate import validate_plan
    from orchestrator.planner import LargePlanner

    async with LargePlanner(registry=tools) as planner:
        planned, report = await planner.plan_with_report(request, context, on_event=on_note)
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

"""Recorded runs: ``runs [--json]``, ``runs show RUN_ID``, ``cost RUN_ID [--json]``, ``resume RUN_ID``,
``report RUN_ID --html FILE``. A run id may be shortened to a unique prefix (at least 4 characters)."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from orchestrator.commands import _common as common
from orchestrator.commands._common import ExecutorOpt, JsonFlag, print_json
from orchestrator.commands._store import ReportOpt, write_report
from orchestrator.errors import InputError

RunIdArg = Annotated[str, typer.Argument(help="a run id (or a unique prefix of one), as `orchestrator runs` lists")]

runs_app = typer.Typer(help="List recorded runs, or show one.", invoke_without_command=True, no_args_is_help=False)


def register(app: typer.Typer) -> None:
    app.add_typer(runs_app, name="runs")
    app.command("cost")(cost)
    app.command("resume")(resume)
    app.command("report")(report)


def _when(ts: float | None) -> str:
    return "" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _status(run: Any) -> str:
    """``running`` only while its process lives; a run whose process died is ``interrupted`` (resumable)."""
    if run.status != "running":
        return str(run.status)
    pid = run.options.get("pid")
    if isinstance(pid, int) and pid != os.getpid():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return "interrupted"
        except PermissionError:
            pass
    return "running"


@runs_app.callback()
def list_runs(
    ctx: typer.Context,
    as_json: JsonFlag = False,
    limit: Annotated[int, typer.Option(min=1, max=100000, help="at most this many, newest first")] = 50,
) -> None:
    """List recorded runs: id, request or plan, status, documents, started, duration and cost."""
    if ctx.invoked_subcommand is not None:
        return
    from orchestrator.store import open_store

    with open_store() as store:
        records = store.list_runs(limit)
    if as_json:
        print_json(
            [
                {
                    "id": r.id,
                    "kind": r.kind,
                    "request": r.request,
                    "status": _status(r),
                    "documents": r.documents,
                    "documents_done": r.documents_done,
                    "started_at": _when(r.started_at),
                    "duration_s": r.duration_s,
                    "sessions": r.sessions,
                    "cost_usd": round(r.cost_usd, 6),
                }
                for r in records
            ]
        )
        return
    if not records:
        common.stderr.print("no runs recorded yet", markup=False)
        return
    from rich.table import Table

    table = Table(show_edge=False)
    for name in ("id", "kind", "request or plan", "status", "docs", "started (UTC)", "duration", "cost"):
        table.add_column(name, overflow="fold")
    for r in records:
        docs = f"{r.documents_done}/{r.documents}" if r.kind == "batch" else ""
        duration = f"{r.duration_s:.1f}s" if r.duration_s is not None else ""
        table.add_row(r.id, r.kind, r.request, _status(r), docs, _when(r.started_at), duration, f"${r.cost_usd:.4f}")
    common.stdout.print(table)


@runs_app.command("show")
def show(run_id: RunIdArg, as_json: JsonFlag = False) -> None:
    """Show one run: its steps (per document for a batch), status, errors and worker modes."""
    from orchestrator.store import find_run, open_store

    with open_store() as store:
        run = find_run(store, run_id)
        steps = store.steps(run.id)
        docs = store.documents(run.id)
    if as_json:
        print_json(
            {
                "id": run.id,
                "kind": run.kind,
                "request": run.request,
                "status": _status(run),
                "error": run.error,
                "sessions": run.sessions,
                "documents": [{"doc": d.doc, "status": d.status} for d in docs],
                "steps": [
                    {
                        "doc": s.doc,
                        "step": s.step_id,
                        "tool": s.tool,
                        "status": s.status,
                        "attempts": s.attempts,
                        "modes": list(s.modes),
                        "error": s.error,
                        "duration_s": s.duration_s,
                        "cost_usd": s.cost_usd,
                        "session": s.session,
                    }
                    for s in steps
                ],
            }
        )
        return
    done = sum(d.status == "succeeded" for d in docs)
    common.stdout.print(f"{run.kind} {run.id}: {_status(run)}", markup=False, highlight=False)
    common.stdout.print(f"  {run.request}", markup=False, highlight=False)
    extra = f"; {done}/{len(docs)} documents succeeded" if run.kind == "batch" else ""
    common.stdout.print(f"  started {_when(run.started_at)} UTC, {run.sessions} session(s){extra}", markup=False)
    if run.error:
        common.stdout.print(f"  error: {run.error}", markup=False, highlight=False)
    from rich.table import Table

    table = Table(show_edge=False)
    columns = ["document"] if run.kind == "batch" else []
    for name in (*columns, "step", "tool", "status", "attempts", "modes", "duration", "error"):
        table.add_column(name, overflow="fold")
    for s in steps[:2000]:
        row = [s.doc] if run.kind == "batch" else []
        duration = f"{s.duration_s:.3f}s" if s.duration_s is not None else ""
        row += [s.step_id, s.tool, s.status, str(s.attempts), ", ".join(s.modes), duration, s.error or ""]
        table.add_row(*row)
    common.stdout.print(table)
    if len(steps) > 2000:
        common.stdout.print(f"  ... and {len(steps) - 2000} more steps (--json gives them all)", markup=False)


def cost(run_id: RunIdArg, as_json: JsonFlag = False) -> None:
    """The cost ledger of a run: docs/s, planner and model calls, items per cascade tier, cost per 1,000 docs."""
    from orchestrator.settings import current_settings
    from orchestrator.store import cost_ledger, find_run, open_store

    with open_store() as store:
        run = find_run(store, run_id)
        ledger = cost_ledger(store, run.id, large_model=current_settings().planner_model or "gpt-4o")
    if as_json:
        print_json(ledger.model_dump(mode="json"))
        return
    base = ledger.large_model_per_document
    lines = [
        f"run {ledger.run_id} ({ledger.kind}, {ledger.status}, {ledger.sessions} session(s))",
        f"documents: {ledger.documents_done} of {ledger.documents} done, {ledger.documents_succeeded} succeeded; "
        f"{ledger.docs_per_s:.2f} docs/s over {ledger.active_s:.1f}s of running",
        f"planner: {ledger.planner_calls} call(s), {ledger.planner_input_tokens:,} in / "
        f"{ledger.planner_output_tokens:,} out tokens, ${ledger.planner_cost_usd:.4f}",
        f"worker models: {ledger.model_calls} call(s), {ledger.model_input_tokens:,} in / "
        f"{ledger.model_output_tokens:,} out tokens, ${ledger.model_cost_usd:.4f}",
        "items per cascade tier: "
        + (", ".join(f"{tier} {n}" for tier, n in ledger.items_per_tier.items()) or "none (no cascade ran)"),
        f"cost: ${ledger.cost_usd:.4f} in all, ${ledger.cost_per_1000_docs:.4f} per 1,000 documents",
    ]
    if base.usd_per_1000_docs is not None:
        times = f" ({base.times_this_run:g} times this run)" if base.times_this_run else ""
        lines.append(
            f"the large model per document ({base.model}, {base.input_tokens_per_doc} in / "
            f"{base.output_tokens_per_doc} out tokens each): ${base.usd_per_1000_docs:,.2f} per 1,000 documents{times}"
        )
    else:
        lines.append(f"the large model per document: no price known for {base.model}")
    for line in lines:
        common.stdout.print(line, markup=False, highlight=False)


def resume(
    run_id: RunIdArg, as_json: JsonFlag = False, report: ReportOpt = None, executor: ExecutorOpt = "local"
) -> None:
    """Continue a run that stopped (killed, interrupted, failed): finished steps and documents are reused."""
    from orchestrator.cluster import check_executor
    from orchestrator.commands._store import run_single

    check_executor(executor)
    from orchestrator.commands.batch import continue_batch
    from orchestrator.executor import prepare_inputs
    from orchestrator.plan.validate import validate_plan
    from orchestrator.settings import current_settings
    from orchestrator.store import StoreRun, find_run, open_store
    from orchestrator.toolbox import default_registry

    store = open_store()
    run = find_run(store, run_id)
    if _status(run) == "running":
        raise InputError(f"run {run.id} is still running (process {run.options.get('pid')}); wait for it or stop it")
    if run.status == "succeeded":
        common.stderr.print(f"run {run.id} already succeeded: nothing to resume", markup=False)
        raise typer.Exit(0)
    if run.kind == "batch":
        continue_batch(run, store, report=report, executor=executor)
        return
    if run.plan_id is None:
        raise InputError(f"run {run.id} stopped before its plan was complete: nothing to resume; ask again")
    tools = default_registry()
    compiled = validate_plan(store.load_plan(run.plan_id), tools)
    values = prepare_inputs(compiled.plan.inputs, run.inputs)
    recording = StoreRun.resume(store, run, tool_cache=current_settings().store_tool_cache)
    reused = len(recording.completed.get("", {}))
    common.stderr.print(f"resuming run {run.id}: {reused} finished step(s) reused", markup=False)
    title = compiled.plan.goal or run.request
    run_single(compiled, values, recording, as_json=as_json, report=report, title=title, executor=executor)


def report(
    run_id: RunIdArg,
    html: Annotated[Path, typer.Option("--html", help="write the page here")],
) -> None:
    """Write a run's report: one self-contained HTML page (plan graph, timeline, steps, cost)."""
    from orchestrator.store import find_run, open_store

    with open_store() as store:
        run = find_run(store, run_id)
        write_report(store, run.id, html)

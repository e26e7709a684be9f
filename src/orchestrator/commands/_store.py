"""How `run`, `ask` and `batch` record into the run store, and say where the run went; running one plan."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from orchestrator.commands import _common as common
from orchestrator.commands._common import NoStoreOpt, ReportOpt
from orchestrator.errors import InputError

__all__ = ["NoStoreOpt", "ReportOpt", "finish_recording", "mark_interrupted", "plan_data", "run_single",
           "start_recording", "write_report"]  # fmt: skip

if TYPE_CHECKING:  # the store is imported when a command uses it, not at start-up
    from orchestrator.plan.validate import CompiledPlan
    from orchestrator.store import StoreRun


def start_recording(
    no_store: bool,
    *,
    kind: str,
    request: str,
    plan_data: Mapping[str, Any] | None = None,
    inputs: Mapping[str, Any] | None = None,
    options: Mapping[str, Any] | None = None,
    documents: Iterable[str] = ("",),
    run_id: str | None = None,
) -> StoreRun | None:
    """A new recorded run, or None with --no-store."""
    if no_store:
        return None
    from orchestrator.settings import current_settings
    from orchestrator.store import StoreRun, open_store

    return StoreRun.start(
        open_store(),
        kind=kind,
        request=request,
        plan_data=plan_data,
        inputs=inputs,
        options=options,
        documents=documents,
        run_id=run_id,
        tool_cache=current_settings().store_tool_cache,
    )


def finish_recording(store_run: StoreRun | None, status: str, error: str | None, report: Path | None) -> None:
    """Close the run in the store (raising a store error that stopped it), write the report, say where it is."""
    if store_run is None:
        if report is not None:
            raise InputError("--report needs the run store: drop --no-store")
        return
    store_run.raise_if_failed()
    store_run.store.finish_run(store_run.run_id, status, error)
    rid = store_run.run_id
    if report is not None:
        write_report(store_run.store, rid, report)
    else:
        common.stderr.print(
            f"recorded as run {rid}; see it with: orchestrator report {rid} --html report.html", markup=False
        )


def write_report(store: Any, run_id: str, path: Path) -> None:
    from orchestrator.store.report import render_report

    html = render_report(store, run_id)
    try:
        path.write_text(html, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"--html {path}: cannot write it ({exc.strerror})") from None
    common.stderr.print(f"report: {path}", markup=False)


def plan_data(plan: Any) -> dict[str, Any]:
    """A plan as the JSON the store keeps (defaults left out, as a person would write it)."""
    data: dict[str, Any] = plan.model_dump(mode="json", exclude_defaults=True)
    return data


def mark_interrupted(store_run: StoreRun | None) -> None:
    """Best effort after Ctrl-C: the run is recorded as cancelled (it can be resumed)."""
    if store_run is None:
        return
    from orchestrator.errors import StoreError

    try:
        store_run.store.finish_run(store_run.run_id, "cancelled", "interrupted")
        common.stderr.print(f"resume it with: orchestrator resume {store_run.run_id}", markup=False)
    except StoreError:
        pass


def run_single(
    compiled: CompiledPlan,
    values: dict[str, Any],
    recording: StoreRun | None,
    *,
    as_json: bool,
    report: Path | None,
    title: str,
    executor: str = "local",
    out: Path | None = None,
) -> None:
    """Run one plan (new or resumed) with live progress, record it, print its output; exits with its code.

    With ``executor="ray"`` the scheduler (and the recording) stays here and every step runs on the cluster.
    """
    from orchestrator.cluster import run_plan
    from orchestrator.executor.hooks import use_step_hook
    from orchestrator.observability import StepTable, describe_interrupted, render_output

    table = StepTable(common.stderr, title=title, live=not as_json, compiled=compiled)
    from orchestrator.commands._common import announce_small_model, print_json, run_async

    announce_small_model()
    hook = recording.recorder("") if recording is not None else None
    done = recording.completed.get("") if recording is not None else None
    rid = recording.run_id if recording is not None else None
    try:
        with use_step_hook(hook):
            if as_json:  # not live: the table only tracks
                result, _ = run_async(run_plan(compiled, values, executor, on_event=table, run_id=rid, completed=done))
            else:
                with table:
                    result, _ = run_async(
                        run_plan(compiled, values, executor, on_event=table, run_id=rid, completed=done)
                    )
    except KeyboardInterrupt:
        common.stderr.line()  # the live table may not have ended its last line
        common.stderr.print(describe_interrupted(table), markup=False, highlight=False)
        mark_interrupted(recording)
        raise typer.Exit(130) from None
    if recording is not None:
        line = {"status": result.status, "output": result.output, "error": result.error}
        recording.raise_if_failed()
        recording.store.finish_document(recording.run_id, "", result.status, line, recording.session)
    if out is not None:
        from orchestrator.commands._common import write_result

        write_result(out, result.model_dump(mode="json"))
    if as_json:
        print_json(result.model_dump(mode="json"))
    else:
        render_output(result, common.stdout, whole=str(out) if out is not None else None)
    finish_recording(recording, result.status, result.error, report)
    raise typer.Exit(0 if result.ok else 1)

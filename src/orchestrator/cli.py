"""The `orchestrator` command: a thin layer over the async API.

Exit codes: 0 success; 1 the run did not fully succeed; 2 a user error (bad plan, input, setting);
130 interrupted. A user error is one message on stderr, never a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from orchestrator.commands._common import (
    ExecutorOpt,
    InputsOpt,
    JsonFlag,
    announce_small_model,
    print_json,
    run_async,
    stderr,
    stdout,
)
from orchestrator.commands._store import (
    NoStoreOpt,
    ReportOpt,
    finish_recording,
    mark_interrupted,
    plan_data,
    start_recording,
)
from orchestrator.errors import OrchestratorError, PlanValidationError, UserError
from orchestrator.executor import parse_input_pairs, prepare_inputs
from orchestrator.executor.hooks import use_step_hook
from orchestrator.observability import StepTable, configure_logging, describe_interrupted, render_output
from orchestrator.plan.model import plan_json_schema
from orchestrator.plan.validate import CompiledPlan, load_plan
from orchestrator.registry import ToolAnnotations, ToolRegistry
from orchestrator.toolbox import default_registry

if TYPE_CHECKING:
    from orchestrator.store import StoreRun

app = typer.Typer(
    name="orchestrator",
    help="A large model plans, small models work: validate and run JSON execution plans.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
eval_app = typer.Typer(help="Measure accuracy on labelled data.", no_args_is_help=True)
app.add_typer(eval_app, name="eval")


def registry() -> ToolRegistry:
    return default_registry()


@app.command()
def run(
    plan: Annotated[Path, typer.Argument(help="plan file (JSON)")],
    inputs: InputsOpt = None,
    as_json: JsonFlag = False,
    no_store: NoStoreOpt = False,
    report: ReportOpt = None,
    executor: ExecutorOpt = "local",
) -> None:
    """Run a plan with live per-step progress, then print its output (recorded in the run store)."""
    from orchestrator.cluster import check_executor

    check_executor(executor)
    tools = registry()
    compiled = load_plan(plan, tools)
    values = prepare_inputs(compiled.plan.inputs, parse_input_pairs(inputs or [], compiled.plan.inputs))
    recording = start_recording(
        no_store, kind="run", request=str(plan), plan_data=plan_data(compiled.plan), inputs=values
    )
    run_single(
        compiled,
        values,
        recording,
        as_json=as_json,
        report=report,
        title=compiled.plan.goal or str(plan),
        executor=executor,
    )


def run_single(
    compiled: CompiledPlan,
    values: dict[str, Any],
    recording: StoreRun | None,
    *,
    as_json: bool,
    report: Path | None,
    title: str,
    executor: str = "local",
) -> None:
    """Run one plan (new or resumed) with live progress, record it, print its output; exits with its code.

    With ``executor="ray"`` the scheduler (and the recording) stays here and every step runs on the cluster.
    """
    from orchestrator.cluster import run_plan

    table = StepTable(stderr, title=title, live=not as_json, compiled=compiled)
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
        stderr.line()  # the live table may not have ended its last line
        stderr.print(describe_interrupted(table), markup=False, highlight=False)
        mark_interrupted(recording)
        raise typer.Exit(130) from None
    if recording is not None:
        line = {"status": result.status, "output": result.output, "error": result.error}
        recording.raise_if_failed()
        recording.store.finish_document(recording.run_id, "", result.status, line, recording.session)
    if as_json:
        print_json(result.model_dump(mode="json"))
    else:
        render_output(result, stdout)
    finish_recording(recording, result.status, result.error, report)
    raise typer.Exit(0 if result.ok else 1)


@app.command()
def validate(plans: Annotated[list[Path], typer.Argument(help="plan files to check")]) -> None:
    """Check plans against the format and the tool registry, listing every problem; runs nothing."""
    tools = registry()
    failed = 0
    for path in plans:
        try:
            compiled = load_plan(path, tools)
        except UserError as exc:
            failed += 1
            stderr.print(str(exc), markup=False, highlight=False)
            continue
        stdout.print(f"{path}: {compiled.summary()}" if len(plans) > 1 else compiled.summary(), markup=False)
    raise typer.Exit(2 if failed else 0)


@app.command()
def tools(as_json: JsonFlag = False) -> None:
    """List the registered tools (with --json: the catalog with schemas that the planner is given)."""
    catalog = registry().catalog()
    if as_json:
        print_json([spec.model_dump(mode="json") for spec in catalog])
        return
    table = Table(show_edge=False)
    table.add_column("tool", style="bold")
    table.add_column("kind")
    table.add_column("arguments")
    table.add_column("hints")
    table.add_column("description", overflow="fold")
    for spec in catalog:
        props = spec.input_schema.get("properties", {})
        required = set(spec.input_schema.get("required", []))
        args = ", ".join(f"{n}{'' if n in required else '?'}" for n in props)
        description = spec.description.splitlines()[0] if spec.description else ""
        table.add_row(spec.name, spec.kind.value, args, _hints(spec.annotations), description)
    stdout.print(table)


def _hints(annotations: ToolAnnotations) -> str:
    """The annotations in words: read-only or writes (destructive or not), idempotent, open world."""
    words = ["read-only" if annotations.read_only else "destructive" if annotations.destructive else "not read-only"]
    if annotations.idempotent:
        words.append("idempotent")
    if annotations.open_world:
        words.append("open-world")
    return ", ".join(words)


@app.command()
def schema() -> None:
    """Print the JSON Schema of the plan format."""
    print_json(plan_json_schema())


def _register_commands() -> None:
    from orchestrator.commands import batch, bench, evaluation, fake_model, planning, runs

    planning.register(app)
    runs.register(app)
    batch.register(app)
    bench.register(app)
    fake_model.register(app)
    evaluation.register(eval_app)


_register_commands()


def main(argv: list[str] | None = None) -> int:
    """Entry point: runs the app, turning errors into messages and exit codes."""
    configure_logging()
    try:
        code = app(args=argv, standalone_mode=False, prog_name="orchestrator")
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        stderr.print("aborted")
        return 130
    except typer.TyperException as exc:  # usage errors: typer vendors click, so catch its public base
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            stderr.print(f"error: {exc}", markup=False)
        return int(getattr(exc, "exit_code", 2))
    except KeyboardInterrupt:
        stderr.print("interrupted: running steps were cancelled")
        return 130
    except PlanValidationError as exc:
        stderr.print(str(exc), markup=False, highlight=False)
        return 2
    except UserError as exc:
        stderr.print(f"error: {exc}", markup=False, highlight=False)
        return 2
    except OrchestratorError as exc:
        stderr.print(f"failed: {exc}", markup=False, highlight=False)
        return 1
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())

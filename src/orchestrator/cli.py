"""The `orchestrator` command: a thin layer over the async API.

Exit codes: 0 success; 1 the run did not fully succeed; 2 a user error (bad plan, input, setting);
130 interrupted. A user error is one message on stderr, never a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from orchestrator.commands._common import (
    InputsOpt,
    JsonFlag,
    announce_small_model,
    print_json,
    run_async,
    stderr,
    stdout,
)
from orchestrator.errors import OrchestratorError, PlanValidationError, UserError
from orchestrator.executor import parse_input_pairs, prepare_inputs, run_compiled
from orchestrator.observability import StepTable, configure_logging, describe_interrupted, render_output
from orchestrator.plan.model import plan_json_schema
from orchestrator.plan.validate import load_plan
from orchestrator.registry import ToolAnnotations, ToolRegistry
from orchestrator.toolbox import default_registry

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
) -> None:
    """Run a plan with live per-step progress, then print its output."""
    tools = registry()
    compiled = load_plan(plan, tools)
    values = prepare_inputs(compiled.plan.inputs, parse_input_pairs(inputs or [], compiled.plan.inputs))
    table = StepTable(stderr, title=compiled.plan.goal or str(plan), live=not as_json, compiled=compiled)
    announce_small_model()
    try:
        if as_json:
            result, _ = run_async(run_compiled(compiled, values, on_event=table))  # not live: it only tracks
            print_json(result.model_dump(mode="json"))
        else:
            with table:
                result, _ = run_async(run_compiled(compiled, values, on_event=table))
            render_output(result, stdout)
    except KeyboardInterrupt:
        stderr.line()  # the live table may not have ended its last line
        stderr.print(describe_interrupted(table), markup=False, highlight=False)
        raise typer.Exit(130) from None
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
    from orchestrator.commands import batch, bench, evaluation, fake_model, planning

    planning.register(app)
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

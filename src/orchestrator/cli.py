"""The `orchestrator` command: a thin layer over the async API.

Exit codes: 0 success; 1 the run did not fully succeed; 2 a user error (bad plan, input, setting);
130 interrupted. A user error is one message on stderr, never a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from orchestrator.commands import _common as common
from orchestrator.commands._common import (
    InputsOpt,
    JsonFlag,
    McpConfigOpt,
    announce_small_model,
    echo,
    print_json,
    run_async,
    use_mcp_config,
)
from orchestrator.errors import OrchestratorError, PlanValidationError, UserError
from orchestrator.logs import configure_logging

if TYPE_CHECKING:
    from orchestrator.commands import batch, bench, evaluation, fake_model, mcp, planning  # noqa: F401 (loaded lazily)
    from orchestrator.registry import ToolAnnotations, ToolRegistry

# Start-up: each command imports what it needs when it runs (the executor, the tools, rich tables), so
# `orchestrator --help` loads none of it; `orchestrator bench startup` measures it.

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
    from orchestrator.toolbox import default_registry

    return default_registry()


@app.command()
def run(
    plan: Annotated[Path, typer.Argument(help="plan file (JSON)")],
    inputs: InputsOpt = None,
    as_json: JsonFlag = False,
    mcp_config: McpConfigOpt = None,
) -> None:
    """Run a plan with live per-step progress, then print its output."""
    use_mcp_config(mcp_config)
    from orchestrator.executor import parse_input_pairs, prepare_inputs, run_compiled
    from orchestrator.observability import StepTable, describe_interrupted, render_output
    from orchestrator.plan.validate import load_plan

    tools = registry()
    compiled = load_plan(plan, tools)
    values = prepare_inputs(compiled.plan.inputs, parse_input_pairs(inputs or [], compiled.plan.inputs))
    table = StepTable(common.stderr, title=compiled.plan.goal or str(plan), live=not as_json, compiled=compiled)
    announce_small_model()
    try:
        if as_json:
            result, _ = run_async(run_compiled(compiled, values, on_event=table))  # not live: it only tracks
            print_json(result.model_dump(mode="json"))
        else:
            with table:
                result, _ = run_async(run_compiled(compiled, values, on_event=table))
            render_output(result, common.stdout)
    except KeyboardInterrupt:
        common.stderr.line()  # the live table may not have ended its last line
        common.stderr.print(describe_interrupted(table), markup=False, highlight=False)
        raise typer.Exit(130) from None
    raise typer.Exit(0 if result.ok else 1)


@app.command()
def validate(
    plans: Annotated[list[Path], typer.Argument(help="plan files to check")], mcp_config: McpConfigOpt = None
) -> None:
    """Check plans against the format and the tool registry, listing every problem; runs nothing."""
    use_mcp_config(mcp_config)
    from orchestrator.plan.validate import load_plan

    tools = registry()
    failed = 0
    for path in plans:
        try:
            compiled = load_plan(path, tools)
        except UserError as exc:
            failed += 1
            echo(str(exc), err=True)
            continue
        echo(f"{path}: {compiled.summary()}" if len(plans) > 1 else compiled.summary())
    raise typer.Exit(2 if failed else 0)


@app.command()
def tools(as_json: JsonFlag = False, mcp_config: McpConfigOpt = None) -> None:
    """List the registered tools (with --json: the catalog with schemas that the planner is given)."""
    use_mcp_config(mcp_config)
    catalog = registry().catalog()
    if as_json:
        print_json([spec.model_dump(mode="json") for spec in catalog])
        return
    from rich.table import Table

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
    common.stdout.print(table)


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
    from orchestrator.plan.model import plan_json_schema

    print_json(plan_json_schema())


_COMMAND_MODULES = {
    "plan": "planning",
    "ask": "planning",
    "batch": "batch",
    "bench": "bench",
    "fake-model": "fake_model",
    "mcp": "mcp",
    "eval": "evaluation",
}
"""The commands defined in :mod:`orchestrator.commands` modules, and which module defines each."""

_registered: set[str] = set()


def register_commands(names: Iterable[str] | None = None) -> None:
    """Add the commands of :mod:`orchestrator.commands` to `app`: those named (None: all of them).

    :func:`main` adds only the invoked command's module (typer builds every registered command's options
    before it runs one, so this keeps ``validate`` and ``tools`` quick), and all of them for the overview
    ``--help`` or an unknown command (so the error lists every command).
    """
    import importlib

    wanted = set(_COMMAND_MODULES.values()) if names is None else {_COMMAND_MODULES[n] for n in names}
    for module_name in dict.fromkeys(_COMMAND_MODULES.values()):  # in this order, as --help lists them
        if module_name not in wanted or module_name in _registered:
            continue
        module = importlib.import_module(f"orchestrator.commands.{module_name}")
        module.register(eval_app if module_name == "evaluation" else app)
        _registered.add(module_name)


_CORE_COMMANDS = frozenset({"run", "validate", "tools", "schema"})


def _commands_for(argv: Sequence[str]) -> list[str] | None:
    """The commands `argv` may invoke: its first word when it names one, else None (all of them)."""
    first = next((arg for arg in argv if not arg.startswith("-")), None)
    if first is None or any(arg in ("--help", "-h") for arg in argv[: argv.index(first)]):
        return None
    if first in _CORE_COMMANDS:
        return []
    return [first] if first in _COMMAND_MODULES else None


def _printable_streams() -> None:
    """Text that cannot be encoded (a lone surrogate from a PDF's text layer, say) prints as an escape,
    ``\\udc80``, instead of crashing the command; inside JSON output that is a valid JSON escape too."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            try:
                reconfigure(errors="backslashreplace")
            except (ValueError, OSError):  # a closed or detached stream: nothing to protect
                pass


def main(argv: list[str] | None = None) -> int:
    """Entry point: runs the app, turning errors into messages and exit codes."""
    _printable_streams()
    configure_logging()
    args = list(sys.argv[1:] if argv is None else argv)
    register_commands(_commands_for(args))
    try:
        code = app(args=args, standalone_mode=False, prog_name="orchestrator")
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        common.stderr.print("aborted")
        return 130
    except typer.TyperException as exc:  # usage errors: typer vendors click, so catch its public base
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            common.stderr.print(f"error: {exc}", markup=False)
        return int(getattr(exc, "exit_code", 2))
    except KeyboardInterrupt:
        common.stderr.print("interrupted: running steps were cancelled")
        return 130
    except PlanValidationError as exc:
        echo(str(exc), err=True)
        return 2
    except UserError as exc:
        echo(f"error: {exc}", err=True)
        return 2
    except OrchestratorError as exc:
        echo(f"failed: {exc}", err=True)
        return 1
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
